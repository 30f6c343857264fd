"""The hot path next to the framework's ceiling, measured with wrk, ratios in one run.

Run: .venv/bin/python -m tests.bench.hot_path_bench [seconds] [connections] [rounds]
Needs `wrk`, `redis-server` and `taskset` on PATH (Debian: `apt-get install wrk
redis-server util-linux`) and, for the naive row, the `bench` extra
(`.venv/bin/pip install -e '.[bench]'`: FastAPI, uvicorn, httpx; the row is skipped
without it). Every server under test runs pinned to CPU 0 (`taskset`); wrk, Redis and the
Hubsoft simulator run on CPU 1, so the server's core does nothing else. Rows, each driven
by the same wrk command (1 thread, N connections, `limit=5`, a cache hit every time):

  bare        a plain aiohttp handler returning the gateway's page bytes
  redis-get   aiohttp + one Redis GET of a value of the same size
  memory      `invoice-gateway serve`, memory cache (one process)
  redis       `invoice-gateway serve` with REDIS_URL (one process)
  naive       FastAPI + httpx + Redis (`tests/bench/naive_gateway.py`, uvicorn defaults)
  redis-1w/2  the Redis gateway, one worker, allowed both CPUs (wrk and Redis on CPU 1)
  redis-2w/2  the same with `--workers 2`

bare and redis-get run on the event loop the gateway serves on (uvloop where installed)
and the Redis client the gateway uses (hiredis parser where installed). The gateways are
the real `serve` command (client limits, connection guard, JSON access log), configured
through GATEWAY_CONFIG like a deployment. All servers start first (idle ones cost nothing);
then `rounds` rounds (default 3) measure every row once each, order rotated, and each row
reports its median round. Compare ratios within one run only: the machine may be shared
and noisy. This 2-core machine cannot show what a second worker adds on
an idle core: wrk, Redis and the simulator need one; the last two rows say what it adds
when the second worker shares CPU 1 with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.request import Request, urlopen

from tests.support import API_KEY, CURSOR_SECRET, RedisProcess, free_port_pair

PATH = "/v1/invoices?customer_document=12345678909&limit=5"
SERVER_CPU, CLIENT_CPU, BOTH = "0", "1", "0,1"
ROOT = Path(__file__).resolve().parents[2]


# --- the reference servers (each `python -m tests.bench.hot_path_bench _<kind> ...`) ---
def _new_loop() -> asyncio.AbstractEventLoop:
    from gateway.cli.serving import new_event_loop  # noqa: PLC0415

    return new_event_loop()


def _serve_bare(port: int, body_file: str) -> None:
    from aiohttp import web  # noqa: PLC0415

    body = Path(body_file).read_bytes()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/invoices", handler)
    app.router.add_get("/healthz", handler)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=_new_loop()
    )


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
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=_new_loop()
    )


# --- the driver -------------------------------------------------------------------------
def _gateway_env(workdir: Path, upstream: str, redis_url: str | None) -> dict[str, str]:
    """A deployment's environment: one Hubsoft connection, an hour of freshness."""
    conf = workdir / "connections.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "bench"\n'
        f'sha256 = "{hashlib.sha256(API_KEY.encode()).hexdigest()}"\n'
        'scopes = ["invoices:read"]\n'
        f'[connections.acme]\nprovider = "hubsoft"\nbase_url = "{upstream}"\n'
        "cache_fresh_s = 3600\ncache_stale_s = 3600\n"
        '[connections.acme.secrets]\nclient_id = "H_ID"\nclient_secret = "H_S"\n'
        'username = "H_U"\npassword = "H_P"\n',
        encoding="utf-8",
    )
    from adapters.hubsoft import simulator  # noqa: PLC0415

    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
        "GATEWAY_STATE_DIR": str(workdir / "state"),
        "GATEWAY_LOG_FORMAT": "json",  # as served: one canonical line per request
        "GATEWAY_LOG_LEVEL": "info",
        "H_ID": simulator.CLIENT_ID,
        "H_S": simulator.CLIENT_SECRET,
        "H_U": simulator.USERNAME,
        "H_P": simulator.PASSWORD,
    }
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


