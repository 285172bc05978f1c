"""Payloads in spools (``ingest/sinks/spooled.py``): the same bytes in memory or on disk, each
payload read as often as needed from its first byte, and nothing left once a spool is closed."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path

import orjson
import pytest

from ingest.sinks.adx import encode, measure
from ingest.sinks.spooled import Spool

ROWS = [{"Timestamp": f"2025-10-01T00:00:{i % 60:02d}Z", "RecordId": f"r{i}"} for i in range(3000)]


def _payloads(spool: Spool) -> list[bytes]:
    first = encode(ROWS[:1000], spool)
    second = encode(ROWS[1000:], spool)
    return [first.read(), second.read()]


def test_a_spool_past_its_memory_holds_the_same_bytes_in_a_file_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with Spool(1 << 30) as memory, Spool(4096) as disk:
        kept = _payloads(memory)
        spooled = _payloads(disk)
        assert (memory.on_disk, disk.on_disk) == (False, True)
        assert spooled == kept
        assert os.listdir(tmp_path) == []  # an anonymous file: nothing to leave behind
    assert memory.closed
    assert disk.closed
    lines = [line for data in spooled for line in gzip.decompress(data).splitlines()]
    assert lines == [orjson.dumps(row) for row in ROWS]


@pytest.mark.parametrize("memory", [1 << 30, 1024])
def test_a_reader_reads_its_own_payload_seeks_and_leaves_the_spool_open(memory: int) -> None:
    with Spool(memory) as spool:
        encode(ROWS[:10], spool)
        payload = encode(ROWS[10:], spool)
        whole = payload.read()
        assert payload.body.start > 0
        assert len(whole) == payload.size == payload.body.size
        with payload.body.open() as reader:
            assert reader.read(5) == whole[:5]
            assert reader.tell() == 5
            assert reader.read() == whole[5:]
            assert reader.read(10) == b""
            reader.seek(-3, io.SEEK_END)
            assert reader.read() == whole[-3:]
            reader.seek(0)
            buffer = bytearray(len(whole) + 10)
            assert reader.readinto(buffer) == len(whole)
            assert bytes(buffer[: len(whole)]) == whole
            with pytest.raises(ValueError, match="negative"):
                reader.seek(-1)
        with payload.body.open() as again:  # a second upload starts from the first byte
            assert again.read() == whole
        assert not spool.closed
        assert gzip.decompress(whole).splitlines() == [orjson.dumps(r) for r in ROWS[10:]]
    with pytest.raises(ValueError, match="closed"):
        payload.read()


@pytest.mark.parametrize("memory", [1 << 30, 1024])
def test_measure_counts_rows_and_raw_bytes_as_they_stream(memory: int) -> None:
    with Spool(memory) as spool:
        payload = encode(ROWS, spool)
        assert measure(payload.body, chunk=1000) == (payload.rows, payload.raw_size)
        assert payload.raw_size == sum(len(orjson.dumps(r)) + 1 for r in ROWS)
