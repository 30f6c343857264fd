"""The command line: the demo serves real data; check-config and hash-key behave."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import io
import json
import os
import re
import socket
import sys
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest

from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from gateway.cli.faultspec import parse_faults
from gateway.cli.main import main
from gateway.errors import ConfigError
from tests.processes import launch, read_until, stop
from tests.support import CURSOR_SECRET, free_port_pair

PROVIDERS = ["fintera", "hubsoft", "xarios"]


async def test_demo_serves_simulated_data_with_printed_key():
    """`invoice-gateway demo`: its curl examples work, and so does its customer token."""
    proc = await launch(
        "demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out = await read_until(proc.stdout, "/v1/connections")
        out += await read_until(proc.stdout, "due_from")
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
        token = re.search(r"demo customer token \(\d+, 12 h\): (\S+)", out).group(1)
        assert f"invoice page: {base}/app/" in out
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
            http.get(f"{base}/v1/invoices?limit=200") as resp,
        ):
            body = await resp.json()
            assert resp.status == 200, body
            assert {i["provider"] for i in body["data"]} == {
                "hubsoft",
                "fintera",
                "xarios",
            }
            assert {i["customer"]["document"] for i in body["data"]} == {"12345678909"}
    finally:
        await stop(proc)


def test_hash_key_reads_the_key_from_stdin(monkeypatch, capsys):
    """`hash-key` reads the key from stdin (not argv) and prints its SHA-256."""
    key = "Zx8-qQ2vLm4tR7yWc1KpE9sB"
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    assert main(["hash-key"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(key.encode()).hexdigest()


def test_hash_key_prompts_on_a_terminal(monkeypatch, capsys):
    """On a terminal `hash-key` asks for the key without echoing it."""
    key = "Zx8-qQ2vLm4tR7yWc1KpE9sB"
    tty = io.StringIO()
    tty.isatty = lambda: True
    monkeypatch.setattr(sys, "stdin", tty)
    prompts = []
    monkeypatch.setattr(
        getpass, "getpass", lambda prompt: prompts.append(prompt) or key
    )
    assert main(["hash-key"]) == 0
    assert prompts
    assert capsys.readouterr().out.strip() == hashlib.sha256(key.encode()).hexdigest()


def test_hash_key_refuses_a_key_on_the_command_line(capsys):
    """A key given as an argument is refused: it would land in shell history and `ps`."""
    with pytest.raises(SystemExit) as info:
        main(["hash-key", "Zx8-qQ2vLm4tR7yWc1KpE9sB"])
    assert info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key", ["", "   ", "short-key", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "change-me"]
)
def test_hash_key_refuses_empty_short_or_guessable_keys(monkeypatch, capsys, key):
    """An empty, short, repetitive or placeholder key is refused, and nothing is printed."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    assert main(["hash-key"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "hash-key:" in out.err


def test_hash_key_generate_prints_a_key_and_its_hash(capsys):
    """`hash-key --generate` makes a random key and prints it with the matching hash."""
    assert main(["hash-key", "--generate"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"key:\s+(\S+)", out).group(1)
    digest = re.search(r"sha256:\s+(\S+)", out).group(1)
    assert len(key) >= 40
    assert digest == hashlib.sha256(key.encode()).hexdigest()


def test_version_prints_the_installed_version(capsys):
    """`--version` prints the package version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert (
        capsys.readouterr().out.strip()
        == f"invoice-gateway {version('invoice-gateway')}"
    )


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
    monkeypatch.setenv("GATEWAY_CURSOR_SECRET", CURSOR_SECRET)
    assert main(["check-config"]) == 0
    assert "ok: 1 connection(s)" in capsys.readouterr().out


def test_demo_fault_specs_parse_with_aliases():
    """`--fault PROVIDER=FAULT[:VALUE][@RATIO]`: aliases expand, numbers stay numbers."""
    assert parse_faults(
        ["hubsoft=slow", "fintera=status:503@0.5", "xarios=latency:0.25"], PROVIDERS
    ) == {
        "hubsoft": [("latency", 3.0, 1.0)],
        "fintera": [("status", 503, 0.5)],
        "xarios": [("latency", 0.25, 1.0)],
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sap=slow", "unknown provider 'sap'; known: fintera, hubsoft, xarios"),
        ("hubsoft", "use PROVIDER=FAULT[:VALUE][@RATIO]"),
        ("hubsoft=", "use PROVIDER=FAULT[:VALUE][@RATIO]"),
        ("hubsoft=status:", "use PROVIDER=FAULT[:VALUE][@RATIO]"),
        ("hubsoft=status:abc", "VALUE 'abc' is not a number"),
        ("hubsoft=latency:nan", "not a finite number"),
        ("hubsoft=status@often", "RATIO 'often' is not a number"),
        ("hubsoft=slow@2", "RATIO 2 is outside (0, 1]"),
        ("hubsoft=slow@0", "RATIO 0 is outside (0, 1]"),
        ("hubsoft=slow@-0.5", "outside (0, 1]"),
    ],
)
def test_demo_fault_spec_refused_with_the_reason(spec, message):
    """A malformed `--fault` is refused before anything starts, saying what is wrong."""
    with pytest.raises(ConfigError) as info:
        parse_faults([spec], PROVIDERS)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hubsoft=status:999", "not an HTTP error status (400-599)"),
        ("hubsoft=status:200", "not an HTTP error status (400-599)"),
        ("fintera=nosuch", "unknown fault 'nosuch'"),
        ("xarios=latency:-1", "must not be negative"),
    ],
)
def test_demo_refuses_a_fault_the_simulator_cannot_use(spec, message, capsys):
    """`demo --fault` with a fault or value the simulator cannot use exits 2 at once."""
    assert main(["demo", "--port", "0", "--fault", spec]) == 2
    assert message in capsys.readouterr().err


def test_demo_help_lists_the_fault_aliases(capsys):
    """`demo --help` names every alias and what it means."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for alias in ("slow (3 s latency)", "down (status 503)", "hang", "garbage"):
        assert alias in text


def hubsoft_config(tmp_path, monkeypatch, base_url="https://h.example"):
    """A valid one-connection config in the env of this process (for in-process `main`)."""
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "a"\nsha256 = "{hashlib.sha256(b"x").hexdigest()}"\n'
        f'[connections.acme]\nprovider = "hubsoft"\nbase_url = "{base_url}"\n'
        '[connections.acme.secrets]\nclient_id = "A_ID"\nclient_secret = "A_S"\n'
        'username = "A_U"\npassword = "A_P"\n',
        encoding="utf-8",
    )
    for var, value in (
        ("A_ID", CLIENT_ID),
        ("A_S", CLIENT_SECRET),
        ("A_U", USERNAME),
        ("A_P", PASSWORD),
    ):
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("GATEWAY_CONFIG", str(conf))
    monkeypatch.setenv("GATEWAY_CURSOR_SECRET", CURSOR_SECRET)
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    return conf


