"""Test helpers shared by the suites: fixed clock, keys, settings builders."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import subprocess
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from gateway.config.settings import ApiKey, ConnectionSettings, Secret, Settings
from gateway.telemetry.logs import flush_logs

TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
API_KEY = "test-key-0123456789"
DOC = "12345678909"  # Maria's CPF: the demo customer every simulator bills
LIMITED_KEY = "limited-key-0123456789"
READER_KEY = "reader-key-0123456789"
# Fixed (tests are repeatable) but random-looking: settings refuse predictable secrets.
CURSOR_SECRET = "9f3c1a7e5b2d8046c1e9a3f7b5d20864e7c3a9f1b5d7028e"


def hubsoft_connection(
    base_url: str, cid: str = "acme-isp", **kw
) -> ConnectionSettings:
    """A Hubsoft connection with the simulator's credentials."""
    secrets = {
        "client_id": Secret(CLIENT_ID),
        "client_secret": Secret(CLIENT_SECRET),
        "username": Secret(USERNAME),
        "password": Secret(PASSWORD),
    }
    return ConnectionSettings(
        id=cid,
        provider="hubsoft",
        base_url=base_url,
        secrets=secrets,
        timezone=ZoneInfo("America/Sao_Paulo"),
        **kw,
    )


def make_settings(*connections: ConnectionSettings, **kw) -> Settings:
    """Settings with a full-access key and a key limited to no connection at all."""
    keys = (
        ApiKey(
            "tests",
            hashlib.sha256(API_KEY.encode()).hexdigest(),
            frozenset({"invoices:read", "sale_accounts:write"}),
            None,
        ),
        ApiKey(
            "reader",
            hashlib.sha256(READER_KEY.encode()).hexdigest(),
            frozenset({"invoices:read"}),
            None,
        ),
        ApiKey(
            "limited",
            hashlib.sha256(LIMITED_KEY.encode()).hexdigest(),
            frozenset({"invoices:read"}),
            frozenset(),
        ),
    )
    return Settings(
        connections=connections,
        api_keys=keys,
        cursor_secret=Secret(CURSOR_SECRET),
        **kw,
    )


AUTH = {"Authorization": f"Bearer {API_KEY}"}


class FakeClock:
    """An epoch-seconds clock a test moves by hand."""

    def __init__(self, start: float) -> None:
        """Start at `start`."""
        self.now = start

    def __call__(self) -> float:
        """The current fake time."""
        return self.now


def xarios_connection(
    base_url: str, refresh: str | None, cid: str = "reseller", **kw
) -> ConnectionSettings:
    """A Xarios connection whose identity server is the simulator itself."""
    from adapters.xarios.simulator import CLIENT_ID as X_ID  # noqa: PLC0415
    from adapters.xarios.simulator import CLIENT_SECRET as X_SECRET  # noqa: PLC0415

    secrets = {"client_id": Secret(X_ID), "client_secret": Secret(X_SECRET)}
    if refresh is not None:
        secrets["refresh_token"] = Secret(refresh)
    options = {"auth_url": base_url, **kw.pop("options", {})}
    return ConnectionSettings(
        id=cid,
        provider="xarios",
        base_url=base_url,
        secrets=secrets,
        options=options,
        **kw,
    )


def fintera_connection(base_url: str, cid: str = "fin", **kw) -> ConnectionSettings:
    """A Fintera connection with the simulator's token and account."""
    from adapters.fintera.simulator import API_TOKEN, ENTITIES  # noqa: PLC0415

    options = {"account_id": 3613, "entity_ids": ENTITIES, **kw.pop("options", {})}
    options = {k: v for k, v in options.items() if v is not None}
    secrets = kw.pop("secrets", {"api_token": Secret(API_TOKEN)})
    return ConnectionSettings(
        id=cid,
        provider="fintera",
        base_url=base_url,
        secrets=secrets,
        options=options,
        **kw,
    )


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A free port P whose P + 10000 is free too (a cluster node's bus port)."""
    rng = random.Random()  # noqa: S311 - picking test ports, not secrets
    for _ in range(200):
        port = rng.randint(20000, 29999)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair")


class RedisProcess:
    """A redis-server child process on a free port (no persistence), restartable."""

    def __init__(self, binary: str, workdir: Path) -> None:
        """Pick a free port now; start later."""
        self.binary = binary
        self.workdir = workdir
        self.port = free_port_pair()
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra: list[str] = []

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:<port>/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.proc = subprocess.Popen(  # noqa: S603 - our own fixed argv
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Kill it (as a crash would) and reap it."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


class RedisClusterProcesses:
    """A real Redis Cluster: `size` masters on free ports, made with `redis-cli --cluster`."""

    def __init__(self, binary: str, cli: str, workdir: Path, size: int = 3) -> None:
        """Prepare `size` nodes; start later."""
        self.cli = cli
        self.nodes = [RedisProcess(binary, workdir / f"node{n}") for n in range(size)]

    @property
    def url(self) -> str:
        """Any node's URL: the client discovers the rest."""
        return self.nodes[0].url

    def start(self) -> None:
        """Start the nodes, create the cluster, wait until every slot is served."""
        for node in self.nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            node.extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(  # noqa: S603 - our own fixed argv
            [
                self.cli,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = subprocess.run(  # noqa: S603
                [self.cli, "-p", str(self.nodes[0].port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            if "cluster_state:ok" in info:
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis cluster did not become ready")

    def flush(self) -> None:
        """Empty every node (between tests sharing the cluster)."""
        for node in self.nodes:
            subprocess.run(  # noqa: S603
                [self.cli, "-p", str(node.port), "flushall"],
                capture_output=True,
                timeout=10,
                check=True,
            )

    def stop(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.stop()


def log_lines(stream: io.BytesIO, event: str) -> list[dict[str, object]]:
    """The JSON log lines of `event` written to `stream` so far (batches flushed)."""
    flush_logs()  # what waits for its batch
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["event"] == event]
