"""schemas/ is the single source of truth: the Python row types must match it exactly."""

from __future__ import annotations

import typing

import pytest

from ingest.model import DeadLetterRow, LandingRow
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, load_table

PYTHON_TYPES = {
    "string": "str",
    "int": "int | None",
    "long": "int | None",
    "bool": "bool | None",
    "datetime": "str | None",
    "real": "float | None",
}
"""How each ADX type appears in a row TypedDict (ADX strings are never null)."""

REQUIRED_NAMES = (
    "CorrelationId",
    "SubscriptionId",
    "ModelName",
    "DeploymentName",
    "IsStreaming",
    "PromptTokens",
    "CompletionTokens",
    "TotalTokens",
    "CachedTokens",
    "ReasoningTokens",
    "UsageSource",
)
"""Column names the landing contract must use exactly."""


@pytest.mark.parametrize(
    ("row_type", "table"), [(LandingRow, LANDING_TABLE), (DeadLetterRow, DEAD_LETTER_TABLE)]
)
def test_row_types_match_the_schema(row_type: type, table: str) -> None:
    schema = load_table(table)
    hints = typing.get_type_hints(row_type)
    assert tuple(hints) == schema.names
    for column in schema.columns:
        shown = str(hints[column.name]).replace("<class '", "").replace("'>", "")
        assert shown == PYTHON_TYPES[column.type], column.name


def test_landing_contract_names() -> None:
    names = load_table(LANDING_TABLE).names
    assert set(REQUIRED_NAMES) <= set(names)
