"""Vendor-neutral helpers for the simulators: fault switches, request log, admin routes, PDFs.

Every simulator takes the same kinds of faults the same way (from Python in tests, or over
`/__sim/*` in the demo), and logs every request so tests can count calls. Nothing here
knows a vendor.
"""

from __future__ import annotations

import asyncio
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import jsoncodec
from gateway.upstream.providers import DemoUpstream

GENERIC_FAULTS = frozenset(
    {
        "latency",  # value: seconds before answering
        "hang",  # never answers (until the client gives up)
        "status",  # value: an HTTP error status, HTML body
        "unauthorized",  # 401, empty body
        "rate_limited",  # 429 with Retry-After: value seconds
        "malformed",  # 200 JSON cut in the middle
        "html",  # 200 with an HTML page instead of JSON
        "huge",  # 200 JSON of `value` bytes (default 2 MB)
        "trickle",  # 200 JSON sent a few bytes every `value` seconds
        "reset",  # headers and half a body, then the connection is cut
        "redirect",  # 302 to `value` (a Location, however hostile)
        "next_link",  # the answer's `Link: rel="next"` target becomes `value`
        "rewrite",  # value {key: new}: every such key in a JSON answer gets `new`
        "rewrite_rows",  # the same, only in objects inside a JSON array (rows, not envelopes)
        "rewrite_row",  # the same, only in the first such object (one bad row in a list)
    }
)
NEXT_LINK_RE = re.compile(r'<[^>]*>(\s*;\s*rel="?next"?)')
DEFAULT_HUGE = 2 * 1024 * 1024
# Faults whose value is a number (seconds, bytes, an HTTP status).
NUMERIC_FAULTS = frozenset({"latency", "status", "rate_limited", "huge", "trickle"})
MIN_ERROR_STATUS, MAX_STATUS = 400, 599


@dataclass(frozen=True)
class ProviderContract:
    """How the shared adapter contract suite drives one provider's simulator.

    Declared by `contract(today)` in a `contract.py` next to the provider's simulator; the
    suite (`tests/adapters/test_contract.py`) finds it through the registry and asks the
    same questions of every provider. Faults are the simulator's own switches (`upstream.
    set_fault`), generic ones where they do: `rewrite_row`/`rewrite_rows`/`rewrite` take
    the `{key: value}` edits below.
    """

    upstream: DemoUpstream
    requests: list[dict[str, Any]]  # the simulator's request log
    query: dict[
        str, str
    ]  # API filters naming one customer (a list that pages, ideally)
    expected: frozenset[str]  # every remote id that customer has: all must come back
    item: str  # one of them, read alone (and its document)
    list_path: str  # regex of the list route's path: where list faults apply
    bad_value: dict[str, Any]  # edits that make one record unreadable
    foreign_rows: tuple[str, Any]  # fault (name, value): the list answers others' rows
    # Edits (applied to rows) giving a status word nobody maps; None: never reports one.
    unknown_status: dict[str, Any] | None = None
    token_path: str | None = None  # the token route; None: static credentials
    min_list_calls: int = 1  # upstream list calls a full read takes (it pages)
    has_documents: bool = True


def check_fault_value(name: str, value: Any) -> None:
    """Refuse a value the fault could not use (raised now, not on the first request).

    `True` means the fault's default. Numeric faults take a non-negative number; `status`
    an HTTP error status. Other faults take what they document (`reset` a body prefix).
    """
    if value is True or name not in NUMERIC_FAULTS:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        # ValueError like every other refused fault spec, so callers catch one kind
        raise ValueError(f"fault {name!r}: value must be a number, not {value!r}")  # noqa: TRY004
    if name == "status" and not (
        float(value).is_integer() and MIN_ERROR_STATUS <= value <= MAX_STATUS
    ):
        raise ValueError(
            f"fault 'status': {value!r} is not an HTTP error status (400-599)"
        )
    if value < 0:
        raise ValueError(f"fault {name!r}: value must not be negative")


