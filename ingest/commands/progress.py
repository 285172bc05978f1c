"""The replay's progress line: percentage, rate and time left, from the inputs' known size."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ingest.sources.files import is_stream

BAR_WIDTH = 24
"""Characters of the bar."""


def input_bytes(paths: Iterable[str]) -> int | None:
    """Bytes of all inputs, or None when one of them is a stream (stdin, a pipe) of unknown size."""
    total = 0
    for path in paths:
        if is_stream(path):
            return None
        try:
            total += Path(path).stat().st_size
        except OSError:
            continue  # reported as unreadable by the replay itself
    return total


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(done_bytes: int, total_bytes: int | None, records: int, seconds: float) -> str:
    """``[#####.....]  41.2%  1,234,567 records  52,000/s  ETA 0:01:23`` (no bar for streams).

    Event bodies are counted, not the newlines between them (and a Capture file's bodies are
    larger than its compressed blocks), so the share is capped below 100% until the end.
    """
    rate = records / seconds if seconds > 0 else 0.0
    counts = f"{records:,} records  {rate:,.0f}/s"
    if not total_bytes:
        return f"replay: {counts}  {_clock(seconds)}"
    share = min(done_bytes / total_bytes, 0.999)
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    byte_rate = done_bytes / seconds if seconds > 0 else 0.0
    left = (total_bytes - done_bytes) / byte_rate if byte_rate > 0 else 0.0
    return f"replay: [{bar}] {share * 100:5.1f}%  {counts}  ETA {_clock(max(left, 0.0))}"
