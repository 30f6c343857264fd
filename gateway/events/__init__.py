"""Invoice change events: the detector, the durable log, the feed and signed webhooks."""