def check_fault_ratio(ratio: float) -> None:
    """A ratio is the share of matching requests that get the fault: in (0, 1]."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio {ratio!r} is outside (0, 1]")


@dataclass
class Fault:
    """One switched-on fault.

    It lasts `remaining` requests (None: until cleared), on paths matching `path` (None:
    the simulator's default scope), on a `ratio` of those requests.
    """

    value: Any
    remaining: int | None = None
    path: re.Pattern[str] | None = None
    ratio: float = 1.0


@dataclass
class FaultBoard:
    """The faults a simulator knows, which are on, and the request log.

    `known` lists the simulator's own faults; the generic ones (`GENERIC_FAULTS`) are
    served by `middleware` for every simulator alike, on paths matching `scope`.
    """

    known: frozenset[str]
    scope: re.Pattern[str] = field(default_factory=lambda: re.compile(r"^/(?!__sim)"))
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(3))

    @classmethod
    def for_api(cls, known: frozenset[str]) -> FaultBoard:
        """A board whose faults hit only the API (`/api/...`), not the login or files."""
        return cls(known, scope=re.compile(r"^/api/"))

    def set(
        self,
        name: str,
        value: Any = True,
        times: int | None = None,
        *,
        path: str | None = None,
        ratio: float = 1.0,
    ) -> None:
        """Switch a fault on (for `times` requests, or until cleared)."""
        if name not in self.known | GENERIC_FAULTS:
            raise ValueError(
                f"unknown fault {name!r}; known: {sorted(self.known | GENERIC_FAULTS)}"
            )
        check_fault_value(name, value)
        check_fault_ratio(ratio)
        self.faults[name] = Fault(
            value, times, re.compile(path) if path else None, ratio
        )

    def clear(self) -> None:
        """Back to normal behaviour."""
        self.faults.clear()

    def take(self, name: str, path: str | None = None) -> Any:
        """The fault's value if it applies to this request (counting one use), else None."""
        fault = self.faults.get(name)
        if fault is None:
            return None
        if path is not None and not (fault.path or self.scope).search(path):
            return None
        if fault.ratio < 1.0 and self.rng.random() >= fault.ratio:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.faults[name]
        return fault.value

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Log every request and serve the generic faults before the simulator sees it."""
        if request.path.startswith("/__sim"):
            return await handler(request)
        self.log(request)
        path = request.path
        if (delay := self.take("latency", path)) is not None:
            await asyncio.sleep(float(delay))
        if self.take("hang", path) is not None:
            await asyncio.sleep(3600)
        faulty = await self._fault_response(request, path)
        if faulty is not None:
            return faulty
        response = await handler(request)
        if isinstance(response, web.Response):
            self._doctor(response, path)
        return response

    def _doctor(self, response: web.Response, path: str) -> None:
        """Hostile edits of a normal answer: its next link, fields of its JSON body."""
        if (target := self.take("next_link", path)) is not None:
            links = response.headers.get("Link", "")
            if NEXT_LINK_RE.search(links):
                links = NEXT_LINK_RE.sub(lambda m: f"<{target}>{m.group(1)}", links)
            else:
                links = ", ".join(filter(None, [links, f'<{target}>; rel="next"']))
            response.headers["Link"] = links
        for name in ("rewrite", "rewrite_rows", "rewrite_row"):
            if (edits := self.take(name, path)) is not None and isinstance(
                response.body, bytes
            ):
                try:
                    payload = jsoncodec.loads(response.body)
                except ValueError:
                    return
                if name == "rewrite":
                    payload = _rewrite(payload, edits)
                else:
                    _rewrite_rows(payload, edits, once=name == "rewrite_row")
                response.body = jsoncodec.dumps(payload)

    async def _fault_response(  # noqa: PLR0911 - one answer per fault kind
        self, request: web.Request, path: str
    ) -> web.StreamResponse | None:
        if (status := self.take("status", path)) is not None:
            code = int(status) if status is not True else 503
            return web.Response(
                status=code, text=f"<h1>{code}</h1>", content_type="text/html"
            )
        if self.take("unauthorized", path) is not None:
            return web.Response(status=401)
        if (wait := self.take("rate_limited", path)) is not None:
            seconds = "1" if wait is True else str(wait)
            return web.Response(
                status=429, text="Too Many Requests", headers={"Retry-After": seconds}
            )
        if self.take("malformed", path) is not None:
            return web.Response(
                body=b'{"status": "success", "data": [{"id": ',
                content_type="application/json",
            )
        if self.take("html", path) is not None:
            return web.Response(
                text="<html><body>Maintenance</body></html>", content_type="text/html"
            )
        if (size := self.take("huge", path)) is not None:
            blob = (
                b'{"data": "'
                + b"x" * (DEFAULT_HUGE if size is True else int(size))
                + b'"}'
            )
            return web.Response(body=blob, content_type="application/json")
        if (step := self.take("trickle", path)) is not None:
            return await _trickle(request, 0.5 if step is True else float(step))
        if (head := self.take("reset", path)) is not None:
            return await _reset(request, head if isinstance(head, bytes) else None)
        if (location := self.take("redirect", path)) is not None:
            return web.Response(status=302, headers={"Location": str(location)})
        return None

    def log(self, request: web.Request) -> None:
        """Record a request (method, path, query) for tests to assert on."""
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
            }
        )

    def calls(self, path_suffix: str) -> list[dict[str, Any]]:
        """Logged requests whose path ends with `path_suffix`."""
        return [r for r in self.requests if r["path"].endswith(path_suffix)]

    def add_admin_routes(self, app: web.Application) -> None:
        """`/__sim/faults` (POST to set, DELETE to clear) and `/__sim/requests`."""

        async def set_fault(request: web.Request) -> web.Response:
            body = await request.json(loads=jsoncodec.loads)
            try:
                self.set(
                    body["name"],
                    body.get("value", True),
                    body.get("times"),
                    path=body.get("path"),
                    ratio=float(body.get("ratio", 1.0)),
                )
            except (KeyError, ValueError, TypeError, re.error) as err:
                return json_response({"error": str(err)}, status=400)
            return json_response({"faults": sorted(self.faults)})

        async def clear(_request: web.Request) -> web.Response:
            self.clear()
            return json_response({"faults": []})

        async def requests(_request: web.Request) -> web.Response:
            return json_response({"requests": self.requests})

        app.router.add_post("/__sim/faults", set_fault)
        app.router.add_delete("/__sim/faults", clear)
        app.router.add_get("/__sim/requests", requests)


def _rewrite(payload: Any, edits: dict[str, Any]) -> Any:
    """`payload` with every key named in `edits` set to its new value, at any depth."""
    if isinstance(payload, dict):
        return {
            k: edits[k] if k in edits else _rewrite(v, edits)
            for k, v in payload.items()
        }
    if isinstance(payload, list):
        return [_rewrite(item, edits) for item in payload]
    return payload


def _rewrite_rows(
    payload: Any, edits: dict[str, Any], *, once: bool, in_array: bool = False
) -> bool:
    """Edit, in place, objects inside an array that carry a key of `edits`.

    Document order; with `once`, only the first such object. True once one was edited.
    """
    if isinstance(payload, dict):
        here = in_array and bool(edits.keys() & payload.keys())
        if here:
            payload.update({k: v for k, v in edits.items() if k in payload})
            if once:
                return True
        inner = _rewrite_each(
            list(payload.values()), edits, once=once, in_array=in_array
        )
        return here or inner
    if isinstance(payload, list):
        return _rewrite_each(payload, edits, once=once, in_array=True)
    return False


def _rewrite_each(
    items: list[Any], edits: dict[str, Any], *, once: bool, in_array: bool
) -> bool:
    edited = False
    for item in items:
        edited = _rewrite_rows(item, edits, once=once, in_array=in_array) or edited
        if edited and once:
            return True
    return edited


async def _trickle(request: web.Request, step: float) -> web.StreamResponse:
    """A valid JSON body, a few bytes at a time."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for piece in (b'{"status": ', b'"success", ', b'"data": ', b"[]}"):
        await asyncio.sleep(step)
        await response.write(piece)
    await response.write_eof()
    return response


