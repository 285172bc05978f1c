"""Generated hostile batches into the sinks that need more than Python: the local store (DuckDB
reading the spooled JSON into typed columns, the update policies in one transaction) and the ADX
sink with the real azure-kusto-ingest client over Azurite and the local Data Management endpoint.

The cases are the unit run's (``tests/hostile.py``), fewer of them: every class of hostile input
in one strategy. What each sink stored is read back from it and held to ``tests.hostile.check``:
no exception, counts reconcile with what was stored, good neighbours stored, no secret anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.batch import run_batch
from ingest.config import CaptureMode
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.local.spool import SpooledBatch
from ingest.sinks.local.store import LocalSink
from tests.adx_world import adx_sink, blob_rows, dm_answer, empty, queued
from tests.azurite import Azurite
from tests.hostile import (
    Case,
    Delivered,
    batches,
    bomb_batches,
    check,
    deep_parts,
    examples,
    good_record,
    json_lines_bodies,
    large_envelopes,
    modes,
    number_parts,
    pipeline,
    secret_events,
    secret_parts,
    time_parts,
)
from tests.kusto_endpoint import kusto_endpoint

pytestmark = pytest.mark.integration


@st.composite
def _dead_event_beside_a_neighbour(draw: st.DrawFn) -> Case:
    case = draw(secret_events())
    case.add(orjson.dumps(good_record("neighbour")), good=["neighbour"])
    return case


HOSTILE_BATCHES = st.one_of(
    batches(number_parts()),
    batches(time_parts()),
    batches(deep_parts()),
    batches(secret_parts()),
    large_envelopes(),
    json_lines_bodies(),
    bomb_batches(),
    _dead_event_beside_a_neighbour(),
)
"""Every hostile class of the unit run, one drawn per case."""


class CountingStore(LocalSink):
    """The local store, counting the landing rows and dead letters each transaction takes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, flush_rows=1000)
        self.taken = [0, 0]

    def land(self, spooled: SpooledBatch) -> None:
        self.taken[0] += spooled.landing.rows
        self.taken[1] += spooled.dead_letters.rows
        super().land(spooled)


CURATED = ("ApimRequests", "LlmUsage", "LlmMessages")
"""The tables the update policies fill from the landing table."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingStore]:
    sink = CountingStore(tmp_path_factory.mktemp("hostile") / "store.duckdb")
    yield sink
    sink.close()


def _texts(rows: list[dict[str, Any]]) -> list[str]:
    return [v for row in rows for v in row.values() if isinstance(v, str)]


@examples(25)
@given(HOSTILE_BATCHES, modes)
def test_hostile_batches_land_in_the_local_store(
    store: CountingStore, case: Case, mode: CaptureMode
) -> None:
    for table in (*CURATED, DEAD_LETTER_TABLE):  # each case is read back alone
        store.con.execute(f'DELETE FROM "{table}"')
    store.taken = [0, 0]
    result = run_batch(pipeline(mode), store, case.events, final_attempt=True, keep_rows=True)
    store.flush()  # the transaction: typed columns, update policies, all or nothing
    requests = store.query("ApimRequests")
    letters = store.query(DEAD_LETTER_TABLE)
    curated = [row for table in CURATED[1:] for row in store.query(table)]
    assert store.taken[1] == len(letters)
    delivered = Delivered(requests, letters, landed=store.taken[0], texts=_texts(curated))
    check(case, result, delivered)


@examples(20)
@given(HOSTILE_BATCHES, modes)
def test_hostile_batches_are_ingested_by_the_adx_sink(
    storage: Azurite, case: Case, mode: CaptureMode
) -> None:
    empty(storage)  # each example alone (a fixture runs once per test, not per example)
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(storage)
        sink = adx_sink(endpoint, storage)
        result = run_batch(pipeline(mode), sink, case.events, final_attempt=True, keep_rows=True)
    assert sink.kept == []  # every payload was queued: none refused, none left for redrive
    tables: dict[str, list[dict[str, Any]]] = {LANDING_TABLE: [], DEAD_LETTER_TABLE: []}
    for message in queued(storage, peek=True):
        blob = message["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
        tables[message["TableName"]] += blob_rows(storage, "tempstorage", blob)
    check(case, result, Delivered(tables[LANDING_TABLE], tables[DEAD_LETTER_TABLE]))