def test_check_config_refuses_the_example_env_placeholder(
    tmp_path, monkeypatch, capsys
):
    """The cursor secret left as in deploy/gateway.env.example is refused by check-config."""
    hubsoft_config(tmp_path, monkeypatch)
    example = Path("deploy/gateway.env.example").read_text(encoding="utf-8")
    placeholder = re.search(
        r"^GATEWAY_CURSOR_SECRET=(.+)$", example, re.MULTILINE
    ).group(1)
    monkeypatch.setenv("GATEWAY_CURSOR_SECRET", placeholder)
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "GATEWAY_CURSOR_SECRET: is a placeholder" in err
    assert placeholder not in err


def test_serve_on_a_taken_port_is_one_line_not_a_traceback(
    tmp_path, monkeypatch, capsys
):
    """`serve` on a port another process holds exits 1 with one clear line."""
    hubsoft_config(tmp_path, monkeypatch)
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        assert main(["serve", "--host", "127.0.0.1", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"invoice-gateway: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_serve_with_workers_and_no_redis_is_refused(tmp_path, monkeypatch, capsys):
    """`serve --workers 2` without REDIS_URL exits 2 naming REDIS_URL; nothing starts."""
    hubsoft_config(tmp_path, monkeypatch)
    assert main(["serve", "--workers", "2", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "--workers 2: needs REDIS_URL" in err


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_serve_refuses_a_worker_count_below_one(workers, capsys):
    """`--workers` takes a whole number of at least 1; anything else is a usage error."""
    with pytest.raises(SystemExit) as info:
        main(["serve", "--workers", workers])
    assert info.value.code == 2
    assert "is not a whole number of at least 1" in capsys.readouterr().err


async def test_serve_prints_a_startup_line(tmp_path, monkeypatch):
    """`serve` logs one line with address, workers, backends, connections; healthcheck agrees.

    `healthcheck` (the image's HEALTHCHECK) finds the gateway on the configured port, and
    fails once it is gone.
    """
    hubsoft_config(tmp_path, monkeypatch)
    port = free_port_pair()
    proc = await launch(
        "serve",
        "--port",
        str(port),
        env={**os.environ, "GATEWAY_LOG_FORMAT": "json"},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            line = await proc.stderr.readline()
        event = json.loads(line)
        assert event["event"] == "starting"
        assert event["address"] == f"http://127.0.0.1:{port}"
        assert event["workers"] == 1
        assert event["cache"] == "memory (max 10000 entries)"
        assert event["state"].startswith("this process")
        assert event["connections"] == ["acme (hubsoft)"]
        assert event["version"] == version("invoice-gateway")
        monkeypatch.setenv("GATEWAY_PORT", str(port))
        monkeypatch.setenv("GATEWAY_HOST", "0.0.0.0")  # noqa: S104 - as in the image
        for _ in range(300):  # the line comes first, then the port is bound: wait
            if (healthy_code := await asyncio.to_thread(main, ["healthcheck"])) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await stop(proc)
    assert healthy_code == 0
    assert await asyncio.to_thread(main, ["healthcheck"]) == 1
