"""The embedded store: DuckDB running the same ``kusto/`` KQL as ADX (local tools only)."""

from pathlib import Path

DEFAULT_DB = Path(".local") / "apimlogs.duckdb"
"""Where the demo and the commands keep the store unless told otherwise (git-ignored)."""
