"""Azure Data Explorer: the only module that imports ``azure.kusto``.

Today it applies the ``kusto/`` scripts (``python -m ingest kusto apply``); the ingestion sink of
the Functions app (issue #4) joins it here, so that ADX failures are classified in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoError

from ingest.config import Settings
from ingest.errors import TerminalIngestError, TransientIngestError
from ingest.kusto import Statement
from ingest.sinks.base import BatchId, Rows


def connect(cluster: str, credential: Any | None) -> KustoClient:
    """A Kusto client for a cluster URL: an Azure token credential, or none (a local emulator)."""
    if credential is None:
        kcsb = KustoConnectionStringBuilder.with_no_authentication(cluster)
    else:
        kcsb = KustoConnectionStringBuilder.with_azure_token_credential(cluster, credential)
    return KustoClient(kcsb)


def default_credential() -> Any:
    """``DefaultAzureCredential``: managed identity in Azure, the developer's login locally."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@dataclass(frozen=True, slots=True)
class Applied:
    """One statement that ADX accepted."""

    statement: Statement
    rows: int


def _describe(statement: Statement) -> str:
    first = statement.text.splitlines()[0]
    shown = first if len(first) <= 100 else first[:100] + "..."
    return f"kusto/{statement.file}:{statement.line} `{shown}`"


def _error_message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:2000]


def apply_statements(
    client: KustoClient,
    database: str,
    statements: Iterable[Statement],
    report: Callable[[str], None],
) -> list[Applied]:
    """Run statements in order; stop at the first failure with the failing statement named.

    Raises TerminalIngestError for an error ADX calls permanent (syntax, semantics, permissions)
    and TransientIngestError otherwise (throttling, timeouts, network): running again is safe,
    since every statement is idempotent.
    """
    applied = []
    for statement in statements:
        try:
            response = client.execute_mgmt(database, statement.text)
        except KustoError as exc:
            raise classify(exc)(f"{_describe(statement)} failed: {_error_message(exc)}") from exc
        rows = len(response.primary_results[0].raw_rows) if response.primary_results else 0
        applied.append(Applied(statement, rows))
        report(f"ok    {_describe(statement)}")
    return applied


def _is_permanent(exc: KustoError) -> bool:
    error = getattr(exc, "error", None)
    permanent = getattr(error, "permanent", None)
    if permanent is not None:
        return bool(permanent)
    http = getattr(exc, "http_response", None)
    status = getattr(http, "status_code", None)
    return status is not None and 400 <= status < 500 and status not in (408, 429)


# ---------------------------------------------------------------------------------------------
# Ingestion: the Functions app's sink


def classify(exc: BaseException) -> type[TransientIngestError] | type[TerminalIngestError]:
    """The one place where an ingestion failure is judged transient or terminal.

    Transient: throttling, timeouts, network errors, 5xx, and service errors not marked permanent.
    Terminal: mapping and schema errors, authentication and authorization, other 4xx, and errors the
    service marks permanent. Unknown errors count as transient: the batch is retried, then kept.
    """
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
    from azure.kusto.data.exceptions import KustoAuthenticationError, KustoThrottlingError
    from azure.kusto.ingest.exceptions import KustoMappingError, KustoMissingMappingError

    if isinstance(exc, (KustoMappingError, KustoMissingMappingError, KustoAuthenticationError)):
        return TerminalIngestError
    if isinstance(exc, ClientAuthenticationError):
        return TerminalIngestError
    if isinstance(exc, KustoThrottlingError):
        return TransientIngestError
    if isinstance(exc, KustoError):
        return TerminalIngestError if _is_permanent(exc) else TransientIngestError
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        return (
            TerminalIngestError
            if 400 <= status < 500 and status not in (408, 429)
            else TransientIngestError
        )
    return TransientIngestError


def _jsonl_gzip(rows: Rows) -> bytes:
    import gzip

    import orjson

    return gzip.compress(b"".join(orjson.dumps(row) + b"\n" for row in rows), compresslevel=5)


def _creation_time(rows: Rows) -> str | None:
    """The earliest record time: extents then age (retention, caching) with the data."""
    times = [str(r["Timestamp"]) for r in rows if r.get("Timestamp")]
    return min(times) if times else None


class DeadLetterStore:
    """Batches ADX could not take: gzip JSON lines in a blob container, one blob per table."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def put(self, batch: BatchId, table: str, payload: bytes, rows: int, error: str) -> str:
        """Keep a table's rows; returns the blob name. TransientIngestError if storage fails."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        name = f"{batch.name}/{table}.jsonl.gz"
        metadata = {
            "table": table,
            "rows": str(rows),
            "error": error.encode("ascii", "replace").decode()[:1024],
        }
        try:
            with contextlib.suppress(ResourceExistsError):
                self.container.create_container()
            self.container.upload_blob(name, payload, overwrite=True, metadata=metadata)
        except AzureError as exc:
            raise TransientIngestError(
                f"cannot keep the undeliverable batch `{name}`: {exc}"
            ) from exc
        return name

    def items(self) -> list[tuple[str, str]]:
        """(blob name, table) of every kept batch."""
        return [
            (b.name, b.metadata.get("table", ""))
            for b in self.container.list_blobs(include=["metadata"])
        ]

    def read(self, name: str) -> bytes:
        """A kept batch's payload."""
        data: bytes = self.container.download_blob(name).readall()
        return data

    def delete(self, name: str) -> None:
        """Forget a redriven batch."""
        self.container.delete_blob(name)


