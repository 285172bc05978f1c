"""What every sink offers the pipeline (ESF's ProtocolShipper, dlt's destination client)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from ingest.core.pipeline import record_id
from ingest.core.privacy import mask_secrets
from ingest.model import BatchId, RejectReason, empty_dead_letter_row
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, load_table, row_checker

Rows = Sequence[Mapping[str, Any]]
"""Rows of one table: mappings keyed by column name, in the table's column order."""

Tables = Mapping[str, Rows]
"""Rows by table name: a batch, or a slice of one."""


class Sink(Protocol):
    """Takes the rows of one batch, table by table, whole or in slices."""

    def write(self, batch: BatchId, tables: Tables, *, final_attempt: bool) -> None:
        """Deliver every table's rows, or raise TransientIngestError to have the batch replayed.

        ``final_attempt`` says the trigger will not replay this batch again: a sink must then keep
        what it could not deliver (a dead-letter store) instead of raising.
        """
        ...

    def write_slices(
        self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
    ) -> None:
        """Deliver one batch handed over in slices as they are built, as ``write`` would.

        The slices are one batch (the ADX sink makes one payload per table of them all): a sink
        reads every slice, admits each on its own (``admit``), and copies what it keeps, without
        holding the rows of earlier slices. Dead letters go after the landing rows.
        """
        ...


def admit(tables: Tables, *, max_payload: int = 65536) -> dict[str, list[Any]]:
    """The rows of a batch that fit their tables' column types; the others become dead letters.

    Defence in depth, where rows are encoded: the core never writes a value its column cannot
    hold, but if it ever did, one row must not abort the transaction (local store) or the
    ingestion (ADX) of its neighbours. A landing row that does not fit becomes a ``bad_field``
    dead letter naming the columns; a dead letter that does not fit keeps its reason with the
    offending columns emptied.
    """
    admitted: dict[str, list[Any]] = {name: list(rows) for name, rows in tables.items()}
    landing = admitted.get(LANDING_TABLE)
    if landing:
        schema = load_table(LANDING_TABLE)
        fits = row_checker(LANDING_TABLE)
        kept = []
        for row in landing:
            if fits(row):
                kept.append(row)
                continue
            refused = _refused(row, schema.problems(_masked(row)), max_payload)
            admitted.setdefault(DEAD_LETTER_TABLE, []).append(refused)
        admitted[LANDING_TABLE] = kept
    letters = admitted.get(DEAD_LETTER_TABLE)
    if letters:
        schema = load_table(DEAD_LETTER_TABLE)
        fits = row_checker(DEAD_LETTER_TABLE)
        admitted[DEAD_LETTER_TABLE] = [
            row if fits(row) else _repaired(row, schema.problems(_masked(row))) for row in letters
        ]
    return admitted


def _masked(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row whose texts are masked, for messages that quote (and cut) its values."""
    return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in row.items()}


def _refused(row: Mapping[str, Any], problems: list[str], max_payload: int) -> dict[str, Any]:
    raw = orjson.dumps(row, default=str)
    letter = empty_dead_letter_row()
    letter["Timestamp"] = (
        row.get("EventEnqueuedTime") if isinstance(row.get("EventEnqueuedTime"), str) else None
    )
    letter["RecordId"] = str(row.get("RecordId") or record_id(raw))
    letter["Reason"] = RejectReason.BAD_FIELD.value
    letter["Detail"] = mask_secrets("row does not fit its table: " + "; ".join(problems))[:2048]
    letter["SourceFormat"] = str(row.get("SourceFormat") or "")
    masked = mask_secrets(raw.decode("utf-8", errors="replace")).encode()
    letter["RawPayload"] = masked[:max_payload].decode("utf-8", errors="ignore")
    letter["RawEncoding"] = "utf8"
    letter["RawSize"] = len(raw)
    letter["IsRawTruncated"] = len(masked) > max_payload
    for column in ("EventPartitionId", "EventOffset"):
        value = row.get(column)
        letter[column] = value if isinstance(value, str) else ""
    return dict(letter)


def _repaired(row: Any, problems: list[str]) -> Any:
    if not problems:
        return row
    fixed = dict(row)
    for problem in problems:
        column = problem.split("`", 2)[1]
        fixed[column] = "" if column in ("Detail", "RawPayload") else None
    fixed["Detail"] = mask_secrets(f"{fixed.get('Detail') or ''} [emptied: {'; '.join(problems)}]")[
        :2048
    ]
    return fixed