def _spawn(
    argv: list[str], cpus: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port_pair()
    argv = [a.replace("{port}", str(port)) for a in argv]
    proc = subprocess.Popen(  # noqa: S603 - our own argv, tools from PATH
        ["taskset", "-c", cpus, *argv],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its workers go with it (killpg)
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        with contextlib.suppress(OSError):
            _get(base + "/healthz", auth=False)
            return proc, base
        if proc.poll() is not None:
            raise SystemExit(f"{argv} exited with {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit(f"{argv} did not come up")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()


def _get(url: str, *, auth: bool = True) -> bytes:
    headers = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
    with urlopen(Request(url, headers=headers), timeout=10) as resp:  # noqa: S310
        return resp.read()


def _cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every process of a process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _measure(
    url: str, pgid: int, seconds: int, connections: int
) -> tuple[float, float, float, float]:
    """(req/s, p50 ms, p99 ms, server CPU µs per request): the last one ignores noise."""
    before = _cpu_s(pgid)
    rps, p50, p99 = _wrk(url, seconds, connections)
    used = _cpu_s(pgid) - before
    return rps, p50, p99, used / (rps * seconds) * 1e6


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
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors under load:\n{out}")

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
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    for tool in ("wrk", "redis-server", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed (apt-get install wrk redis-server)"
            )
    os.sched_setaffinity(0, {int(CLIENT_CPU)})  # the simulator, Redis and this driver
    loop = asyncio.new_event_loop()
    sim_runner, upstream = loop.run_until_complete(_simulator())
    threading.Thread(target=loop.run_forever, daemon=True).start()  # answers during wrk
    workdir = Path(tempfile.mkdtemp())
    redis = RedisProcess(shutil.which("redis-server") or "", workdir)
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bases, page = _start_all(workdir, upstream, redis, procs)
        runs: dict[str, list[tuple[float, ...]]] = {name: [] for name in bases}
        names = list(bases)
        pgids = dict(zip(names, (p.pid for p in procs), strict=True))
        for n in range(rounds):  # rows interleaved, order rotated: noise spreads evenly
            for name in names[n % len(names) :] + names[: n % len(names)]:
                url = bases[name] + PATH
                runs[name].append(_measure(url, pgids[name], seconds, connections))
    finally:
        for proc in procs:
            _stop(proc)
        redis.stop()
    _print(runs, len(page), seconds, connections)
    del sim_runner


def _start_all(
    workdir: Path,
    upstream: str,
    redis: RedisProcess,
    procs: list[subprocess.Popen[bytes]],
) -> tuple[dict[str, str], bytes]:
    """Every server, each warmed with one request; (row -> base URL, the page's bytes)."""
    py = sys.executable
    serve = [py, "-m", "gateway.cli.main", "serve", "--host", "127.0.0.1"]
    serve += ["--port", "{port}"]
    renv = _gateway_env(workdir, upstream, redis.url)
    rows: list[tuple[str, list[str], str, dict[str, str] | None]] = [
        ("memory", serve, SERVER_CPU, _gateway_env(workdir, upstream, None)),
        ("redis", serve, SERVER_CPU, renv),
        ("redis-1w/2", serve, BOTH, renv),
        ("redis-2w/2", [*serve, "--workers", "2"], BOTH, renv),
    ]
    bases: dict[str, str] = {}
    page = b""
    for name, argv, cpus, env in rows:
        proc, bases[name] = _spawn(argv, cpus, env)
        procs.append(proc)
        page = _get(bases[name] + PATH)
    body_file = workdir / "page.json"
    body_file.write_bytes(page)
    subprocess.run(  # noqa: S603
        ["redis-cli", "-p", str(redis.port), "-x", "set", "bench:page"],  # noqa: S607
        input=page,
        check=True,
        capture_output=True,
    )
    me = [py, "-m", "tests.bench.hot_path_bench"]
    refs: list[tuple[str, list[str], dict[str, str] | None]] = [
        ("bare", [*me, "_bare", "{port}", str(body_file)], None),
        ("redis-get", [*me, "_redis_get", "{port}", redis.url], None),
    ]
    if importlib.util.find_spec("fastapi") and importlib.util.find_spec("uvicorn"):
        naive = [py, "-m", "uvicorn", "tests.bench.naive_gateway:app"]
        naive += ["--port", "{port}", "--log-level", "warning", "--no-access-log"]
        nenv = {
            **os.environ,
            "NAIVE_UPSTREAM": upstream,
            "NAIVE_REDIS": redis.url,
            "NAIVE_KEY": API_KEY,
        }
        refs.append(("naive", naive, nenv))
    for name, argv, env in refs:
        proc, bases[name] = _spawn(argv, SERVER_CPU, env)
        procs.append(proc)
        _get(bases[name] + PATH)
    return bases, page


def _print(
    runs: dict[str, list[tuple[float, ...]]],
    size: int,
    seconds: int,
    connections: int,
) -> None:
    from gateway.cli.serving import new_event_loop  # noqa: PLC0415

    loop = type(new_event_loop()).__module__.split(".")[0]
    parser = "hiredis" if importlib.util.find_spec("hiredis") else "python"
    rounds = len(next(iter(runs.values())))
    print(
        f"page: {size} bytes, {connections} connections, {seconds} s x {rounds} rounds "
        f"per row (interleaved), loop: {loop}, redis parser: {parser}"
    )
    print(
        "each row: the median round's req/s, p50, p99; the median server CPU µs per"
        " request (all its processes; steadier than req/s on a busy machine); every"
        " round's req/s"
    )
    print(
        f"{'row':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu µs':>8}   rounds"
    )
    order = [
        "bare",
        "redis-get",
        "memory",
        "redis",
        "naive",
        "redis-1w/2",
        "redis-2w/2",
    ]
    results: dict[str, tuple[float, ...]] = {}
    cpu: dict[str, float] = {}
    for name in [n for n in order if n in runs]:
        ranked = sorted(runs[name])
        results[name] = rps, p50, p99, _ = ranked[len(ranked) // 2]
        cpu[name] = sorted(r[3] for r in runs[name])[len(ranked) // 2]
        every = " ".join(f"{r[0]:.0f}" for r in runs[name])
        print(
            f"{name:<11} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {cpu[name]:>8.0f}   {every}"
        )

    def ratio(a: str, b: str, goal: str) -> None:
        if a in results and b in results:
            value = results[a][0] / results[b][0]
            by_cpu = cpu[b] / cpu[a]
            print(
                f"{a + ' / ' + b:<24} = {value:6.2f} req/s, {by_cpu:6.2f} by CPU per"
                f" request  (goal {goal})"
            )

    ratio("memory", "bare", ">= 0.5")
    ratio("redis", "redis-get", ">= 0.8")
    ratio("memory", "naive", ">= 20")
    ratio("redis", "naive", ">= 20")
    ratio("redis-2w/2", "redis-1w/2", ">= 1.7 on idle cores; see the docstring")
    print(f"memory p99 = {results['memory'][2]:.2f} ms  (goal <= 10)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        kind, port, *rest = sys.argv[1:]
        {"_bare": _serve_bare, "_redis_get": _serve_redis_get}[kind](int(port), *rest)
    else:
        main()