class AdxSink:
    """Batches to ADX: one compressed blob per table (queued) or a stream (streaming, managed)."""

    def __init__(
        self,
        client: Any,
        database: str,
        dead_letters: DeadLetterStore,
        *,
        retries: int = 3,
        retry_base_seconds: float = 1.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        import time

        self.client = client
        self.database = database
        self.dead_letters = dead_letters
        self.retries = retries
        self.retry_base_seconds = retry_base_seconds
        self.sleep = sleep or time.sleep
        self.kept: list[str] = []

    def write(self, batch: BatchId, tables: Mapping[str, Rows], *, final_attempt: bool) -> None:
        """Ingest every table; keep what ADX refuses for good, or on the trigger's last attempt."""
        for table, rows in tables.items():
            if not rows:
                continue
            payload = _jsonl_gzip(rows)
            try:
                self.ingest(table, payload, _creation_time(rows))
            except TerminalIngestError as exc:
                self.kept.append(self.dead_letters.put(batch, table, payload, len(rows), str(exc)))
            except TransientIngestError as exc:
                if not final_attempt:
                    raise
                self.kept.append(self.dead_letters.put(batch, table, payload, len(rows), str(exc)))

    def ingest(self, table: str, payload: bytes, creation_time: str | None) -> None:
        """One gzip JSON-lines payload into a table, retried with backoff while transient."""
        import io
        import random

        from azure.kusto.data.data_format import DataFormat, IngestionMappingKind
        from azure.kusto.ingest import IngestionProperties, StreamDescriptor

        from ingest.kusto import mapping_name

        properties = IngestionProperties(
            self.database,
            table,
            data_format=DataFormat.MULTIJSON,
            ingestion_mapping_kind=IngestionMappingKind.JSON,
            ingestion_mapping_reference=mapping_name(table),
            additional_properties={"creationTime": creation_time} if creation_time else None,
        )
        for attempt in range(self.retries + 1):
            try:
                stream = StreamDescriptor(
                    io.BytesIO(payload), is_compressed=True, size=len(payload)
                )
                self.client.ingest_from_stream(stream, properties)
                return
            except Exception as exc:
                kind = classify(exc)
                reason = _error_message(exc)
                message = f"ingesting {len(payload)} bytes into `{table}` failed: {reason}"
                if kind is TerminalIngestError or attempt == self.retries:
                    raise kind(message) from exc
                self.sleep(self.retry_base_seconds * (2**attempt) * (0.5 + random.random()))


def credential(client_id: str = "") -> Any:
    """The app's identity: a user-assigned managed identity when its client id is set."""
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def ingest_client(
    mode: str, cluster_uri: str, ingest_uri: str, token_credential: Any | None
) -> Any:
    """The azure-kusto-ingest client for an ingestion mode (``None`` credential: no auth, local)."""
    from azure.kusto.ingest import (
        KustoStreamingIngestClient,
        ManagedStreamingIngestClient,
        QueuedIngestClient,
    )

    def kcsb(uri: str) -> KustoConnectionStringBuilder:
        if token_credential is None:
            return KustoConnectionStringBuilder.with_no_authentication(uri)
        return KustoConnectionStringBuilder.with_azure_token_credential(uri, token_credential)

    if mode == "streaming":
        return KustoStreamingIngestClient(kcsb(cluster_uri))
    if mode == "managed":
        return ManagedStreamingIngestClient(kcsb(cluster_uri), kcsb(ingest_uri))
    return QueuedIngestClient(kcsb(ingest_uri))


def dead_letter_container(
    connection: str, blob_uri: str, container: str, token_credential: Any, *, retries: int = 3
) -> Any:
    """The dead-letter container in the app's storage account (identity, or a connection string)."""
    from azure.storage.blob import BlobServiceClient

    if connection:
        service = BlobServiceClient.from_connection_string(connection, retry_total=retries)
    else:
        service = BlobServiceClient(blob_uri, credential=token_credential, retry_total=retries)
    return service.get_container_client(container)


def redrive(sink: AdxSink, report: Callable[[str], None]) -> tuple[int, int]:
    """Re-ingest every kept batch; delete each one ADX accepts. Returns (redriven, still kept)."""
    done = failed = 0
    for name, table in sink.dead_letters.items():
        try:
            sink.ingest(table, sink.dead_letters.read(name), None)
        except (TerminalIngestError, TransientIngestError) as exc:
            failed += 1
            report(f"kept  {name}: {exc}")
            continue
        sink.dead_letters.delete(name)
        done += 1
        report(f"ok    {name}")
    return done, failed


def sink_from_settings(settings: Settings, *, mode: str | None = None) -> AdxSink:
    """The app's sink from its settings: ingest client, dead-letter container, retries."""
    identity = credential(settings.managed_identity_client_id)
    client = ingest_client(
        mode or settings.ingestion_mode, settings.adx_cluster_uri, settings.adx_ingest_uri, identity
    )
    container = dead_letter_container(
        settings.storage_connection,
        settings.storage_blob_uri,
        settings.dead_letter_container,
        identity,
    )
    return AdxSink(
        client,
        settings.adx_database,
        DeadLetterStore(container),
        retries=settings.adx_retries,
        retry_base_seconds=settings.adx_retry_base_seconds,
    )
