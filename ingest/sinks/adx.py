"""Azure Data Explorer: the only module that imports ``azure.kusto``.

Today it applies the ``kusto/`` scripts (``python -m ingest kusto apply``); the ingestion sink of
the Functions app (issue #4) joins it here, so that ADX failures are classified in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoError

from ingest.errors import TerminalIngestError, TransientIngestError
from ingest.kusto import Statement


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


def _error_message(exc: KustoError) -> str:
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
            permanent = getattr(exc, "is_semantic_error", lambda: False)() or _is_permanent(exc)
            kind = TerminalIngestError if permanent else TransientIngestError
            raise kind(f"{_describe(statement)} failed: {_error_message(exc)}") from exc
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
