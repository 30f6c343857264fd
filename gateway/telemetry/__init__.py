"""What operators see: structured logs, library logs, Prometheus metrics, the audit trail."""
