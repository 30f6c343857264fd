"""The hot path next to the framework's ceiling, measured with wrk, ratios in one run.

Run: .venv/bin/python -m tests.bench.hot_path_bench [seconds] [connections] [rounds]
Needs `wrk`, `redis-server` and `taskset` on PATH (Debian: `apt-get install wrk
redis-server util-linux`) and, for the naive row, the `bench` extra
(`.venv/bin/pip install -e '.[bench]'`: FastAPI, uvicorn, httpx; the row is skipped
without it). Every server under test runs pinned to CPU 0 (`taskset`); wrk, Redis and the
three simulators run on CPU 1, so the server's core does nothing else.

The setting is the issue's and the demo's: three sources, one connection each to the
Hubsoft, Xarios and Fintera simulators (`demo-hubsoft`, `demo-xarios` with its rotating
refresh token and the demo's document -> tenant map, `demo-fintera` with its static token
and account; an hour of freshness, no change detector), and the demo customer
12345678909, billed by all three (46 invoices: 19 + 14 + 13). The page measured is
`/v1/invoices?customer_document=12345678909&limit=5`, a cache hit every time. Rows, each
driven by the same wrk command (1 thread, N connections):

  bare        a plain aiohttp handler returning the gateway's page bytes
  redis-get   aiohttp + one Redis GET of a value of the same size
  memory      `invoice-gateway serve`, memory cache (one process)
  redis       `invoice-gateway serve` with REDIS_URL (one process)
  naive       FastAPI + httpx + Redis (`tests/bench/naive_gateway.py`, uvicorn defaults):
              per request three Redis GETs (one per source, gathered), parse, pydantic
              per row, merge, sort, page, the response model
  redis-1w/2  the Redis gateway, one worker, allowed both CPUs (wrk and Redis on CPU 1)
  redis-2w/2  the same with `--workers 2`

Before measuring, every gateway and the naive are asked the page twice and the same query
with `limit=200` once: each answer must show all three sources `ok` (the second from the
cache, fresh, `complete`), and the wide one invoices of all three providers. The bytes
bare and redis-get return are the gateway's own second answer (a page-cache hit). After
the rounds the simulators must have had no request since the warm-up: every measured
request was answered from the cache (the gateway's page cache keeps exactly such pages:
every source ok and fresh). A Xarios refresh token is one-time, so each consumer gets its
own consent: the memory gateway, the Redis gateways (one token store, in Redis) and the
naive.

bare and redis-get run on the event loop the gateway serves on (uvloop where installed)
and the Redis client the gateway uses (hiredis parser where installed). The gateways are
the real `serve` command (client limits, connection guard, JSON access log), configured
through GATEWAY_CONFIG like a deployment. All servers start first (idle ones cost nothing);
then `rounds` rounds (default 3) measure every row once each, order rotated, and each row
reports its median round. Each ratio is printed three ways: of the rows' median rounds,
of their median CPU time per request, and the median of each round's own ratio (two rows
measured within a minute of each other: the steadiest on a machine whose speed drifts).
Compare ratios within one run only: the machine may be shared and noisy. This 2-core
machine cannot show what a second worker adds on an idle core: wrk, Redis and the
simulators need one; the last two rows say what it adds when the second worker shares
CPU 1 with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from gateway.cli.demo import DEMO_CUSTOMER, connection_toml
from tests.support import API_KEY, CURSOR_SECRET, RedisProcess, free_port_pair

PATH = f"/v1/invoices?customer_document={DEMO_CUSTOMER}&limit=5"
WIDE = f"/v1/invoices?customer_document={DEMO_CUSTOMER}&limit=200"  # checked, not timed
PROVIDERS = {"hubsoft", "xarios", "fintera"}
FRESH_S = 3600
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
@dataclass
class Upstreams:
    """The three simulators on loopback: each connection's demo settings and base URL."""

    connections: list[tuple[Any, str]]  # (gateway.upstream.providers.DemoUpstream, URL)
    logs: list[list[dict[str, Any]]]  # each simulator's request log
    consent: Any  # the Xarios simulator's `issue_refresh_token`: one per consumer

    def calls(self) -> int:
        """Requests the simulators have answered so far."""
        return sum(len(log) for log in self.logs)

    def url(self, provider: str) -> str:
        """The base URL of `provider`'s simulator."""
        return next(url for up, url in self.connections if up.provider == provider)


