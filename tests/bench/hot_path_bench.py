"""The hot path next to the framework's ceiling, measured with wrk, ratios in one run.

Run: .venv/bin/python -m tests.bench.hot_path_bench [seconds-per-row] [connections]
Needs `wrk` and `redis-server` on PATH (Debian packages). Every server under test runs in
its own process pinned to CPU 0 (`taskset`), wrk, Redis and the simulator on CPU 1, so the
server's core does nothing else. Rows, each run by the same wrk command:

  bare        a plain aiohttp handler returning the gateway's page bytes
  redis-get   aiohttp + one Redis GET of a value of the same size
  memory      the gateway, memory-cache hit
  redis       the gateway, Redis-cache hit

The bench prints req/s and p50/p99 for each row, then the ratios the design asks for
(memory >= 0.5 x bare, redis >= 0.8 x redis-get). Compare ratios within one run only: the
machine may be shared and noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

from tests.support import API_KEY, RedisProcess, free_port_pair

PATH = "/v1/invoices?customer_document=12345678909&limit=5"
SERVER_CPU, CLIENT_CPU = "0", "1"


# --- the servers (each started as `python -m tests.bench.hot_path_bench _<kind> ...`) ---
def _serve_bare(port: int, body_file: str) -> None:
    from aiohttp import web  # noqa: PLC0415

    body = Path(body_file).read_bytes()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/invoices", handler)
    app.router.add_get("/healthz", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _serve_redis_get(port: int, redis_url: str) -> None:
    import redis.asyncio as redis  # noqa: PLC0415
    from aiohttp import web  # noqa: PLC0415

    async def client_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["r"] = redis.Redis.from_url(redis_url)
        yield
        await app["r"].aclose()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=await request.app["r"].get("bench:page"),
            content_type="application/json",
        )

    app = web.Application()
    app.cleanup_ctx.append(client_ctx)
    app.router.add_get("/v1/invoices", handler)
    app.router.add_get("/healthz", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _serve_gateway(port: int, upstream: str, redis_url: str) -> None:
    from aiohttp import web  # noqa: PLC0415

    from gateway.app import create_app  # noqa: PLC0415
    from gateway.config.settings import Secret  # noqa: PLC0415
    from gateway.telemetry.logs import configure_logging  # noqa: PLC0415
    from tests.support import hubsoft_connection, make_settings  # noqa: PLC0415

    conn = hubsoft_connection(upstream, cache_fresh_s=3600.0, cache_stale_s=3600.0)
    settings = make_settings(
        conn, redis_url=Secret(redis_url) if redis_url != "-" else None
    )
    configure_logging("json", "info")  # as served: one canonical line per request
    web.run_app(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
    )


# --- the driver -------------------------------------------------------------------------
def _spawn(kind: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port_pair()
    proc = subprocess.Popen(  # noqa: S603 - our own argv, tools from PATH
        [  # noqa: S607
            "taskset",
            "-c",
            SERVER_CPU,
            sys.executable,
            "-m",
            "tests.bench.hot_path_bench",
            f"_{kind}",
            str(port),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        with contextlib.suppress(OSError):
            _get(base + "/healthz", auth=False)
            break
        time.sleep(0.05)
    return proc, base


def _get(url: str, *, auth: bool = True) -> bytes:
    headers = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
    with urlopen(Request(url, headers=headers), timeout=10) as resp:  # noqa: S310
        return resp.read()


def _wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
    out = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "taskset",
            "-c",
            CLIENT_CPU,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {API_KEY}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers under load:\n{out}")

    def pct(name: str) -> float:
        value, unit = re.search(rf"{name}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, pct("50"), pct("99")


async def _simulator() -> tuple[object, str]:
    from aiohttp import web  # noqa: PLC0415

    from adapters.hubsoft.simulator import HubsoftSimulator  # noqa: PLC0415
    from tests.support import TODAY  # noqa: PLC0415

    runner = web.AppRunner(HubsoftSimulator(today=TODAY).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    for tool in ("wrk", "redis-server", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed (apt-get install wrk redis-server)"
            )
    os.sched_setaffinity(0, {int(CLIENT_CPU)})  # the simulator and this driver
    loop = asyncio.new_event_loop()
    sim_runner, upstream = loop.run_until_complete(_simulator())
    # The simulator must answer while wrk runs: serve it from a thread.
    import threading  # noqa: PLC0415

    threading.Thread(target=loop.run_forever, daemon=True).start()
    redis = RedisProcess(shutil.which("redis-server") or "", Path(tempfile.mkdtemp()))
    redis.start()
    procs = []
    try:
        results: dict[str, tuple[float, float, float]] = {}
        gw_mem, base = _spawn("gateway", upstream, "-")
        procs.append(gw_mem)
        page = _get(base + PATH)  # warms the cache; this is the body every row serves
        body_file = Path(tempfile.mkdtemp()) / "page.json"
        body_file.write_bytes(page)
        results["memory"] = _wrk(base + PATH, seconds, connections)
        gw_mem.terminate()
        gw_redis, base = _spawn("gateway", upstream, redis.url)
        procs.append(gw_redis)
        _get(base + PATH)
        results["redis"] = _wrk(base + PATH, seconds, connections)
        gw_redis.terminate()
        subprocess.run(  # noqa: S603
            ["redis-cli", "-p", str(redis.port), "-x", "set", "bench:page"],  # noqa: S607
            input=page,
            check=True,
            capture_output=True,
        )
        bare, base = _spawn("bare", str(body_file))
        procs.append(bare)
        results["bare"] = _wrk(base + PATH, seconds, connections)
        bare.terminate()
        rget, base = _spawn("redis_get", redis.url)
        procs.append(rget)
        results["redis-get"] = _wrk(base + PATH, seconds, connections)
        rget.terminate()
    finally:
        for proc in procs:
            proc.terminate()
        redis.stop()
    print(f"page: {len(page)} bytes, {connections} connections, {seconds} s per row")
    print(f"{'row':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name in ("bare", "redis-get", "memory", "redis"):
        rps, p50, p99 = results[name]
        print(f"{name:<10} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f}")
    print(
        f"memory / bare     = {results['memory'][0] / results['bare'][0]:.2f}  (goal >= 0.5)"
    )
    print(
        f"redis / redis-get = {results['redis'][0] / results['redis-get'][0]:.2f}  (goal >= 0.8)"
    )
    del sim_runner


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        kind, port, *rest = sys.argv[1:]
        {
            "_bare": _serve_bare,
            "_redis_get": _serve_redis_get,
            "_gateway": _serve_gateway,
        }[kind](int(port), *rest)
    else:
        main()
