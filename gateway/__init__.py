"""invoice-gateway: one REST API over many billing upstreams."""
