"""The adapter kit: what every provider's adapter shares, so it keeps only its vendor.

- `parse`: money, dates, text, ids, arrays of objects out of upstream records;
  `MappingError` names the field.
- `rules`: the overdue rule and status vocabularies with an `unknown` fallback.
- `rows`: one record or many to invoices (`map_one`: a bad one is a 502 naming the field;
  `map_rows`: dropped, counted, the source incomplete); `settled_ttl`.
- `bearer`: `BearerAuth`, the funnel's authenticator over the shared token provider
  (a 401 drops the refused token: one refresh, one retry).
- `static`: `StaticAuth`, fixed credentials (API key, HTTP Basic): a 401 is final.
- `oauth2`: `OAuth2Grants` (password, refresh, authorization code; rotation-aware).
- `consent`: the one-time authorization-code consent on a loopback redirect.
- `checks`: a factory's checks of its connection (`[secrets]`, URL options) and the
  shape of a remote id.

The contract itself (Protocols, `ProviderContext`, `ConnectionKeys`, `Document`) is
`gateway.upstream.providers`. An adapter built on the kit, in outline: `payloads.py`
types the vendor's records (TypedDicts); `client.py` holds the funnel calls with a
`BearerAuth` over `OAuth2Grants` (or a `StaticAuth`); `mapping.py` is a pure
`to_invoice(row, ...)` over `parse` and `rules`; `adapter.py` declares `KEYS`, checks its
connection in `create(ctx)` (`checks`) and maps with `rows.map_rows`/`map_one`; one line
per table in `adapters/__init__.py` registers it.
"""
