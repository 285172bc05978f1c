"""The ADX sink with the real azure-kusto-ingest clients, Azurite for storage, and a local endpoint
that answers the Data Management commands the SDK sends (the recorded wire)."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from ingest.batch import run_batch
from ingest.core.pipeline import Pipeline
from ingest.errors import TransientIngestError
from ingest.model import BatchId, BatchResult, EventInput, EventMeta
from ingest.sinks import adx
from ingest.sinks.ingestion_status import StatusWatcher, status_queues
from tests.adx_world import (
    DEAD_LETTERS,
    adx_sink,
    blob_rows,
    dm_answer,
    queued,
)
from tests.azurite import Azurite
from tests.conftest import golden_settings, load_fixture
from tests.kusto_endpoint import error_reply, kusto_endpoint, table_reply

pytestmark = pytest.mark.integration


def _events() -> list[EventInput]:
    meta = EventMeta("3", 100, "4096", "2024-09-30T12:35:00.0000000Z")
    return [
        EventInput(load_fixture("poison_records"), meta),
        EventInput(
            load_fixture("chat_nonstream"),
            EventMeta("3", 101, "8192", "2024-09-30T12:35:01.0000000Z"),
        ),
    ]


def test_queued_ingestion_writes_one_compressed_blob_per_table_and_queues_it(
    clean: Azurite,
) -> None:
    events = _events()
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean)
        result = run_batch(
            Pipeline(golden_settings()),
            adx_sink(endpoint, clean),
            events,
            final_attempt=False,
            keep_rows=True,
        )
    # A batch mixing good and poison records: 2 landing rows and 7 dead letters, both ingested.
    assert (len(result.rows), len(result.dead_letters)) == (2, 7)
    messages = {m["TableName"]: m for m in queued(clean)}
    assert set(messages) == {"ApimLogsLanding", "IngestDeadLetters"}
    landing = messages["ApimLogsLanding"]
    assert landing["DatabaseName"] == "apimlogs"
    properties = landing["AdditionalProperties"]
    assert properties["format"] == "multijson"
    assert properties["ingestionMappingReference"] == "ApimLogsLanding_json_v1"
    assert properties["ingestionMappingType"] == "Json"
    assert properties["creationTime"] == "2024-09-30T12:31:31.4465902Z"  # the earliest record
    assert properties["authorizationContext"] == "kusto-identity-token"
    blob = landing["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
    assert blob_rows(clean, "tempstorage", blob) == [dict(r) for r in result.rows]
    dead = messages["IngestDeadLetters"]["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
    assert blob_rows(clean, "tempstorage", dead) == [dict(r) for r in result.dead_letters]


def test_streaming_ingestion_posts_the_rows_to_the_engine(clean: Azurite) -> None:
    with kusto_endpoint() as endpoint:
        endpoint.answer = lambda _: table_reply([("Result", "string")], [["ok"]])
        result = run_batch(
            Pipeline(golden_settings()),
            adx_sink(endpoint, clean, "streaming"),
            _events(),
            final_attempt=False,
            keep_rows=True,
        )
        posted = endpoint.streamed
    assert [p.path.split("?")[0] for p in posted] == [
        "/v1/rest/ingest/apimlogs/ApimLogsLanding",
        "/v1/rest/ingest/apimlogs/IngestDeadLetters",
    ]
    assert "streamFormat=multijson" in posted[0].path
    assert "mappingName=ApimLogsLanding_json_v1" in posted[0].path
    rows = [orjson.loads(line) for line in gzip.decompress(posted[0].raw).splitlines()]
    assert rows == [dict(r) for r in result.rows]


def test_transient_failures_are_retried_and_nothing_is_duplicated(clean: Azurite) -> None:
    unavailable = error_reply(503, "ServiceUnavailable", "Service is busy", permanent=False)
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean, [unavailable, unavailable])
        sink = adx_sink(endpoint, clean)
        run_batch(Pipeline(golden_settings()), sink, _events(), final_attempt=False)
    messages = queued(clean)
    assert sorted(m["TableName"] for m in messages) == ["ApimLogsLanding", "IngestDeadLetters"]
    assert sink.kept == []


def test_a_permanent_failure_keeps_the_batch_intact_and_redrive_recovers_it(clean: Azurite) -> None:
    forbidden = error_reply(
        403, "Forbidden", "Principal is not authorized to ingest", permanent=True
    )
    events = _events()
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean, [forbidden] * 2)
        sink = adx_sink(endpoint, clean)
        result = run_batch(
            Pipeline(golden_settings()), sink, events, final_attempt=False, keep_rows=True
        )
    assert sink.kept == [
        "partition-3/seq-100-101/ApimLogsLanding.jsonl.gz",
        "partition-3/seq-100-101/IngestDeadLetters.jsonl.gz",
    ]
    assert queued(clean) == []
    assert blob_rows(clean, DEAD_LETTERS, sink.kept[0]) == [dict(r) for r in result.rows]
    blob = BlobServiceClient.from_connection_string(clean.connection_string).get_blob_client(
        DEAD_LETTERS, sink.kept[0]
    )
    metadata = blob.get_blob_properties().metadata
    assert metadata["table"] == "ApimLogsLanding"
    assert metadata["rows"] == "2"
    assert "not authorized" in metadata["error"]

    lines: list[str] = []
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean)
        done, failed = adx.redrive(adx_sink(endpoint, clean), lines.append)
    assert (done, failed) == (2, 0)
    assert sorted(m["TableName"] for m in queued(clean)) == [
        "ApimLogsLanding",
        "IngestDeadLetters",
    ]
    container = BlobServiceClient.from_connection_string(
        clean.connection_string
    ).get_container_client(DEAD_LETTERS)
    # Nothing is kept any more; the redriven payloads wait (pending/) for their own status.
    names = [b.name for b in container.list_blobs()]
    assert names
    assert all(name.startswith("pending/") for name in names)


def test_the_last_attempt_keeps_a_transiently_failing_batch(clean: Azurite) -> None:
    unavailable = error_reply(503, "ServiceUnavailable", "Service is busy", permanent=False)
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean, [unavailable] * 50)
        sink = adx_sink(endpoint, clean)
        with pytest.raises(TransientIngestError, match="Service is busy"):
            run_batch(Pipeline(golden_settings()), sink, _events(), final_attempt=False)
        assert sink.kept == []
        run_batch(Pipeline(golden_settings()), sink, _events(), final_attempt=True)
    assert len(sink.kept) == 2


def test_storage_unavailable_raises_so_the_batch_is_replayed(clean: Azurite) -> None:
    forbidden = error_reply(
        403, "Forbidden", "Principal is not authorized to ingest", permanent=True
    )
    closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        + base64.b64encode(b"k" * 32).decode()
        + ";BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean, [forbidden] * 10)
        client = adx.ingest_client("queued", endpoint.url, endpoint.url, None)
        store = adx.DeadLetterStore(
            adx.dead_letter_container(closed, "", DEAD_LETTERS, None, retries=0)
        )
        sink = adx.AdxSink(client, "apimlogs", store, retries=0, sleep=lambda _: None)
        with pytest.raises(TransientIngestError, match="cannot keep the undeliverable batch"):
            sink.write(
                BatchId("3", 1, 2),
                {"ApimLogsLanding": [{"Timestamp": "2024-09-30T12:00:00Z"}]},
                final_attempt=True,
            )


def test_failures_are_classified_once() -> None:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )
    from azure.kusto.data.exceptions import KustoThrottlingError
    from azure.kusto.ingest.exceptions import KustoMissingMappingError

    from ingest.errors import TerminalIngestError

    class Response:
        def __init__(self, status: int) -> None:
            self.status_code = status
            self.reason = "x"
            self.headers: dict[str, str] = {}

        def text(self) -> str:
            return ""

    def http(status: int) -> HttpResponseError:
        error = HttpResponseError(message=f"status {status}")
        error.status_code = status
        return error

    assert adx.classify(KustoThrottlingError("slow down")) is TransientIngestError
    assert adx.classify(ServiceRequestError("connection reset")) is TransientIngestError
    assert adx.classify(TimeoutError()) is TransientIngestError
    assert adx.classify(http(503)) is TransientIngestError
    assert adx.classify(http(429)) is TransientIngestError
    assert adx.classify(http(403)) is TerminalIngestError
    assert adx.classify(ClientAuthenticationError("no token")) is TerminalIngestError
    assert adx.classify(KustoMissingMappingError("no mapping")) is TerminalIngestError


def test_managed_streaming_falls_back_to_queued_ingestion(clean: Azurite) -> None:
    dm = dm_answer(clean)

    def answer(request: Any) -> tuple[int, dict[str, Any]]:
        if request.path.startswith("/v1/rest/ingest/"):
            return error_reply(503, "ServiceUnavailable", "Streaming is busy", permanent=False)
        result: tuple[int, dict[str, Any]] = dm(request)
        return result

    with kusto_endpoint() as endpoint:
        endpoint.answer = answer
        sink = adx_sink(endpoint, clean, "managed")
        run_batch(Pipeline(golden_settings()), sink, _events()[1:], final_attempt=False)
        tried = [p.path.split("?")[0] for p in endpoint.streamed]
    assert tried
    assert set(tried) == {"/v1/rest/ingest/apimlogs/ApimLogsLanding"}
    assert [m["TableName"] for m in queued(clean)] == ["ApimLogsLanding"]


# -- queued ingestion status: ADX reports the outcome later, to its status queues ----------------


def _report(storage: Azurite, queue: str, message: dict[str, Any]) -> None:
    """Post a status message the way ADX's Data Management service does (base64 JSON)."""
    client = QueueServiceClient.from_connection_string(storage.connection_string)
    payload = base64.b64encode(json.dumps(message).encode()).decode()
    client.get_queue_client(queue).send_message(payload)


