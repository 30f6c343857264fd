"""Hubsoft (ISP ERP) adapter: client, mapping, adapter and simulator."""
