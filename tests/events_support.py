"""Helpers for the events tests: gateway processes, a webhook receiver, waiting."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.hubsoft.simulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    USERNAME,
    HubsoftSimulator,
)
from tests.processes import healthy, launch, stop
from tests.support import CURSOR_SECRET
from tests.test_multiprocess import free_port

ADMIN_KEY = "events-admin-key-0123"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout_s: float = 30.0, step_s: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy (generous bound, no tight timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step_s)


@dataclass
class Receiver:
    """A webhook endpoint: records every request; can fail or hang on purpose."""

    fail_first: int = 0
    hang_first: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        """The receiving aiohttp app."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        entry = {"headers": dict(request.headers), "body": body, "status": 0}
        self.received.append(entry)
        if self.hang_first and len(self.received) == 1:
            await self.release.wait()
        status = 500 if len(self.received) <= self.fail_first else 204
        entry["status"] = status
        return web.Response(status=status)

    def delivered(self) -> list[dict[str, Any]]:
        """Requests answered with success."""
        return [r for r in self.received if r["status"] == 204]


def unpaid_in_window(sim: HubsoftSimulator, today: date) -> int:
    """An unpaid invoice whose due date the detector watches (relative to `today`)."""
    for inv in sim.invoices:
        if inv.paid_on is None and today - timedelta(days=60) <= inv.due <= today:
            return inv.id
    raise AssertionError("no unpaid invoice in the window")


EVENTS = {
    "lease_s": 1.5,
    "delivery_poll_s": 0.2,
    "claim_idle_s": 3,
    "retry_base_s": 0.2,
    "retry_max_s": 1,
    "delivery_timeout_s": 2,
}


def write_config(
    path: Path,
    hubsoft_url: str,
    receiver_port: int,
    *,
    sync_interval_s: float = 0.5,
    events: dict[str, float] | None = None,
) -> None:
    """A connections file: one watched Hubsoft connection and one webhook."""
    table = "".join(f"{k} = {v}\n" for k, v in {**EVENTS, **(events or {})}.items())
    digest = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    path.write_text(
        f'[[api_keys]]\nname = "admin"\nsha256 = "{digest}"\n'
        'scopes = ["invoices:read", "admin"]\n'
        f'[connections.acme-isp]\nprovider = "hubsoft"\nbase_url = "{hubsoft_url}"\n'
        f"sync_interval_s = {sync_interval_s}\n"
        '[connections.acme-isp.secrets]\nclient_id = "H_ID"\nclient_secret = "H_SECRET"\n'
        'username = "H_USER"\npassword = "H_PASS"\n'
        f"[events]\n{table}"
        f'allowed_hosts = ["127.0.0.1:{receiver_port}"]\n'
        f'[[webhooks]]\nname = "ledger"\nurl = "http://127.0.0.1:{receiver_port}/hook"\n'
        'types = ["invoice.paid"]\n'
        'secret_env = "LEDGER_SECRET"\n',
        encoding="utf-8",
    )


@dataclass
class Gateways:
    """Gateway processes started by a test; each can be killed on its own."""

    config: Path
    redis_url: str
    state_dir: Path
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def start(self) -> str:
        """One more `invoice-gateway serve` process; its base URL once it answers."""
        port = free_port()
        env = {
            **os.environ,
            "GATEWAY_CONFIG": str(self.config),
            "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
            "GATEWAY_STATE_DIR": str(self.state_dir),
            "GATEWAY_LOG_LEVEL": "info",
            "REDIS_URL": self.redis_url,
            "H_ID": CLIENT_ID,
            "H_SECRET": CLIENT_SECRET,
            "H_USER": USERNAME,
            "H_PASS": PASSWORD,
            "LEDGER_SECRET": WEBHOOK_SECRET,
        }
        log = self.state_dir.parent / f"gateway-{port}.log"
        # Open only while launching: the child writes to its own copy of the descriptor,
        # and no file of ours is left for a failed stop to leak into a later test.
        with log.open("wb") as out:
            proc = await launch("serve", "--port", str(port), env=env, stderr=out)
        base = f"http://127.0.0.1:{port}"
        self.procs[base] = proc
        await healthy(base, proc, log=log)
        return base

    async def kill(self, base: str) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        proc = self.procs.pop(base)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop_all(self) -> None:
        """Terminate every process still running."""
        await stop(*self.procs.values())
        self.procs.clear()


async def is_leader(base: str) -> bool:
    """Whether the process at `base` reports itself the sync leader."""
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as resp:
        text = await resp.text()
    return "gateway_events_sync_leader 1.0" in text
