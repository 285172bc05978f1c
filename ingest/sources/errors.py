"""The one error of the sources."""

from __future__ import annotations


class SourceError(OSError):
    """A file cannot be read at all (missing, unreadable, not an Avro container)."""
