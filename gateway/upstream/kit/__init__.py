"""The adapter kit: what every provider's adapter shares, so it keeps only its vendor.

- `parse`: money, dates, text, ids, arrays of objects out of upstream records;
  `MappingError` names the field.
- `rules`: the overdue rule and status vocabularies with an `unknown` fallback.
- `rows`: one record or many to invoices (`map_one`: a bad one is a 502 naming the field;
  `map_rows`: dropped, counted, the source incomplete); `settled_ttl`.
- `bearer`: `BearerAuth`, the funnel's authenticator over the shared token provider
  (a 401 drops the refused token: one refresh, one retry).
- `oauth2`: `OAuth2Grants` (password, refresh, authorization code; rotation-aware).
- `consent`: the one-time authorization-code consent on a loopback redirect.
- `checks`: a factory's checks of its connection (`[secrets]`, URL options) and the
  shape of a remote id.

The contract itself (Protocols, `ProviderContext`, `ConnectionKeys`, `Document`) is
`gateway.upstream.providers`.
"""
