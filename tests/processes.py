"""Real `invoice-gateway` processes: launch, wait until healthy, stop; bounded waits.

Every test that runs the gateway as its own process (the console script's code path, as an
operator runs it) starts, watches and stops it through these few functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO

import aiohttp

from adapters.fintera.simulator import API_TOKEN, ENTITIES
from adapters.xarios.simulator import CLIENT_ID as X_ID
from adapters.xarios.simulator import CLIENT_SECRET as X_SECRET
from tests.support import CURSOR_SECRET, free_port_pair

KEY = "fault-process-key-0123"
HEADERS = {"Authorization": f"Bearer {KEY}"}


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str
) -> None:
    """Poll `condition` until true; fail naming `what` after a generous bound."""
    give_up = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        await asyncio.sleep(0.1)


Output = int | IO[bytes]


async def launch(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdout: Output = asyncio.subprocess.DEVNULL,
    stderr: Output = asyncio.subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    """`python -m gateway ARGS` in its own process (stdout/stderr: a file, PIPE or DEVNULL)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=dict(env) if env is not None else None,
        stdout=stdout,
        stderr=stderr,
    )


async def healthy(
    base: str,
    proc: asyncio.subprocess.Process | None = None,
    timeout_s: float = 60,
    log: Path | None = None,
) -> None:
    """Wait until `base`/healthz answers 200; fail at once if `proc` exited instead.

    Generous by default: interpreters start slowly on a loaded machine. The failure
    shows the process's `log` when there is one.
    """
    async with aiohttp.ClientSession() as http:

        async def up() -> bool:
            if proc is not None and proc.returncode is not None:
                said = log.read_text(errors="replace")[-4000:] if log else ""  # noqa: ASYNC240
                raise AssertionError(
                    f"gateway at {base} exited with {proc.returncode}: {said}"
                )
            try:
                async with http.get(base + "/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(up, timeout_s, f"gateway at {base} answers")


async def read_until(
    stream: asyncio.StreamReader | None, marker: str, timeout_s: float = 30
) -> str:
    """A process's output, line by line, up to and including the line holding `marker`."""
    assert stream is not None, "the process's output is not piped"
    out = ""
    async with asyncio.timeout(timeout_s):
        while marker not in out:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"output ended before {marker!r}: {out[-2000:]}")
            out += line.decode()
    return out


async def stop(*procs: asyncio.subprocess.Process, grace_s: float = 30) -> None:
    """Terminate what still runs and reap everything (SIGKILL after `grace_s`).

    Whatever interrupts the wait (the test's timeout firing in it), no process is left
    running: a stray gateway would load the machine and hold ports for later tests.
    """
    try:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()


def gateway_env(
    tmp_path: Path, redis_url: str, xarios_url: str, fintera_url: str, refresh: str
) -> dict[str, str]:
    """Environment and connections file for a Xarios + Fintera deployment on Redis."""
    conf = tmp_path / "connections.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "faults"\n'
        f'sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"\n'
        'scopes = ["invoices:read", "sale_accounts:write"]\n'
        f'[connections.reseller]\nprovider = "xarios"\nbase_url = "{xarios_url}"\n'
        "cache_fresh_s = 0\ncache_stale_s = 0\n"
        '[connections.reseller.secrets]\nclient_id = "X_ID"\nclient_secret = "X_SECRET"\n'
        'refresh_token = "X_REFRESH"\n'
        f'[connections.reseller.options]\nauth_url = "{xarios_url}"\n'
        f'[connections.fin]\nprovider = "fintera"\nbase_url = "{fintera_url}"\n'
        "timeout_s = 8.0\n"
        '[connections.fin.secrets]\napi_token = "F_TOKEN"\n'
        f"[connections.fin.options]\naccount_id = 3613\nentity_ids = {ENTITIES}\n",
        encoding="utf-8",
    )
    return {
        **os.environ,
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
        "GATEWAY_LOG_LEVEL": "info",
        "GATEWAY_LOG_FORMAT": "json",
        "REDIS_URL": redis_url,
        "X_ID": X_ID,
        "X_SECRET": X_SECRET,
        "X_REFRESH": refresh,
        "F_TOKEN": API_TOKEN,
    }


class Gateways:
    """N gateway processes on their own ports; logs kept under the test's tmp dir."""

    def __init__(self, env: dict[str, str], count: int, logs: Path) -> None:
        """Prepare; `start` launches."""
        self.env = env
        self.ports = [free_port_pair() for _ in range(count)]
        self.logs = logs
        self.procs: list[asyncio.subprocess.Process] = []

    @property
    def bases(self) -> list[str]:
        """Each gateway's base URL."""
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    async def start(self) -> None:
        """Launch every process and wait (generously) until each answers /healthz."""
        for n, port in enumerate(self.ports):
            with (self.logs / f"gateway-{n}.log").open("wb") as log:
                self.procs.append(
                    await launch(
                        "serve",
                        "--port",
                        str(port),
                        env=self.env,
                        stdout=log,
                        stderr=log,
                    )
                )
        for base, proc in zip(self.bases, self.procs, strict=True):
            await healthy(base, proc)

    def kill(self, n: int) -> None:
        """SIGKILL gateway `n`, as a crashed node would die."""
        self.procs[n].send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """Terminate what still runs and reap everything."""
        await stop(*self.procs)
