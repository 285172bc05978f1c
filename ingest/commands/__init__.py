"""``python -m ingest`` verbs: local and operator tools, not on the Functions path."""
