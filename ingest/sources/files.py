"""Event bodies from files and standard input: one opener, one line reader, byte ranges.

``.json`` is one body, ``.jsonl`` one body per line, ``.avro`` an Event Hubs Capture file, anything
else one body (e.g. ``.json.gz``), and ``-`` standard input as JSON lines.

Everything streams: a file is never loaded whole except a single-body file, which is one event.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ingest.model import EventInput
from ingest.sources.capture import capture_partition, read_capture
from ingest.sources.errors import SourceError

READ_BUFFER = 1 << 20
"""Bytes per read from a file: large reads make a long JSON-lines file several times faster."""


def _unreadable(path: str, exc: OSError) -> SourceError:
    return SourceError(f"cannot read `{path}`: {exc.strerror or exc}")


def _open(path: str) -> BinaryIO:
    try:
        return Path(path).open("rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _lines(stream: BinaryIO, position: int = 0, end: int | None = None) -> Iterator[EventInput]:
    """The non-blank lines of ``stream`` as events, up to the line that starts at ``end``."""
    for line in stream:
        if end is not None and position >= end:
            return
        position += len(line)
        if line.strip():
            yield EventInput(line.rstrip(b"\r\n"))


def line_ranges(path: str, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``size`` bytes covering a JSON-lines file (see ``read_line_range``)."""
    try:
        length = Path(path).stat().st_size
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    return [(start, min(start + size, length)) for start in range(0, length, size)]


def read_line_range(path: str, start: int, end: int) -> Iterator[EventInput]:
    """The events of a JSON-lines file whose lines start in ``[start, end)``.

    Ranges that tile a file yield each line exactly once, so several processes can share a file
    without one of them reading it all.
    """
    with _open(path) as stream:
        position = start
        if start:
            stream.seek(start - 1)
            if stream.read(1) != b"\n":
                position += len(stream.readline())  # that line is the previous range's
        yield from _lines(stream, position, end)


def iter_events(path: str) -> Iterator[EventInput]:
    """Events of one input path; raises SourceError when the file cannot be read."""
    if path == "-":
        yield from _lines(sys.stdin.buffer)
        return
    file = Path(path)
    with _open(path) as stream:
        suffix = file.suffix.lower()
        if suffix == ".jsonl":
            yield from _lines(stream)
        elif suffix == ".avro":
            yield from read_capture(stream, capture_partition(str(file)))
        else:
            yield EventInput(stream.read())
