"""Instructions per cached page hit, counted by callgrind: a figure noise cannot move.

Run: .venv/bin/python -m tests.bench.instructions_bench [seconds]
Needs `valgrind` and `wrk` on PATH (Debian: `apt-get install valgrind wrk`).

`hot_path_bench` measures what matters (req/s, latency, CPU time), but on a shared
machine its rows move by 10-20 % from run to run, more than most single changes to the
hot path are worth. This bench counts the instructions the server executes per request
instead (user space only: the kernel's socket work is not counted), which repeats within
about 1 % whatever else the machine does, so a change can be judged alone. Two rows,
each the real server under `valgrind --tool=callgrind` with instrumentation off until it
is warm, then on for one `wrk` run of 10 connections (the page of `hot_path_bench`, the
demo's three sources, every request a hit):

  bare     a plain aiohttp handler returning the gateway's page bytes
  memory   `invoice-gateway serve`, memory cache

Instructions and time are not proportional (the gateway's code runs fewer instructions
per cycle than aiohttp's, and the kernel's share is left out), so the ratio here comes
out higher than the one `hot_path_bench` reports: it judges changes, not the goal.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.hot_path_bench import PATH, _gateway_env, _get, _simulators, wrk
from tests.support import free_port_pair

ROOT = Path(__file__).resolve().parents[2]


def _wrk(url: str, seconds: int) -> int:
    """Requests answered by one wrk run (10 connections)."""
    out = wrk(url, seconds, 10)
    return int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]


def _count(argv: list[str], env: dict[str, str] | None, seconds: int) -> float:
    """Instructions per request of the server `argv` (with `{port}`) under callgrind."""
    port = free_port_pair()
    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    proc = subprocess.Popen(  # noqa: S603
        [  # noqa: S607
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *(a.replace("{port}", str(port)) for a in argv),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        for _ in range(600):  # start-up under valgrind is slow
            with contextlib.suppress(OSError):
                _get(url)
                break
            if proc.poll() is not None:
                raise SystemExit(f"{argv} exited with {proc.returncode}")
            time.sleep(0.2)
        _wrk(url, 2)  # warm: caches filled, code paths specialised
        control = ["callgrind_control", "-i", "on", str(proc.pid)]
        subprocess.run(control, check=True, capture_output=True)  # noqa: S603
        requests = _wrk(url, seconds)
        control[2] = "off"
        subprocess.run(control, check=True, capture_output=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            ["callgrind_control", "-d", str(proc.pid)],  # noqa: S607
            check=True,
            capture_output=True,
        )
    finally:
        proc.terminate()
        proc.wait(30)
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total / requests


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install valgrind wrk)")
    loop = asyncio.new_event_loop()
    _runners, upstreams = loop.run_until_complete(_simulators())
    threading.Thread(target=loop.run_forever, daemon=True).start()
    workdir = Path(tempfile.mkdtemp())
    py = sys.executable
    serve = [py, "-m", "gateway.cli.main", "serve", "--host", "127.0.0.1"]
    env = _gateway_env(workdir, "memory", upstreams, None)
    memory = _count([*serve, "--port", "{port}"], env, seconds)
    port = free_port_pair()  # the gateway's own answer, as the bare row's bytes
    gateway = subprocess.Popen(  # noqa: S603
        [*serve, "--port", str(port)],
        cwd=ROOT,
        env=_gateway_env(workdir, "page", upstreams, None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                page = _get(f"http://127.0.0.1:{port}{PATH}")
                break
            time.sleep(0.05)
    finally:
        gateway.terminate()
        gateway.wait(30)
    body = workdir / "page.json"
    body.write_bytes(page)
    bare = _count(
        [py, "-m", "tests.bench.hot_path_bench", "_bare", "{port}", str(body)],
        None,
        seconds,
    )
    print(
        f"instructions per request (callgrind, user space), page of {len(page)} bytes"
    )
    print(f"bare aiohttp      {bare / 1000:8.1f} k")
    print(f"gateway, memory   {memory / 1000:8.1f} k")
    print(
        f"bare / memory     {bare / memory:8.2f}  (higher than hot_path_bench's ratio)"
    )


if __name__ == "__main__":
    main()
