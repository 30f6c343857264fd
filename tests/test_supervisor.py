"""`serve --workers N`: dead workers come back, crash loops end the master, SIGTERM drains."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from tests.processes import healthy, launch, wait_until
from tests.support import CURSOR_SECRET, free_port_pair


def serving_children(pid: int) -> list[int]:
    """Live worker processes of `pid` started by multiprocessing's spawn."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    out = []
    for child in children:
        try:
            cmdline = (
                Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
            )
            state = Path(f"/proc/{child}/stat").read_text().split(") ")[1][0]
        except (FileNotFoundError, IndexError):
            continue
        if "spawn_main" in cmdline and state != "Z":
            out.append(int(child))
    return out


@pytest.fixture
def serve_env(tmp_path, hubsoft_url, redis_server):
    """Environment for `serve` (one Hubsoft connection, Redis); the master's log file."""
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "w"\nsha256 = "{hashlib.sha256(b"wk").hexdigest()}"\n'
        f'[connections.acme]\nprovider = "hubsoft"\nbase_url = "{hubsoft_url}"\n'
        '[connections.acme.secrets]\nclient_id = "A_ID"\nclient_secret = "A_S"\n'
        'username = "A_U"\npassword = "A_P"\n',
        encoding="utf-8",
    )
    return {
        **os.environ,
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
        "GATEWAY_LOG_FORMAT": "json",
        "REDIS_URL": redis_server.url,
        "A_ID": CLIENT_ID,
        "A_S": CLIENT_SECRET,
        "A_U": USERNAME,
        "A_P": PASSWORD,
    }, tmp_path / "master.log"


async def start_master(env: dict[str, str], log: Path, port: int):
    """`invoice-gateway serve --workers 2` on `port`, output to `log`."""
    with log.open("wb") as out:
        return await launch(
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
            env=env,
            stdout=out,
            stderr=out,
        )


async def _count(pid: int, n: int) -> bool:
    return len(serving_children(pid)) == n


async def test_serve_with_workers_runs_that_many_processes_on_one_port(serve_env):
    """`serve --workers 2`: two serving children share the port and answer; SIGTERM ends all."""
    env, _log = serve_env
    port = free_port_pair()
    proc = await launch("serve", "--workers", "2", "--port", str(port), env=env)
    try:
        await healthy(f"http://127.0.0.1:{port}", proc)
        async with aiohttp.ClientSession(
            headers={"Authorization": "Bearer wk"}
        ) as http:
            url = f"http://127.0.0.1:{port}/v1/invoices?customer_document=12345678909"
            for _ in range(10):
                async with http.get(url) as resp:
                    assert resp.status == 200
        assert len(serving_children(proc.pid)) == 2
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_a_killed_worker_is_replaced_within_10s(serve_env):
    """SIGKILL one of two workers: two live workers again soon; SIGTERM drains both."""
    env, log = serve_env
    master = await start_master(env, log, free_port_pair())
    try:
        await wait_until(lambda: _count(master.pid, 2), 60, "two workers up")
        victim = serving_children(master.pid)[0]
        os.kill(victim, signal.SIGKILL)
        await wait_until(
            lambda: _count_without(master.pid, victim), 10, "two live workers again"
        )
    finally:
        master.terminate()
        assert await asyncio.wait_for(master.wait(), 60) == 0
    assert "worker_died" in log.read_text()
    assert serving_children(master.pid) == []


async def _count_without(pid: int, victim: int) -> bool:
    live = serving_children(pid)
    return len(live) == 2 and victim not in live


async def test_workers_dying_right_after_start_end_the_master_with_status_1(serve_env):
    """Every worker killed as soon as it appears: the master gives up, saying why."""
    env, log = serve_env
    master = await start_master(env, log, free_port_pair())
    killed: set[int] = set()

    async def gave_up() -> bool:
        for child in serving_children(master.pid):
            if child not in killed:
                killed.add(child)
                os.kill(child, signal.SIGKILL)
        return master.returncode is not None

    try:
        await wait_until(gave_up, 120, "the master ends the crash loop")
    finally:
        if master.returncode is None:
            master.kill()
    assert await master.wait() == 1
    assert "workers_crash_loop" in log.read_text()