def _blobs(storage: Azurite, prefix: str = "") -> list[str]:
    container = BlobServiceClient.from_connection_string(
        storage.connection_string
    ).get_container_client(DEAD_LETTERS)
    if not container.exists():
        return []
    return sorted(b.name for b in container.list_blobs(name_starts_with=prefix or None))


def _ingested(clean: Azurite) -> tuple[BatchResult, dict[str, dict[str, Any]], adx.AdxSink, Any]:
    endpoint_cm = kusto_endpoint()
    endpoint = endpoint_cm.__enter__()
    endpoint.answer = dm_answer(clean)
    sink = adx_sink(endpoint, clean)
    result = run_batch(
        Pipeline(golden_settings()), sink, _events(), final_attempt=False, keep_rows=True
    )
    messages = {m["TableName"]: m for m in queued(clean)}
    return result, messages, sink, endpoint_cm


def test_queued_ingestion_asks_for_its_status_and_holds_a_copy_until_then(clean: Azurite) -> None:
    result, messages, _, endpoint = _ingested(clean)
    endpoint.__exit__(None, None, None)
    landing = messages["ApimLogsLanding"]
    assert landing["ReportLevel"] == 2  # FailuresAndSuccesses
    assert landing["ReportMethod"] == 0  # to the status queues
    raw = b"".join(orjson.dumps(dict(r)) + b"\n" for r in result.rows)
    assert landing["RawDataSize"] == len(raw)  # the uncompressed size, not the blob's
    held = _blobs(clean, "pending/")
    assert held == sorted(f"pending/{m['Id']}.jsonl.gz" for m in messages.values())
    assert blob_rows(clean, DEAD_LETTERS, f"pending/{landing['Id']}.jsonl.gz") == [
        dict(r) for r in result.rows
    ]


