"""Vendor-neutral helpers for the simulators: fault switches, request log, admin routes, PDFs.

Every simulator takes the same kinds of faults the same way (from Python in tests, or over
`/__sim/*` in the demo), and logs every request so tests can count calls. Nothing here
knows a vendor.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway import jsoncodec


@dataclass
class Fault:
    """One switched-on fault; `remaining` None means until cleared."""

    value: Any
    remaining: int | None = None


@dataclass
class FaultBoard:
    """The faults a simulator knows, which are on, and the request log."""

    known: frozenset[str]
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def set(self, name: str, value: Any = True, times: int | None = None) -> None:
        """Switch a fault on (for `times` requests, or until cleared)."""
        if name not in self.known:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(self.known)}")
        self.faults[name] = Fault(value, times)

    def clear(self) -> None:
        """Back to normal behaviour."""
        self.faults.clear()

    def take(self, name: str) -> Any:
        """The fault's value if on (counting one use), else None."""
        fault = self.faults.get(name)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.faults[name]
        return fault.value

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
                self.set(body["name"], body.get("value", True), body.get("times"))
            except (KeyError, ValueError, TypeError) as err:
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
