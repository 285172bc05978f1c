"""An ADX outage in the middle of simulated traffic: nothing lost, nothing duplicated in the KPIs.

Simulated traffic goes through the Functions batch path in simulated time (tests/outage_world.py:
partitions read in order by concurrent readers, host.json's batching, the trigger's retry policy,
the sink's own retries), while the local Data Management endpoint answers 429/503 for eight
minutes of simulated time: long enough for batches to use up their retries and be kept on the
last attempt. Then ``redrive`` ingests what was kept. Every record the pipeline produced must end
queued for ADX (directly or through redrive), a RecordId delivered twice must carry the same row
(the dedup views keep one), and per-partition order must hold.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from ingest.commands.simulate import DEFAULT_START, simulate
from tests.adx_world import DEAD_LETTERS
from tests.azurite import Azurite
from tests.kusto_endpoint import kusto_endpoints
from tests.outage_world import (
    MAX_RETRIES,
    RETRY_MAX_SECONDS,
    RETRY_MIN_SECONDS,
    Day,
    Outage,
    account,
    arrivals,
    dedup,
    kpis,
    percentile,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MINUTES = 20
OUTAGE = (5 * 60.0, 13 * 60.0)


def test_the_model_follows_the_app_s_retry_policy() -> None:
    source = (ROOT / "function_app.py").read_text(encoding="utf-8")
    assert re.search(rf"^MAX_RETRIES = {MAX_RETRIES}$", source, re.MULTILINE)
    assert 'strategy="exponential_backoff"' in source
    assert 'minimum_interval="00:00:10"' in source
    assert RETRY_MIN_SECONDS == 10
    assert 'maximum_interval="00:15:00"' in source
    assert RETRY_MAX_SECONDS == 15 * 60


def queued_record_ids(storage: Azurite) -> Iterator[tuple[str, str]]:
    """(table, RecordId) of every row in every blob the ingestion queue points at."""
    queue = QueueServiceClient.from_connection_string(storage.connection_string).get_queue_client(
        "readyforaggregation"
    )
    blobs = BlobServiceClient.from_connection_string(storage.connection_string)
    while True:
        messages = list(queue.receive_messages(messages_per_page=32, max_messages=32))
        if not messages:
            return
        for message in messages:
            posted = json.loads(base64.b64decode(message.content))
            name = posted["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
            data = blobs.get_container_client("tempstorage").download_blob(name).readall()
            for line in gzip.decompress(data).splitlines():
                yield posted["TableName"], str(orjson.loads(line)["RecordId"])
            queue.delete_message(message)


def test_an_outage_loses_nothing_and_duplicates_nothing_in_the_kpis(clean: Azurite) -> None:
    bodies, _ = simulate(5, DEFAULT_START, MINUTES / 60, 40)
    events = list(bodies)
    outage = Outage(*OUTAGE)
    with kusto_endpoints(2) as endpoints:
        day = Day(clean, endpoints, outage=outage)
        report = day.run(arrivals([(0.0, MINUTES * 60.0, events)], 2))
        redrive_from = len(day.delivered)
        kept_names = day.kept
        done, failed = day.redrive()
    result = account(report, day.delivered, redrive_from)
    drained = (report.backlog_drained_at or 0.0) - outage.end
    print(
        f"\n{report.events} events, {report.batches} batches, {report.attempts} attempts "
        f"({report.failed_attempts} failed), {report.kept_batches} batches kept, "
        f"{outage.refused} commands refused; backlog drained {drained:.0f} s after the outage; "
        f"lag p50 {percentile(report.lag, 0.5):.0f} s, max {max(report.lag):.0f} s; "
        f"{result.duplicate_deliveries} duplicate deliveries ({result.redeliveries} replays)"
    )
    # The outage bit: batches were retried, some used up their retries and were kept.
    assert outage.refused > 0
    assert report.failed_attempts > 0
    assert report.kept_batches > 0
    assert (done, failed) == (len(kept_names), 0)
    assert result.by_redrive > 0
    # Nothing lost, nothing made up, and a RecordId delivered twice carries the same row.
    assert report.records == report.rows + report.dead_letters
    assert result.missing == 0
    assert result.unexpected == 0
    assert result.conflicting_duplicates == 0
    # Order: each partition's batches were checkpointed in sequence, none skipped.
    assert report.order_violations == 0
    assert all(p.checkpoint == p.next_sequence - 1 for p in day.partitions)
    assert all(not p.buffer and p.retry is None for p in day.partitions)
    # What the client saw accepted is what the queue holds (the authoritative record).
    assert set(queued_record_ids(clean)) == {(t, r) for t, r, _ in day.delivered}
    container = BlobServiceClient.from_connection_string(
        clean.connection_string
    ).get_container_client(DEAD_LETTERS)
    assert [b.name for b in container.list_blobs() if not b.name.startswith("pending/")] == []
    # KPIs over the deduplicated rows equal the KPIs of what the pipeline produced.
    assert kpis(dedup(day.delivered)) == kpis(report.expected.values())
    assert drained >= 0