def _gateway_env(
    workdir: Path, name: str, upstreams: Upstreams, redis_url: str | None
) -> dict[str, str]:
    """A deployment's environment: the demo's three connections, an hour of freshness.

    Each call is one consumer: its own Xarios consent (a refresh token is one-time) and
    its own state directory.
    """
    env: dict[str, str] = {}
    key_hash = hashlib.sha256(API_KEY.encode()).hexdigest()
    api_key = f'name = "bench"\nsha256 = "{key_hash}"\nscopes = ["invoices:read"]\n'
    parts = [f"[[api_keys]]\n{api_key}"]
    for up, base_url in upstreams.connections:
        if (
            "refresh_token" in up.secrets
        ):  # its own consent: a refresh token is one-time
            up = dataclasses.replace(  # noqa: PLW2901 - this consumer's copy
                up, secrets={**up.secrets, "refresh_token": upstreams.consent()}
            )
        settings = f"cache_fresh_s = {FRESH_S}\ncache_stale_s = {FRESH_S}"
        parts.append(connection_toml(up, base_url, settings, env, "BENCH"))
    conf = workdir / f"{name}.toml"
    conf.write_text("\n".join(parts), encoding="utf-8")
    env = {
        **os.environ,
        **env,
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
        "GATEWAY_STATE_DIR": str(workdir / f"state-{name}"),
        "GATEWAY_LOG_FORMAT": "json",  # as served: one canonical line per request
        "GATEWAY_LOG_LEVEL": "info",
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
        body: bytes = resp.read()
    return body


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


def wrk(url: str, seconds: int, connections: int, *extra: str) -> str:
    """wrk's report of one run (1 thread, `connections`, the bench's API key) from CPU 1."""
    out = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "taskset",
            "-c",
            CLIENT_CPU,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            *extra,
            "-H",
            f"Authorization: Bearer {API_KEY}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors under load:\n{out}")
    return out


