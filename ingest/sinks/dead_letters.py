"""Batches kept in the app's storage account: refused by ADX, or waiting for ADX's verdict.

* Kept batches (``partition-<p>/seq-<first>-<last>/<Table>.jsonl.gz``): ADX refused them for good,
  the trigger's last retry failed, or a queued ingestion was reported failed; the error is in the
  blob's metadata, and ``python -m ingest redrive`` re-ingests them.
* Pending batches (``pending/<source id>.jsonl.gz``): a copy of each queued ingestion until ADX
  reports its outcome (``sinks.ingestion_status``): deleted on success, kept on failure.

Both live in one container (``DEAD_LETTER_CONTAINER``), gzip JSON lines, one blob per table (or
per part of a table's rows). Payloads go up and come down as streams through spools
(``sinks.spooled``), never whole in memory.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.errors import TransientIngestError
from ingest.model import BatchId
from ingest.sinks.spooled import Span, Spool

PENDING = "pending/"
"""Prefix of the copies of queued ingestions whose outcome ADX has not reported yet."""


@dataclass(frozen=True, slots=True)
class Kept:
    """A kept batch: what redrive needs to ingest it again, its rows and compressed size."""

    name: str
    table: str
    creation_time: str | None
    rows: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class Pending:
    """A queued ingestion waiting for its status."""

    source_id: str
    table: str
    batch: str
    rows: int
    creation_time: str | None
    created: datetime | None


def _ascii(text: str, limit: int = 1024) -> str:
    return text.encode("ascii", "replace").decode()[:limit]


class DeadLetterStore:
    """Batches in a blob container: kept ones (redrive) and pending ones (status tracking)."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def _upload(self, name: str, payload: Span, metadata: dict[str, str], what: str) -> None:
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            with contextlib.suppress(ResourceExistsError):
                self.container.create_container()
            with payload.open() as stream:
                self.container.upload_blob(
                    name, stream, length=payload.size, overwrite=True, metadata=metadata
                )
        except AzureError as exc:
            raise TransientIngestError(f"cannot keep {what} `{name}`: {exc}") from exc

    def put(
        self,
        batch: BatchId,
        table: str,
        payload: Span,
        rows: int,
        error: str,
        creation_time: str | None = None,
        part: int = 0,
    ) -> str:
        """Keep a table's rows; returns the blob name. TransientIngestError if storage fails.

        ``part``: which of the table's payloads of the batch (a table's rows past the raw size
        of one ingestion are split): the first is ``<Table>.jsonl.gz``, the next ones
        ``<Table>.part-<n>.jsonl.gz``.
        """
        suffix = f".part-{part}" if part else ""
        name = f"{batch.name}/{table}{suffix}.jsonl.gz"
        metadata = {"table": table, "rows": str(rows), "error": _ascii(error)}
        if creation_time:
            metadata["creationtime"] = creation_time
        self._upload(name, payload, metadata, "the undeliverable batch")
        return name

    def items(self) -> list[Kept]:
        """Every kept batch (pending copies are not kept batches)."""
        return [
            Kept(
                b.name,
                b.metadata.get("table", ""),
                b.metadata.get("creationtime") or None,
                _rows(b.metadata),
                b.size or 0,
            )
            for b in self.container.list_blobs(include=["metadata"])
            if not b.name.startswith(PENDING)
        ]

    def read(self, name: str, spool: Spool) -> Span:
        """A kept batch's payload, downloaded in chunks to the end of ``spool``."""
        start = spool.size
        self.container.download_blob(name).readinto(spool)
        return spool.span(start)

    def delete(self, name: str) -> None:
        """Forget a redriven batch."""
        self.container.delete_blob(name)

    # -- pending copies of queued ingestions ---------------------------------------------------

    def hold(
        self,
        source_id: str,
        batch: BatchId,
        table: str,
        payload: Span,
        rows: int,
        creation_time: str | None,
    ) -> None:
        """Keep a copy of a queued ingestion until ADX reports how it went."""
        metadata = {"table": table, "rows": str(rows), "batch": batch.name}
        if creation_time:
            metadata["creationtime"] = creation_time
        self._upload(f"{PENDING}{source_id}.jsonl.gz", payload, metadata, "a copy of the batch")

    def release(self, source_id: str) -> bool:
        """Drop the copy of an ingestion that succeeded; False if there was none."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(f"{PENDING}{source_id}.jsonl.gz")
        except ResourceNotFoundError:
            return False
        return True

    def pending(self) -> list[Pending]:
        """Every ingestion still waiting for its status."""
        found = []
        for blob in self.container.list_blobs(name_starts_with=PENDING, include=["metadata"]):
            meta = blob.metadata or {}
            found.append(
                Pending(
                    source_id=blob.name[len(PENDING) :].removesuffix(".jsonl.gz"),
                    table=meta.get("table", ""),
                    batch=meta.get("batch", ""),
                    rows=_rows(meta),
                    creation_time=meta.get("creationtime") or None,
                    created=blob.creation_time,
                )
            )
        return found

    def keep_pending(self, source_id: str, error: str) -> Kept | None:
        """Move a pending copy to the kept batches with ADX's error (None if there was none)."""
        from azure.core.exceptions import ResourceNotFoundError

        pending = f"{PENDING}{source_id}.jsonl.gz"
        with Spool() as spool:
            try:
                blob = self.container.get_blob_client(pending)
                metadata = dict(blob.get_blob_properties().metadata or {})
                payload = self.read(pending, spool)
            except ResourceNotFoundError:
                return None
            table = metadata.get("table", "")
            folder = metadata.get("batch") or "partition-na/seq-na-na"
            name = f"{folder}/{table}-{source_id}.jsonl.gz"
            creation_time = metadata.get("creationtime") or None
            kept = {"table": table, "rows": metadata.get("rows", ""), "error": _ascii(error)}
            if creation_time:
                kept["creationtime"] = creation_time
            self._upload(name, payload, kept, "the failed batch")
        self.container.delete_blob(pending)
        return Kept(name, table, creation_time, _rows(metadata), payload.size)


def _rows(metadata: dict[str, str] | None) -> int:
    """The row count a kept or pending blob's metadata records (0 if it records none)."""
    try:
        return int((metadata or {}).get("rows", "0") or 0)
    except ValueError:
        return 0


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
