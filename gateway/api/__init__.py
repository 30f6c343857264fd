"""HTTP layer: routes, parameter parsing, middleware and problem+json."""
