"""Compressed payloads kept in memory while they are small, in a temporary file once they are not.

A batch's payloads (gzip JSON lines, one or more per table) must all be encoded before the first
is sent (landing rows first, dead letters last), and the rows of a gzip event can compress to
hundreds of megabytes a batch. A ``Spool`` takes a table's payloads one after the other: in memory
up to ``max_memory`` bytes, then in an anonymous temporary file (the operating system removes it
when it is closed, or when the process dies: nothing is left in the temporary directory). A
``Span`` is one payload's bytes in a spool; each ``open`` gives a reader of its own, at its first
byte, for an upload that reads it in chunks (and may seek back to retry).
"""

from __future__ import annotations

import io
import tempfile
from types import TracebackType
from typing import IO, Any

SPOOL_MEMORY_BYTES = 4 << 20
"""Compressed bytes a table's payloads keep in memory before they move to a temporary file: a
typical batch's payloads (a few hundred KB) never touch the disk, and a batch holds at most this
much a table in memory whatever its rows."""


class Spool:
    """Bytes appended in memory, moved to an anonymous temporary file past ``max_memory``."""

    def __init__(self, max_memory: int = SPOOL_MEMORY_BYTES) -> None:
        self.max_memory = max_memory
        self.size = 0
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: IO[bytes] | None = None
        self.on_disk = False
        """True once the spool has moved to its temporary file (closed or not)."""

    @property
    def closed(self) -> bool:
        """True once ``close`` let the bytes go."""
        return self._memory is None and self._file is None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append bytes (the spool moves to disk first if they would pass ``max_memory``)."""
        count = len(data)
        if self._file is None and self.size + count > self.max_memory:
            self._roll_over()
        target = self._file if self._file is not None else self._memory
        if target is None:
            raise ValueError("the spool is closed")
        target.write(data)
        self.size += count
        return count

    def flush(self) -> None:
        """Nothing to do: ``read_at`` sees every byte written (a gzip writer calls this)."""

    def _roll_over(self) -> None:
        if self._memory is None:
            raise ValueError("the spool is closed")
        # Closed by ``close``: the spool outlives this call.
        file = tempfile.TemporaryFile(prefix="ingest-payload-")  # noqa: SIM115
        file.write(self._memory.getbuffer())
        self._memory.close()
        self._memory = None
        self._file = file
        self.on_disk = True

    def read_at(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes from ``offset`` (fewer at the end)."""
        count = max(0, min(count, self.size - offset))
        if self._memory is not None:
            with self._memory.getbuffer() as view:
                return bytes(view[offset : offset + count])
        if self._file is None:
            raise ValueError("the spool is closed")
        end = self._file.tell()
        try:
            self._file.seek(offset)
            return self._file.read(count)
        finally:
            self._file.seek(end)

    def span(self, start: int) -> Span:
        """The bytes from ``start`` to the spool's end, as one payload's."""
        return Span(self, start, self.size - start)

    def close(self) -> None:
        """Let the bytes go (the temporary file, if any, disappears)."""
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Span:
    """``size`` bytes of a spool from ``start``: one payload, read as often as needed."""

    __slots__ = ("size", "spool", "start")

    def __init__(self, spool: Spool, start: int, size: int) -> None:
        self.spool = spool
        self.start = start
        self.size = size

    def open(self) -> SpanReader:
        """A reader of the span at its first byte (closing it leaves the spool open)."""
        return SpanReader(self)

    def read(self) -> bytes:
        """The whole span (small payloads, tests)."""
        return self.spool.read_at(self.start, self.size)


class SpanReader(io.RawIOBase):
    """A seekable, read-only file over a span (no ``fileno``: its size is its span's)."""

    def __init__(self, span: Span) -> None:
        super().__init__()
        self._span = span
        self._position = 0

    def readable(self) -> bool:
        """Always."""
        return True

    def seekable(self) -> bool:
        """Always: an upload seeks back to its start to retry."""
        return True

    def tell(self) -> int:
        """The position in the span."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move in the span (past its end, reads return nothing)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._span.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left by default)."""
        left = max(0, self._span.size - self._position)
        count = left if size is None or size < 0 else min(size, left)
        data = self._span.spool.read_at(self._span.start + self._position, count)
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        """All that is left."""
        return self.read()

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (a writable bytes-like object) as far as the span goes."""
        data = self.read(memoryview(buffer).nbytes)
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)
