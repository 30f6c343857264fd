"""The command line: the demo serves real data; check-config and hash-key behave."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from pathlib import Path

import aiohttp
import pytest

from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from gateway.__main__ import main, parse_faults
from gateway.errors import ConfigError
from tests.support import free_port_pair


async def test_demo_serves_simulated_data_with_printed_key():
    """`invoice-gateway demo` starts simulators and gateway and its curl examples work."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out = ""
        async with asyncio.timeout(30):
            while "/v1/connections" not in out:
                out += (await proc.stdout.readline()).decode()
            while "due_from" not in out:
                out += (await proc.stdout.readline()).decode()
        base = re.search(r"is up at (http://\S+)", out).group(1)
        key = re.search(r"demo API key: (\S+)", out).group(1)
        examples = re.findall(rf"'({re.escape(base)}/v1/invoices\?[^']+)'", out)
        assert len(examples) >= 3
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {key}"}
        ) as http:
            for url in examples:
                async with http.get(url) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                    assert body["data"], url
                    assert all(
                        s["status"] in {"ok", "skipped"} for s in body["sources"]
                    )
    finally:
        proc.terminate()
        await proc.wait()


def test_hash_key_prints_sha256(capsys):
    """`hash-key` prints what goes into `[[api_keys]].sha256`."""
    assert main(["hash-key", "secret-key"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(b"secret-key").hexdigest()


def test_check_config_lists_problems_and_exits_2(tmp_path, monkeypatch, capsys):
    """A bad configuration exits 2 with every problem printed."""
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.delenv("GATEWAY_CURSOR_SECRET", raising=False)
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err
    assert "GATEWAY_CURSOR_SECRET" in err


def test_check_config_accepts_a_good_file(tmp_path, monkeypatch, capsys):
    """A good file and env pass, adapters included."""
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "a"\nsha256 = "{hashlib.sha256(b"x").hexdigest()}"\n'
        '[connections.acme]\nprovider = "hubsoft"\nbase_url = "https://h.example"\n'
        '[connections.acme.secrets]\nclient_id = "A_ID"\nclient_secret = "A_S"\n'
        'username = "A_U"\npassword = "A_P"\n',
        encoding="utf-8",
    )
    for var in ("A_ID", "A_S", "A_U", "A_P"):
        monkeypatch.setenv(var, "v")
    monkeypatch.setenv("GATEWAY_CONFIG", str(conf))
    monkeypatch.setenv("GATEWAY_CURSOR_SECRET", "z" * 32)
    assert main(["check-config"]) == 0
    assert "ok: 1 connection(s)" in capsys.readouterr().out


def test_demo_fault_specs_parse_and_refuse_nonsense():
    """`--fault PROVIDER=FAULT[:VALUE][@RATIO]`, with aliases; bad specs are config errors."""
    assert parse_faults(["hubsoft=slow", "fintera=status:503@0.5"]) == {
        "hubsoft": [("latency", 3.0, 1.0)],
        "fintera": [("status", 503.0, 0.5)],
    }
    for bad in ("sap=slow", "hubsoft", "hubsoft=status@often"):
        with pytest.raises(ConfigError):
            parse_faults([bad])


def serving_children(pid: int) -> list[str]:
    """Child processes of `pid` started by multiprocessing's spawn (not its helpers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        c
        for c in children
        if "spawn_main"
        in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")
    ]


async def test_serve_with_workers_runs_that_many_processes_on_one_port(
    tmp_path, hubsoft_url, redis_server
):
    """`serve --workers 2`: two serving children share the port and answer; SIGTERM ends all."""
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "w"\nsha256 = "{hashlib.sha256(b"wk").hexdigest()}"\n'
        f'[connections.acme]\nprovider = "hubsoft"\nbase_url = "{hubsoft_url}"\n'
        '[connections.acme.secrets]\nclient_id = "A_ID"\nclient_secret = "A_S"\n'
        'username = "A_U"\npassword = "A_P"\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": "w" * 32,
        "GATEWAY_STATE_DIR": str(tmp_path / "state"),
        "REDIS_URL": redis_server.url,
        "A_ID": CLIENT_ID,
        "A_S": CLIENT_SECRET,
        "A_U": USERNAME,
        "A_P": PASSWORD,
    }
    port = free_port_pair()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession(
            headers={"Authorization": "Bearer wk"}
        ) as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            url = f"http://127.0.0.1:{port}/v1/invoices?customer_document=12345678909"
            for _ in range(10):
                async with http.get(url) as resp:
                    assert resp.status == 200
        serving = serving_children(proc.pid)
        assert len(serving) == 2
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0
