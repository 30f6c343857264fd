"""The adapter kit: what every provider's adapter shares, so it keeps only its vendor.

- `parse`: money, dates, text out of upstream records; `MappingError` names the field.
- `rules`: the overdue rule and status vocabularies with an `unknown` fallback.
- `bearer`: `BearerAuth`, the funnel's authenticator over the shared token provider.
- `oauth2`: `OAuth2Grants` (password, refresh, authorization code; rotation-aware).
- `consent`: the one-time authorization-code consent on a loopback redirect.
- `checks`: a factory's checks of its connection (`[secrets]`, URL options).

The row path (one record or many, a bad one a 502 or dropped and counted) is
`gateway.upstream.providers.map_one`/`map_rows`, next to the Protocols it serves.
"""
