"""Event bodies from files and standard input: one opener, one line reader, byte ranges.

``.json`` is one body, ``.jsonl`` one body per line, ``.avro`` an Event Hubs Capture file, anything
else one body (e.g. ``.json.gz``), and ``-`` standard input as JSON lines. A path that is not a
regular file (a pipe, a shell's ``<(...)``, a FIFO), and ``/dev/stdin`` or ``/dev/fd/N`` whatever
they stand for, is a stream of JSON lines too, whatever its name: it has no size to split and
cannot be read twice.

Everything streams: a file is never loaded whole except a single-body file, which is one event.
A JSON-lines input whose last line has no newline and is not complete JSON (a file still being
written) stops with a SourceError after every line before it: replaying it again once complete
ingests that line, instead of keeping it as a dead letter for ever.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ingest.model import EventInput
from ingest.sources.capture import capture_partition, read_capture
from ingest.sources.errors import SourceError

READ_BUFFER = 1 << 20
"""Bytes per read from a file: large reads make a long JSON-lines file much faster to read."""


def _unreadable(path: str, exc: OSError) -> SourceError:
    return SourceError(f"cannot read `{path}`: {exc.strerror or exc}")


def _open(path: str) -> BinaryIO:
    try:
        return Path(path).open("rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _is_torn(line: bytes) -> bool:
    """A last line without its newline that is not a complete JSON document (or JSON lines)."""
    if line.endswith(b"\n"):
        return False
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return True
    return False


def _lines(
    stream: BinaryIO, position: int = 0, end: int | None = None, name: str = "-"
) -> Iterator[EventInput]:
    """The non-blank lines of ``stream`` as events, up to the line that starts at ``end``."""
    for line in stream:
        if end is not None and position >= end:
            return
        position += len(line)
        if line.strip():
            if _is_torn(line):
                raise SourceError(
                    f"the last line of `{name}` ({len(line)} bytes) has no newline and is not "
                    "complete JSON: a file still being written? It was not replayed; replay the "
                    "file again once it is complete (rows already ingested are not duplicated)"
                )
            yield EventInput(line.rstrip(b"\r\n"))


_DESCRIPTOR_PATHS = ("/dev/stdin", "/dev/fd/", "/proc/self/fd/")
"""Names of standard input and of open file descriptors: what they name may be a regular file
(``< events.jsonl``), but the name says nothing of its format and it may not be read twice."""


def is_stream(path: str) -> bool:
    """Whether a path is standard input or a file that is not regular (a pipe, a FIFO, a device).

    ``/dev/stdin`` and ``/dev/fd/N`` are streams whatever they stand for: standard input
    redirected from a file is a regular file to ``stat``, and would otherwise be read as one body.
    """
    if path == "-" or path.startswith(_DESCRIPTOR_PATHS):
        return True
    try:
        return not stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False  # reported when opened


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
        yield from _lines(stream, position, end, path)


def iter_events(path: str) -> Iterator[EventInput]:
    """Events of one input path; raises SourceError when the file cannot be read."""
    if path == "-":
        yield from _lines(sys.stdin.buffer)
        return
    file = Path(path)
    streamed = is_stream(path)
    with _open(path) as stream:
        suffix = file.suffix.lower()
        if suffix == ".jsonl" or streamed:
            yield from _lines(stream, name=path)
        elif suffix == ".avro":
            yield from read_capture(stream, capture_partition(str(file)), path)
        else:
            yield EventInput(stream.read())