def test_a_success_report_drops_the_copy(clean: Azurite) -> None:
    _, messages, sink, endpoint = _ingested(clean)
    try:
        for message in messages.values():
            _report(clean, "success", {"IngestionSourceId": message["Id"], "Table": "x"})
        counts = StatusWatcher(sink, status_queues(sink)).check()
    finally:
        endpoint.__exit__(None, None, None)
    assert (counts.succeeded, counts.failed, counts.expired) == (2, 0, 0)
    assert _blobs(clean) == []


def test_a_failure_reported_after_the_function_returned_keeps_the_batch(clean: Azurite) -> None:
    result, messages, sink, endpoint = _ingested(clean)  # the invocation has returned
    failures = []
    try:
        landing = messages["ApimLogsLanding"]
        _report(
            clean,
            "failed",
            {
                "IngestionSourceId": landing["Id"],
                "Table": "ApimLogsLanding",
                "FailedOn": "2024-09-30T12:40:00Z",
                "FailureStatus": "Permanent",
                "ErrorCode": "BadRequest_InvalidMapping",
                "Details": "Mapping reference 'ApimLogsLanding_json_v1' was not found",
                "OriginatesFromUpdatePolicy": False,
            },
        )
        _report(clean, "success", {"IngestionSourceId": messages["IngestDeadLetters"]["Id"]})
        watcher = StatusWatcher(sink, status_queues(sink), on_failure=failures.append)
        counts = watcher.check()
    finally:
        endpoint.__exit__(None, None, None)
    assert (counts.succeeded, counts.failed) == (1, 1)
    assert [f.table for f in failures] == ["ApimLogsLanding"]
    # The batch is kept, whole, where redrive finds it, with ADX's error in its metadata.
    (kept,) = [name for name in _blobs(clean) if not name.startswith("pending/")]
    assert kept.startswith("partition-3/seq-100-101/ApimLogsLanding-")
    assert blob_rows(clean, DEAD_LETTERS, kept) == [dict(r) for r in result.rows]
    metadata = (
        BlobServiceClient.from_connection_string(clean.connection_string)
        .get_blob_client(DEAD_LETTERS, kept)
        .get_blob_properties()
        .metadata
    )
    assert "BadRequest_InvalidMapping" in metadata["error"]
    assert metadata["creationtime"] == "2024-09-30T12:31:31.4465902Z"
    # ... and one dead letter names it, ingested (queued) into IngestDeadLetters.
    (notice,) = [m for m in queued(clean) if m["TableName"] == "IngestDeadLetters"]
    blob = notice["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
    (letter,) = blob_rows(clean, "tempstorage", blob)
    assert (letter["Reason"], letter["RawEncoding"], letter["RawPayload"]) == (
        "ingestion_failed",
        "blob",
        kept,
    )
    assert "BadRequest_InvalidMapping" in letter["Detail"]
    assert letter["EventPartitionId"] == "3"
    # Redrive takes the kept batch (and holds a copy of it until its own status arrives).
    lines: list[str] = []
    with kusto_endpoint() as again:
        again.answer = dm_answer(clean)
        assert adx.redrive(adx_sink(again, clean), lines.append) == (1, 0)
    redriven = [m for m in queued(clean) if m["TableName"] == "ApimLogsLanding"]
    assert len(redriven) == 1
    assert redriven[0]["AdditionalProperties"]["creationTime"] == "2024-09-30T12:31:31.4465902Z"


def test_a_copy_with_no_report_is_kept_once_its_window_has_passed(clean: Azurite) -> None:
    _, _, sink, endpoint = _ingested(clean)
    try:
        watcher = StatusWatcher(sink, status_queues(sink))
        assert watcher.check().expired == 0
        later = datetime.now(UTC) + timedelta(hours=49)
        counts = watcher.check(later)
    finally:
        endpoint.__exit__(None, None, None)
    assert counts.expired == 2
    assert len(sink.kept) == 2
    # What waits now is the copy of the one dead letter that names the kept landing batch.
    (notice,) = _blobs(clean, "pending/")
    assert blob_rows(clean, DEAD_LETTERS, notice)[0]["Reason"] == "ingestion_failed"


def test_streaming_splits_a_large_batch_into_requests_under_the_limit(
    clean: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adx, "STREAMING_MAX_RAW_BYTES", 1024)
    with kusto_endpoint() as endpoint:
        endpoint.answer = lambda _: table_reply([("Result", "string")], [["ok"]])
        result = run_batch(
            Pipeline(golden_settings()),
            adx_sink(endpoint, clean, "streaming"),
            _events(),
            final_attempt=False,
            keep_rows=True,
        )
        posted = [p for p in endpoint.streamed if "/ApimLogsLanding" in p.path]
    sizes = [len(gzip.decompress(p.raw)) for p in posted]
    assert len(posted) > 1
    # Each request stays under the limit, unless it is a single row larger than the limit.
    rows_per_request = [len(gzip.decompress(p.raw).splitlines()) for p in posted]
    assert all(s <= 1024 or n == 1 for s, n in zip(sizes, rows_per_request, strict=True))
    rows = [orjson.loads(line) for p in posted for line in gzip.decompress(p.raw).splitlines()]
    assert rows == [dict(r) for r in result.rows]


def _spooled_batch() -> list[EventInput]:
    """Enough landing rows for several parts under a 4 KB limit."""
    chat = load_fixture("chat_nonstream")
    return [
        EventInput(chat, EventMeta("3", 200 + i, str(i), "2024-09-30T12:35:00.0000000Z"))
        for i in range(12)
    ] + _events()


def test_spooled_queued_parts_are_uploaded_kept_and_redriven_whole(clean: Azurite) -> None:
    # Payloads in temporary files (past 512 bytes) and landing rows in parts under 4 KB raw, through
    # the real queued client: each part is one blob and one message with its own size and time.
    options = {"max_raw_bytes": 4096, "spool_bytes": 512}
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean)
        result = run_batch(
            Pipeline(golden_settings()),
            adx_sink(endpoint, clean, **options),
            _spooled_batch(),
            final_attempt=False,
            keep_rows=True,
        )
    messages = queued(clean)
    landing = [m for m in messages if m["TableName"] == "ApimLogsLanding"]
    assert len(landing) > 2
    rows: list[dict[str, Any]] = []
    for message in landing:
        blob = message["BlobPath"].split("/tempstorage/", 1)[1].split("?", 1)[0]
        part = blob_rows(clean, "tempstorage", blob)
        assert message["RawDataSize"] == sum(len(orjson.dumps(r)) + 1 for r in part) <= 4096
        assert message["AdditionalProperties"]["creationTime"] == min(r["Timestamp"] for r in part)
        rows += part
    assert rows == [dict(r) for r in result.rows]

    # The same batch refused for good: every part kept, intact; redrive sends each back whole.
    forbidden = error_reply(403, "Forbidden", "not authorized", permanent=True)
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean, [forbidden] * 100)
        sink = adx_sink(endpoint, clean, **options)
        run_batch(Pipeline(golden_settings()), sink, _spooled_batch(), final_attempt=False)
    assert len(set(sink.kept)) == len(messages)  # every part of every table, each a blob
    assert sink.kept[:2] == [
        "partition-3/seq-100-211/ApimLogsLanding.jsonl.gz",
        "partition-3/seq-100-211/ApimLogsLanding.part-1.jsonl.gz",
    ]
    kept_rows = [row for name in sink.kept for row in blob_rows(clean, DEAD_LETTERS, name)]
    assert kept_rows == [dict(r) for r in result.rows] + [dict(r) for r in result.dead_letters]
    with kusto_endpoint() as endpoint:
        endpoint.answer = dm_answer(clean)
        done, failed = adx.redrive(adx_sink(endpoint, clean, **options), lambda _: None)
    assert (done, failed) == (len(sink.kept), 0)
    again = [m for m in queued(clean) if m["TableName"] == "ApimLogsLanding"]

    def described(messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
        return sorted(
            (m["RawDataSize"], m["AdditionalProperties"]["creationTime"]) for m in messages
        )

    assert described(again) == described(landing)  # sizes measured as they streamed
