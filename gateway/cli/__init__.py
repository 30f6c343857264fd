"""Command line: serve (with its worker supervisor), demo, check-config, auth, hash-key."""
