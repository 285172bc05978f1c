"""One contract, every sink: the memory sink (tests), the local store, and the ADX sink with the
real azure-kusto-ingest client over Azurite and a local Data Management endpoint.

What every sink must do with a batch (``Sink.write``): deliver each landing row and dead letter
handed to it, an empty batch included; take a replayed batch again (delivery is at least once:
deduplication is the store's business, by ``RecordId``), and never mix up tables.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.batch import run_batch
from ingest.core.pipeline import Pipeline
from ingest.model import BatchId, EventInput, EventMeta
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.base import Sink
from ingest.sinks.memory import MemorySink
from tests.adx_world import adx_sink, blob_rows, dm_answer, queued
from tests.azurite import Azurite
from tests.conftest import golden_settings, load_fixture
from tests.kusto_endpoint import kusto_endpoint

Delivered = Callable[[str], list[str]]
"""RecordIds a sink has delivered for a table, duplicates included."""


def _memory(_: pytest.FixtureRequest, __: Path) -> Iterator[tuple[Sink, Delivered]]:
    sink = MemorySink()
    yield sink, lambda table: [r["RecordId"] for r in sink.tables.get(table, [])]


def _local(_: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sink, Delivered]]:
    from ingest.sinks.local.store import LocalSink

    store = LocalSink(tmp_path / "contract.duckdb", flush_rows=5)
    # The landing table keeps nothing (retention 0): GatewayLogs rows are read from ApimRequests.
    source = {LANDING_TABLE: "ApimRequests", DEAD_LETTER_TABLE: DEAD_LETTER_TABLE}

    def delivered(table: str) -> list[str]:
        return [r["RecordId"] for r in store.query(f"{source[table]} | project RecordId")]

    yield store, delivered
    store.close()


def _adx(request: pytest.FixtureRequest, _: Path) -> Iterator[tuple[Sink, Delivered]]:
    world: Azurite = request.getfixturevalue("clean")
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(world)
        sink = adx_sink(endpoint, world)

        def delivered(table: str) -> list[str]:
            ids = []
            for message in queued(world, peek=True):
                if message["TableName"] == table:
                    blob = message["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
                    ids += [r["RecordId"] for r in blob_rows(world, "tempstorage", blob)]
            return ids

        yield sink, delivered


SINKS: dict[str, Callable[[pytest.FixtureRequest, Path], Iterator[tuple[Sink, Delivered]]]] = {
    "memory": _memory,
    "local": _local,
    "adx": _adx,
}


@pytest.fixture(
    params=[
        "memory",
        pytest.param("local", marks=pytest.mark.integration),
        pytest.param("adx", marks=pytest.mark.integration),
    ]
)
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sink, Delivered]]:
    yield from SINKS[request.param](request, tmp_path)


def _events() -> list[EventInput]:
    # GatewayLogs records and poison: every landing row reaches ApimRequests in the local store.
    return [
        EventInput(load_fixture("throttled_429"), EventMeta("3", 7, "1", None)),
        EventInput(load_fixture("poison_records"), EventMeta("3", 8, "2", None)),
        EventInput(b"\x00 not json", EventMeta("3", 9, "3", None)),
    ]


def _flush(sink: Sink) -> None:
    flush = getattr(sink, "flush", None)
    if flush is not None:
        flush()


def test_every_row_and_dead_letter_is_delivered(sink: tuple[Sink, Delivered]) -> None:
    target, delivered = sink
    result = run_batch(
        Pipeline(golden_settings()), target, _events(), final_attempt=False, keep_rows=True
    )
    _flush(target)
    assert result.counts().reconciles
    assert sorted(delivered(LANDING_TABLE)) == sorted(r["RecordId"] for r in result.rows)
    assert sorted(delivered(DEAD_LETTER_TABLE)) == sorted(
        d["RecordId"] for d in result.dead_letters
    )
    assert len(result.rows) == 2 + 1
    assert len(result.dead_letters) == 7 + 1


def test_an_empty_batch_delivers_nothing_and_does_not_fail(sink: tuple[Sink, Delivered]) -> None:
    target, delivered = sink
    result = run_batch(Pipeline(golden_settings()), target, [], final_attempt=False, keep_rows=True)
    _flush(target)
    assert result.counts().events == 0
    assert delivered(LANDING_TABLE) == delivered(DEAD_LETTER_TABLE) == []


def test_a_replayed_batch_is_taken_again(sink: tuple[Sink, Delivered]) -> None:
    target, delivered = sink
    pipeline = Pipeline(golden_settings())
    first = run_batch(pipeline, target, _events(), final_attempt=False, keep_rows=True)
    run_batch(pipeline, target, _events(), final_attempt=True)
    _flush(target)
    ids = sorted(r["RecordId"] for r in first.rows)
    assert sorted(delivered(LANDING_TABLE)) == sorted(ids * 2)  # same ids: dedup is downstream


def test_rows_arrive_as_json_the_sinks_all_read_the_same_way() -> None:
    # The ADX sink's payload is the JSON every other sink stores: one object per row, same keys.
    result = Pipeline(golden_settings()).process(_events())
    from ingest.sinks.adx import jsonl_gzip

    lines = gzip.decompress(jsonl_gzip(result.rows)).splitlines()
    decoded: list[dict[str, Any]] = [orjson.loads(line) for line in lines]
    assert decoded == [dict(r) for r in result.rows]


def test_a_row_that_does_not_fit_its_columns_is_a_dead_letter_not_a_failure(
    sink: tuple[Sink, Delivered],
) -> None:
    # Defence in depth: were the core ever to let an out-of-range value through, the sink's
    # encoding dead-letters that row and lands its neighbours (no failed transaction, no retry).
    target, delivered = sink
    result = Pipeline(golden_settings()).process(_events())
    rows = [dict(r) for r in result.rows]
    rows[0]["ResponseCode"] = 3_000_000_000  # an int column
    rows[1]["Timestamp"] = "２０２４-09-30T12:00:00Z"  # digits that are not ASCII
    target.write(
        BatchId("3", 7, 9),
        {LANDING_TABLE: rows, DEAD_LETTER_TABLE: list(result.dead_letters)},
        final_attempt=False,
    )
    _flush(target)
    assert delivered(LANDING_TABLE) == [rows[2]["RecordId"]]
    letters = delivered(DEAD_LETTER_TABLE)
    assert {rows[0]["RecordId"], rows[1]["RecordId"]} <= set(letters)
    assert len(letters) == len(result.dead_letters) + 2
