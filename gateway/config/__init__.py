"""Settings: value objects, and loading them with strict validation (all problems at once)."""