async def _reset(request: web.Request, head: bytes | None) -> web.StreamResponse:
    """Promise a body, send its start (`head`, else the start of a JSON list), cut."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 4096
    await response.prepare(request)
    await response.write(head or b'{"status": "success", "data": [')
    await asyncio.sleep(0.01)
    if request.transport is not None:
        request.transport.abort()
    return response


def json_response(payload: Any, status: int = 200) -> web.Response:
    """JSON through the project's codec."""
    return web.Response(
        body=jsoncodec.dumps(payload), status=status, content_type="application/json"
    )


def pdf_bytes(title: str, lines: list[str], *, min_size: int = 0) -> bytes:
    """A small valid PDF with a title and text lines, padded to at least `min_size`.

    The padding is an incompressible image-free stream object, so documents can be big
    enough to show that the gateway streams them rather than buffering.
    """
    text = [f"BT /F1 16 Tf 50 780 Td ({_pdf_escape(title)}) Tj ET"]
    text += [
        f"BT /F1 10 Tf 50 {750 - 14 * i} Td ({_pdf_escape(line)}) Tj ET"
        for i, line in enumerate(lines[:50])
    ]
    content = "\n".join(text).encode("latin-1", "replace")
    padding = b""
    if min_size > 0:
        seed = title.encode()
        blob = bytearray()
        n = 0
        while len(blob) < min_size:
            blob += zlib.compress(seed + str(n).encode()) * 8
            n += 1
        padding = bytes(blob[:min_size])
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>"
        ),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(padding) + padding + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
