"""The embedded store: DuckDB running the same ``kusto/`` KQL as ADX (local tools only)."""

from pathlib import Path

DEFAULT_DB = Path(".local") / "apimlogs.duckdb"
"""Where the demo and the commands keep the store unless told otherwise (git-ignored)."""


class StoreError(Exception):
    """The local store cannot be used as asked (the message says why, in the user's terms)."""


class StoreBusyError(StoreError):
    """Another process holds the store's lock (DuckDB allows one writer per file)."""
