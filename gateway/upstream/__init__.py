"""Calling upstreams: the funnel (origin, deadline, retry, breaker, paging); adapter contract."""
