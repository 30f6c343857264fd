"""Walking an upstream's pages without trusting it to end: visited links, a cap, progress.

An upstream decides how many pages there are (a `Link: rel="next"`, a last-page index),
so a broken or hostile one could keep us paging forever, burning its rate budget and our
deadline. A `PageWalk` stops at a page it has already fetched, at the connection's page
cap, and after a non-empty page that brought no row not seen before; each stop says why,
so the source is reported incomplete instead of silently truncated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from gateway import jsoncodec

DEFAULT_MAX_PAGES = 200


@dataclass(slots=True)
class PageWalk:
    """The state of one paged read."""

    max_pages: int = DEFAULT_MAX_PAGES
    pages: int = 0
    stopped: str | None = None  # why paging ended before the upstream said it ended
    _visited: set[str] = field(default_factory=set)
    _rows: set[bytes] = field(default_factory=set)

    def visit(self, page_key: str) -> bool:
        """Whether to fetch the page at `page_key`; False (and `stopped`) ends the walk."""
        if page_key in self._visited:
            self.stopped = "the upstream's next page points back to a page already read"
        elif self.pages >= self.max_pages:
            self.stopped = f"stopped at the page cap ({self.max_pages} pages)"
        else:
            self._visited.add(page_key)
            self.pages += 1
            return True
        return False

    def fresh(self, rows: list[Any]) -> list[Any]:
        """The rows not seen before; a non-empty page without one ends the walk."""
        new = []
        for row in rows:
            digest = hashlib.blake2b(jsoncodec.dumps(row), digest_size=16).digest()
            if digest not in self._rows:
                self._rows.add(digest)
                new.append(row)
        if rows and not new:
            self.stopped = "the upstream sent a page of rows already read"
        return new
