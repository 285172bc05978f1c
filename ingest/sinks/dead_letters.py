"""Batches ADX could not take, kept in the app's storage account until ``redrive`` re-ingests them.

One blob per table per batch, gzip JSON lines, named ``partition-<p>/seq-<first>-<last>/<Table>
.jsonl.gz`` with the error in its metadata.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ingest.errors import TransientIngestError
from ingest.model import BatchId


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
