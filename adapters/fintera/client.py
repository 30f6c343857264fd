"""Fintera HTTP + auth only: Basic with the static API token, `ACCOUNT_ID`, Link paging.

The token is the Basic user name (the password is ignored); there is no refresh, so a 401
(whose body is HTML, never decoded) is final, and so are 402 (subscription overdue) and
403 (plan without API access): each is reported as the configuration problem it is, and
none is retried. JSON is asked for explicitly; an XML answer is read too. Lists are bare
arrays of `{"<resource>": {...}}` whose pages are linked only in the `Link` header, and a
page past the end is `200 []`. A next link is upstream data: it goes to the funnel as a
`Link` (resolved and origin-checked there), and a `PageWalk` stops a looping or endless
chain of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs

from adapters.fintera import xmlcodec
from gateway.config.settings import Secret
from gateway.errors import (
    FieldError,
    UpstreamConfigError,
    UpstreamProtocolError,
    UpstreamRejectedError,
    UpstreamValidationError,
)
from gateway.upstream.http import Target, UpstreamClient, UpstreamResponse
from gateway.upstream.kit.static import StaticAuth
from gateway.upstream.origin import Link
from gateway.upstream.paging import DEFAULT_MAX_PAGES, PageWalk

PASSED = frozenset({402, 403, 422})
PER_PAGE = "100"
LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')
# Fintera's field names (as its 422s spell them) -> the gateway's sale-account fields.
FIELD_NAMES = {
    "provider": "acquirer",
    "entity": "entity_id",
    "category": "category_id",
    "person": "person_id",
    "classification_center": "classification_center_id",
}
GATEWAY_FIELDS = frozenset(
    {
        "name",
        "description",
        "entity_id",
        "acquirer",
        "payment_methods",
        "consolidate",
        "category_id",
        "person_id",
        "classification_center_id",
        "custom_classifications",
        "classification_center_classifications",
    }
)
# Rails' Portuguese validation messages, said in the gateway's words.
MESSAGES = {
    "não pode ficar em branco": "must not be blank",
    "não está incluído na lista": "is not an allowed value",
    "não existe": "does not exist",
    "não é uma data válida": "is not a valid date",
    "já está em uso": "is already taken",
    "não é um número": "is not a number",
}


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of every page, and why paging stopped early (None: the list ended)."""

    rows: list[Any]
    stopped: str | None = None

    @property
    def truncated(self) -> bool:
        """Whether rows may exist that were not read."""
        return self.stopped is not None