def _wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
    out = wrk(url, seconds, connections, "--latency")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(name: str) -> float:
        value, unit = re.search(rf"{name}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, pct("50"), pct("99")


async def _simulators() -> tuple[list[object], Upstreams]:
    """The Hubsoft, Xarios and Fintera simulators as the demo runs them (on this loop)."""
    from aiohttp import web  # noqa: PLC0415

    from adapters.fintera import simulator as fintera  # noqa: PLC0415
    from adapters.hubsoft import simulator as hubsoft  # noqa: PLC0415
    from adapters.xarios import simulator as xarios  # noqa: PLC0415
    from tests.support import TODAY  # noqa: PLC0415

    hub = hubsoft.HubsoftSimulator(today=TODAY)
    xar = xarios.XariosSimulator(today=TODAY)
    fin = fintera.FinteraSimulator(today=TODAY)
    demos = [
        hubsoft.demo_upstream(TODAY, hub),
        xarios.demo_upstream(TODAY, xar),
        fintera.demo_upstream(TODAY, fin),
    ]
    runners: list[object] = []
    connections = []
    for up in demos:
        runner = web.AppRunner(up.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)
        connections.append((up, f"http://127.0.0.1:{port}"))
    logs = [hub.board.requests, xar.board.requests, fin.board.requests]
    return runners, Upstreams(connections, logs, xar.issue_refresh_token)


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    for tool in ("wrk", "redis-server", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed (apt-get install wrk redis-server)"
            )
    os.sched_setaffinity(0, {int(CLIENT_CPU)})  # the simulators, Redis and this driver
    loop = asyncio.new_event_loop()
    sim_runners, upstreams = loop.run_until_complete(_simulators())
    threading.Thread(target=loop.run_forever, daemon=True).start()  # answers during wrk
    workdir = Path(tempfile.mkdtemp())
    redis = RedisProcess(shutil.which("redis-server") or "", workdir)
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bases, page = _start_all(workdir, upstreams, redis, procs)
        warmed = upstreams.calls()
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
    del sim_runners
    during = upstreams.calls() - warmed
    print(f"upstream requests while measuring: {during} (0: every request a cache hit)")
    if during:
        raise SystemExit("some measured requests were not cache hits")


def _check(name: str, base: str, *, gateway: bool) -> bytes:
    """The page asked twice and the wide query once; (the second answer's bytes).

    Fails unless every answer has all three sources `ok`, the second from the cache
    (and, from the gateway, fresh and complete), and the wide one holds invoices of all
    three providers.
    """
    conns = {"demo-hubsoft", "demo-xarios", "demo-fintera"}
    _get(base + PATH)
    page = _get(base + PATH)
    for text, body in (("page", page), ("limit=200", _get(base + WIDE))):
        answer = json.loads(body)
        sources = {s["connection"]: s for s in answer["sources"]}
        problems = [
            f"{c}: {sources.get(c)}"
            for c in sorted(conns)
            if c not in sources
            or sources[c]["status"] != "ok"
            or not sources[c]["from_cache"]
            or (gateway and not 0 <= sources[c]["age_s"] < FRESH_S)
        ]
        providers = {inv["id"].split(":", 1)[0] for inv in answer["data"]}
        if text == "limit=200" and providers != PROVIDERS:
            problems.append(f"invoices of {sorted(providers)} only")
        if not answer["complete"] or problems:
            raise SystemExit(f"{name} ({text}) is not a full cache hit: {problems}")
    return page


def _start_all(
    workdir: Path,
    upstreams: Upstreams,
    redis: RedisProcess,
    procs: list[subprocess.Popen[bytes]],
) -> tuple[dict[str, str], bytes]:
    """Every server, each warmed and checked; (row -> base URL, the page's bytes)."""
    py = sys.executable
    serve = [py, "-m", "gateway.cli.main", "serve", "--host", "127.0.0.1"]
    serve += ["--port", "{port}"]
    renv = _gateway_env(workdir, "redis", upstreams, redis.url)
    rows: list[tuple[str, list[str], str, dict[str, str] | None]] = [
        ("memory", serve, SERVER_CPU, _gateway_env(workdir, "memory", upstreams, None)),
        ("redis", serve, SERVER_CPU, renv),
        ("redis-1w/2", serve, BOTH, renv),
        ("redis-2w/2", [*serve, "--workers", "2"], BOTH, renv),
    ]
    bases: dict[str, str] = {}
    pages: dict[str, bytes] = {}
    for name, argv, cpus, env in rows:
        proc, bases[name] = _spawn(argv, cpus, env)
        procs.append(proc)
        pages[name] = _check(name, bases[name], gateway=True)
    datas = {json.dumps(json.loads(p)["data"]) for p in pages.values()}
    if len(datas) != 1:
        raise SystemExit("the gateway rows do not serve the same invoices")
    page = pages["redis"]
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
        xarios = next(up for up, _ in upstreams.connections if up.provider == "xarios")
        nenv = {
            **os.environ,
            "NAIVE_HUBSOFT": upstreams.url("hubsoft"),
            "NAIVE_XARIOS": upstreams.url("xarios"),
            "NAIVE_FINTERA": upstreams.url("fintera"),
            "NAIVE_XARIOS_REFRESH": upstreams.consent(),
            "NAIVE_XARIOS_TENANTS": json.dumps(xarios.options["document_tenants"]),
            "NAIVE_REDIS": redis.url,
            "NAIVE_KEY": API_KEY,
        }
        refs.append(("naive", naive, nenv))
    for name, argv, env in refs:
        proc, bases[name] = _spawn(argv, SERVER_CPU, env)
        procs.append(proc)
        if name == "naive":
            _check(name, bases[name], gateway=False)
        elif _get(bases[name] + PATH) != page:
            raise SystemExit(f"{name} does not return the gateway's page")
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
        f"GET {PATH}: 3 sources (Hubsoft, Xarios, Fintera simulators, all ok, cached),"
        f" a cache hit every time; page: {size} bytes"
    )
    print(
        f"{connections} connections, {seconds} s x {rounds} rounds per row (interleaved),"
        f" loop: {loop}, redis parser: {parser}"
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
            # Each round's own ratio: two rows measured within a minute of each other,
            # so a slow minute of the machine moves both; their median is the steadiest.
            paired = sorted(x[0] / y[0] for x, y in zip(runs[a], runs[b], strict=True))[
                len(runs[a]) // 2
            ]
            print(
                f"{a + ' / ' + b:<24} = {value:6.2f} req/s, {by_cpu:6.2f} by CPU per"
                f" request, {paired:6.2f} round by round  (goal {goal})"
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
