"""An ADX world without ADX: Azurite for storage and a local endpoint answering the Data
Management commands with Azurite SAS URLs, so the real azure-kusto-ingest clients run end to end."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from ingest.sinks import adx
from tests.azurite import Azurite, azurite
from tests.kusto_endpoint import KustoEndpoint, table_reply

DEAD_LETTERS = "ingest-deadletters"


@pytest.fixture(scope="module")
def storage() -> Iterator[Azurite]:
    with azurite() as started:
        blobs = BlobServiceClient.from_connection_string(started.connection_string)
        blobs.create_container("tempstorage")
        queues = QueueServiceClient.from_connection_string(started.connection_string)
        for name in ("readyforaggregation", "failed", "success"):
            queues.create_queue(name)
        yield started


def empty(storage: Azurite) -> None:
    """Remove what earlier ingestions left: temporary and kept blobs, queued messages."""
    blobs = BlobServiceClient.from_connection_string(storage.connection_string)
    for container in ("tempstorage", DEAD_LETTERS):
        client = blobs.get_container_client(container)
        if client.exists():
            for blob in client.list_blobs():
                client.delete_blob(blob.name)
    QueueServiceClient.from_connection_string(storage.connection_string).get_queue_client(
        "readyforaggregation"
    ).clear_messages()


@pytest.fixture
def clean(storage: Azurite) -> Azurite:
    empty(storage)
    return storage


def dm_answer(storage: Azurite, failures: list[tuple[int, dict[str, Any]]] | None = None) -> Any:
    """Answers of a Data Management endpoint: Azurite SAS URLs as the ingestion resources."""
    pending = list(failures or [])

    def answer(request: Any) -> tuple[int, dict[str, Any]]:
        csl = request.body.get("csl", "")
        if csl == ".get ingestion resources":
            if pending:
                return pending.pop(0)
            return table_reply(
                [("ResourceTypeName", "string"), ("StorageRoot", "string")],
                [
                    [
                        "SecuredReadyForAggregationQueue",
                        storage.queue_sas_url("readyforaggregation"),
                    ],
                    ["FailedIngestionsQueue", storage.queue_sas_url("failed")],
                    ["SuccessfulIngestionsQueue", storage.queue_sas_url("success")],
                    ["TempStorage", storage.container_sas_url("tempstorage")],
                    ["IngestionsStatusTable", storage.container_sas_url("tempstorage")],
                ],
            )
        if csl == ".get kusto identity token":
            return table_reply([("AuthorizationContext", "string")], [["kusto-identity-token"]])
        return table_reply([("ServiceType", "string")], [["DataManagement"]])

    return answer


def adx_sink(
    endpoint: KustoEndpoint, storage: Azurite, mode: str = "queued", **options: Any
) -> adx.AdxSink:
    """The real sink and clients on the local endpoint and Azurite (``options``: the sink's)."""
    client = adx.ingest_client(mode, endpoint.url, endpoint.url, None)
    container = adx.dead_letter_container(storage.connection_string, "", DEAD_LETTERS, None)
    return adx.AdxSink(
        client,
        "apimlogs",
        adx.DeadLetterStore(container),
        retries=2,
        sleep=lambda _: None,
        mode=mode,
        **options,
    )


def queued(storage: Azurite, *, peek: bool = False) -> list[dict[str, Any]]:
    """Ingestion messages the SDK posted (``peek``: leave them in the queue)."""
    queue = QueueServiceClient.from_connection_string(storage.connection_string).get_queue_client(
        "readyforaggregation"
    )
    found = (
        queue.peek_messages(max_messages=32)
        if peek
        else queue.receive_messages(messages_per_page=32)
    )
    return [json.loads(base64.b64decode(message.content).decode()) for message in found]


def blob_rows(storage: Azurite, container: str, name: str) -> list[dict[str, Any]]:
    blobs = BlobServiceClient.from_connection_string(storage.connection_string)
    data = blobs.get_container_client(container).download_blob(name).readall()
    return [orjson.loads(line) for line in gzip.decompress(data).splitlines()]
