"""Event bodies from files, Event Hubs Capture and standard input (the local tools' inputs)."""

from ingest.sources.errors import SourceError
from ingest.sources.files import iter_events, line_ranges, read_line_range

__all__ = ["SourceError", "iter_events", "line_ranges", "read_line_range"]
