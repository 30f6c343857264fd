"""The demo's webhook receiver: a local endpoint subscribed to every event, printing them.

It checks each delivery's Standard Webhooks signature the way a real receiver would
and prints one line per event, so `invoice.paid` can be watched arriving after the
simulator's pay switch is pressed.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from aiohttp import web

from gateway import jsoncodec
from gateway.events.webhooks import sign

SECRET_VAR = "DEMO_WEBHOOK_SECRET"  # noqa: S105 - the NAME of the env var


def demo_secret() -> str:
    """A fresh signing secret for one demo run."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def receiver_app(secret: str) -> web.Application:
    """An app accepting deliveries at `/hook` and printing them."""

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "")
        expected = sign(secret, msg_id, int(stamp), body) if stamp.isdigit() else ""
        given = request.headers.get("webhook-signature", "").split()
        ok = any(hmac.compare_digest(expected, s) for s in given)
        event = jsoncodec.loads(body)
        print(  # noqa: T201 - the demo shows deliveries on its terminal
            f"webhook received: {event.get('type')} {event.get('data', {}).get('id')}"
            f" (signature {'ok' if ok else 'INVALID'})",
            flush=True,
        )
        return web.Response(status=204 if ok else 401)

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app


def demo_events_toml(receiver_port: int) -> str:
    """The `[events]` table and `[[webhooks]]` subscription of the demo."""
    return (
        "[events]\n"
        f'allowed_hosts = ["127.0.0.1:{receiver_port}"]\n'
        "retry_base_s = 1\n\n"
        '[[webhooks]]\nname = "demo-receiver"\n'
        f'url = "http://127.0.0.1:{receiver_port}/hook"\n'
        f'secret_env = "{SECRET_VAR}"\n'
    )
