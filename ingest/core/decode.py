"""Event body bytes -> JSON records. Pure; never raises on bad input.

An event body may be gzip-compressed, start with a UTF-8 BOM, hold a diagnostic-settings envelope
``{"records": [...]}``, a bare array of records, a bare record, JSON lines, or not be JSON at all.
"""

from __future__ import annotations

import re
import zlib
from itertools import islice
from typing import Any

import orjson

from ingest.model import Rejected, RejectReason, Unparsed

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Largest body a gzip event may inflate to (events are at most 1 MB; this stops zip bombs)."""


def _gunzip(body: bytes) -> bytes | Rejected:
    """Inflate every gzip member of a body, refusing to grow past the limit."""
    out = bytearray()
    data = body
    try:
        while data:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1 - len(out))
            while inflater.unconsumed_tail and len(out) <= MAX_DECOMPRESSED_BYTES:
                out += inflater.decompress(
                    inflater.unconsumed_tail, MAX_DECOMPRESSED_BYTES + 1 - len(out)
                )
            if len(out) > MAX_DECOMPRESSED_BYTES:
                return Rejected(
                    RejectReason.TOO_LARGE,
                    f"gzip body inflates past {MAX_DECOMPRESSED_BYTES} bytes",
                )
            if not inflater.eof:
                return Rejected(RejectReason.BAD_GZIP, "gzip body ends before its end marker")
            data = inflater.unused_data  # concatenated members are legal
    except zlib.error as exc:
        return Rejected(RejectReason.BAD_GZIP, f"gzip body cannot be inflated: {exc}")
    return bytes(out)


def inflate_partially(body: bytes, limit: int) -> bytes:
    """What a damaged gzip body inflates to before its fault, at most ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(body, limit)
    except zlib.error:
        return b""


COUNT_ABOVE = 1 << 20
"""Bodies larger than this have their records counted before they are parsed (only a gzip event
inflates past Event Hubs' 1 MB): parsing takes up to 30 times a body's size in memory (a record
bomb of ``{}`` is 3 bytes a record, 70 bytes once parsed), counting takes none."""


def decode_body(body: bytes, max_records: int | None = None) -> tuple[Any, bytes] | Rejected:
    """Decompress, strip the BOM and parse one event body as JSON (or JSON lines).

    Returns the document and the decoded bytes it was parsed from. With ``max_records``, a body
    larger than ``COUNT_ABOVE`` holding more records than that is refused before it is parsed.
    """
    if not body or (body[:1].isspace() and not body.strip()):  # strip() would copy the body
        return Rejected(RejectReason.EMPTY_BODY, "event body is empty")
    if body[:2] == GZIP_MAGIC:
        inflated = _gunzip(body)
        if isinstance(inflated, Rejected):
            return inflated
        body = inflated
    if body[:3] == UTF8_BOM:
        body = body[3:]
    if max_records is not None and len(body) > COUNT_ABOVE and _more_records(body, max_records):
        return Rejected(
            RejectReason.TOO_LARGE,
            f"event holds more than {max_records} records (counted before parsing)",
        )
    try:
        return orjson.loads(body), body
    except orjson.JSONDecodeError as exc:
        error = str(exc)  # the text only: the exception's traceback would hold this frame's body
    # Some policies write several JSON documents per event, one per line.
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            return [orjson.loads(line) for line in lines], body
        except orjson.JSONDecodeError:
            pass
    salvaged = salvage_records(body)
    if salvaged is not None:
        return salvaged, body
    if len(lines) > 1:  # JSON lines, some of them bad: each line is a record of its own
        documents = [_parse_one(line) for line in lines]
        if any(d.__class__ is not Unparsed for d in documents):
            return documents, body
    return Rejected(RejectReason.NOT_JSON, f"event body is not JSON: {error}")


_ARRAY_START = re.compile(rb'\s*(?:\{\s*"[Rr]ecords"\s*:\s*)?\[')
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')
"""JSON strings (skipped whole, whatever bytes they hold) and the punctuation that nests."""


def salvage_records(body: bytes) -> list[Any] | None:
    """The records of an envelope (or array) that does not parse as a whole, one by one.

    One ``NaN``, lone surrogate or invalid UTF-8 byte must not cost its 1,000 neighbours: when
    the envelope's structure is whole (its records array closes), each record is parsed on its
    own, and one that does not parse is kept as ``Unparsed`` (a dead letter of its own). A body
    whose structure does not close (cut short), or that goes on after it (more JSON lines), is
    not salvaged: None.
    """
    start = _ARRAY_START.match(body)
    if start is None:
        return None
    end = b"}" if body[start.start() : start.end()].lstrip()[:1] == b"{" else b""
    depth = 0
    item = start.end()
    spans: list[tuple[int, int]] = []
    for token in _TOKENS.finditer(body, item):
        mark = body[token.start()]
        if mark == 0x22:  # a string: skipped whole
            continue
        if mark in b"[{":
            depth += 1
        elif mark in b"]}":
            if depth == 0:
                if body[token.end() :].strip() != end:  # more after it: records not to drop
                    return None
                if body[item : token.start()].strip():
                    spans.append((item, token.start()))
                return [_parse_one(body[a:b]) for a, b in spans]
            depth -= 1
        elif depth == 0:  # a comma between records
            spans.append((item, token.start()))
            item = token.end()
    return None


_LINE = re.compile(rb"[^\s][^\n]*")


def _more_records(body: bytes, limit: int) -> bool:
    """Whether a body holds more than ``limit`` records, without parsing them.

    The records as ``split_records`` sees them: the items of the records array (or a bare array),
    or the JSON lines; at most ``limit`` of them are stepped over.
    """
    start = _ARRAY_START.match(body)
    if start is None:  # a bare record, or JSON lines (one record per line)
        return sum(1 for _ in islice(_LINE.finditer(body), limit + 1)) > limit
    depth = items = 0
    for token in _TOKENS.finditer(body, start.end()):
        mark = body[token.start()]
        if mark == 0x22:  # a string
            continue
        if mark in b"[{":
            depth += 1
        elif mark in b"]}":
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0:
            items += 1
            if items >= limit:  # `limit` commas: more than `limit` items
                return True
    return False


def _parse_one(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Unparsed(raw.strip(), f"record is not JSON: {exc}")


def split_records(document: Any) -> list[Any] | Rejected:
    """The records of a decoded body: envelope, bare array or bare object."""
    if isinstance(document, dict):
        records = document.get("records", document.get("Records"))
        if isinstance(records, list):
            return records
        return [document]
    if isinstance(document, list):
        return document
    return Rejected(
        RejectReason.NOT_A_RECORD, f"event body is a JSON {type(document).__name__}, not an object"
    )