class FinteraClient:
    """Typed calls to one Fintera account."""

    def __init__(
        self,
        http: UpstreamClient,
        token: Secret,
        account_id: str | None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        """Compose the funnel and the static credentials."""
        self.http = http
        # The token is the Basic user name; Fintera ignores the password.
        selector = {"ACCOUNT_ID": account_id} if account_id else {}
        self._auth = StaticAuth.basic(
            token, "X", **{hdrs.ACCEPT: "application/json"}, **selector
        )
        self._max_pages = max_pages

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """One JSON (or XML) document."""

        def parse(response: UpstreamResponse) -> Any:
            return self._decode("GET", path, response)

        return await self.http.call(
            "GET",
            path + ".json",
            parse,
            params=params,
            auth=self._auth,
            pass_statuses=PASSED,
        )

    async def _page(
        self, target: Target, params: dict[str, str] | None, path: str
    ) -> tuple[list[Any], Link | None]:
        """One page of a list and its next link."""

        def parse(response: UpstreamResponse) -> tuple[list[Any], Link | None]:
            page = self._decode("GET", path, response)
            if not isinstance(page, list):
                raise UpstreamProtocolError(
                    self.http.connection, "GET", path, "list is not an array"
                )
            return page, self._next(response)

        return await self.http.call(
            "GET",
            target,
            parse,
            params=params,
            auth=self._auth,
            pass_statuses=PASSED,
            label=path,
        )

    async def get_all(self, path: str, params: dict[str, str] | None = None) -> Page:
        """Every row of a paged list, following `Link: rel="next"` until none or `[]`."""
        rows: list[Any] = []
        walk = PageWalk(self._max_pages)
        target: Target = path + ".json"
        query: dict[str, str] | None = {
            **(params or {}),
            "page": "1",
            "per_page": PER_PAGE,
        }
        while walk.visit(self._page_key(target, query)):
            page, following = await self._page(target, query, path)
            rows.extend(walk.fresh(page))
            if not page or following is None or walk.stopped:
                break
            # A next link may come without the first page's filters (seen from
            # Fintera): ours are put back, so page 2 is still the rows asked for.
            target, query = following, dict(params or {})
        return Page(rows, walk.stopped)

    async def send(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """A write: never retried; 422 field errors come back in the gateway's names."""

        def parse(response: UpstreamResponse) -> Any:
            if not response.body.strip():
                return None
            return self._decode(method, path, response)

        return await self.http.call(
            method,
            path + ".json",
            parse,
            json=body,
            auth=self._auth,
            pass_statuses=PASSED,
        )

    def _page_key(self, target: Target, query: dict[str, str] | None) -> str:
        """Where a page really is: the resolved URL, its query in a stable order."""
        url, _ = self.http.url_for("GET", target, query)
        return str(url.with_query(sorted(url.query.items())))

    def _next(self, response: UpstreamResponse) -> Link | None:
        """The `rel="next"` link, as the upstream data it is (the funnel resolves it)."""
        found = LINK_RE.findall(response.headers.get("Link", ""))
        links = {rel: url for url, rel in found}
        return Link(links["next"], response.url) if "next" in links else None

    def _decode(self, method: str, path: str, response: UpstreamResponse) -> Any:
        self._refuse(method, path, response)
        if "xml" in response.content_type:
            try:
                return xmlcodec.loads(response.body)
            except xmlcodec.XmlError as err:
                raise UpstreamProtocolError(
                    self.http.connection, method, path, str(err)
                ) from err
        return self.http.decode_json(method, path, response)

    def _refuse(self, method: str, path: str, response: UpstreamResponse) -> None:
        args = (self.http.connection, method, path)
        if response.status == 402:  # noqa: PLR2004
            raise UpstreamRejectedError(
                *args,
                "Fintera subscription overdue (HTTP 402): the account owner must pay",
                status=402,
            )
        if response.status == 403:  # noqa: PLR2004
            raise UpstreamRejectedError(
                *args,
                "Fintera refused access (HTTP 403): the plan has no API access "
                "or the entity is not permitted",
                status=403,
            )
        if response.status == 422:  # noqa: PLR2004
            payload = _error_body(response, self.http)
            if isinstance(payload, dict) and "accounts" in payload:
                raise UpstreamConfigError(*args, _account_advice(payload), status=422)
            raise UpstreamValidationError(*args, field_errors(payload))


def _error_body(response: UpstreamResponse, http: UpstreamClient) -> Any:
    try:
        return http.decode_json("POST", "/422", response)
    except UpstreamProtocolError:
        return None


def _account_advice(payload: dict[str, Any]) -> str:
    """The multi-account 422: which `account_id` values the token could use."""
    offered = []
    accounts = payload["accounts"]
    for entry in accounts if isinstance(accounts, list) else []:
        account = entry.get("account") if isinstance(entry, dict) else None
        if isinstance(account, dict) and isinstance(account.get("id"), int):
            name = str(account.get("name") or "")[:60]
            offered.append(f"{account['id']} ({name})" if name else str(account["id"]))
    choice = ", ".join(offered[:20]) or "none listed"
    return (
        "the API token belongs to several Fintera accounts: set options.account_id "
        f"to one of: {choice}"
    )


def field_errors(payload: Any) -> list[FieldError]:
    """Fintera's 422 body — `{"field": ["msg", ...]}` or `{"error": "msg"}` — as field errors.

    Fields are named as the gateway names them, in the gateway's words; the upstream's own
    field name and message are kept apart for whoever needs them.
    """
    if not isinstance(payload, dict):
        return [FieldError("body", "refused by the upstream (unreadable error body)")]
    if isinstance(payload.get("error"), str):
        return [
            FieldError(
                "body",
                "refused by the upstream",
                upstream_message=payload["error"][:300],
            )
        ]
    errors = []
    for name, messages in payload.items():
        field = FIELD_NAMES.get(str(name), str(name))
        for message in messages if isinstance(messages, list) else [messages]:
            words = str(message)[:300]
            errors.append(
                FieldError(
                    field if field in GATEWAY_FIELDS else "body",
                    MESSAGES.get(words, "refused by the upstream"),
                    upstream_field=str(name)[:100],
                    upstream_message=words,
                )
            )
    return errors
