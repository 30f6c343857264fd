"""Schemathesis against the running demo (three simulators + gateway), every operation.

The demo runs as `invoice-gateway demo` does for a person, in its own process; the
fuzzer reads `/openapi.json` and sends a bounded number of generated requests to each
operation (examples, coverage, fuzzing and stateful phases), with the settings and the
reasons for each in `tests/schemathesis.toml`. The run must end with no failure (no 5xx,
no response outside the document, no invalid input accepted), and the demo must have
logged no 5xx and no adapter or unhandled error.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = 10
SEED = 20261201


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(path: Path, pattern: str, deadline_s: float) -> re.Match[str]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = re.search(pattern, path.read_text(encoding="utf-8"))
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} never appeared in {path}")


@pytest.fixture
def demo(tmp_path):
    """`invoice-gateway demo` on a free port: (base URL, API key, its log file)."""
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "gateway", "demo", "--port", str(_free_port())],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        base = _wait_for(out, r"demo is up at (\S+)", 30).group(1)
        key = _wait_for(out, r"demo API key: (\S+)", 5).group(1)
        yield base, key, err
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(420)
def test_schemathesis_finds_no_5xx_and_no_schema_violation(demo, tmp_path):
    """Every operation fuzzed from the document: no failure, and no 500 in the demo's log."""
    base, key, demo_log = demo
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency (make test installs it)"
    run = subprocess.run(  # noqa: S603 - the fuzzer's CLI, fixed arguments
        [
            st,
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            f"{base}/openapi.json",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        cwd=ROOT,  # the hooks module is imported as `tests.fuzz_hooks`
        env={**os.environ, "DEMO_API_KEY": key, "PYTHONPATH": str(ROOT)},
    )
    summary = "\n".join(
        line
        for line in run.stdout.splitlines()
        if re.search(r"Tested:|generated|passed|failures?|❌|[0-9] failed", line)
    )
    print(summary)  # noqa: T201 - the counts, for whoever reads the run
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"Tested: 17\b", run.stdout), summary
    served = demo_log.read_text(encoding="utf-8")
    assert not re.search(r'"status":5[0-9][0-9]', served)
    assert "unhandled_error" not in served
    assert "adapter_failed" not in served
