"""The log-to-eventhub mapping: refused when unsafe or wrong, and read as written when sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import CoreSettings
from ingest.core.flatten.policy import PolicyMapping
from ingest.core.pipeline import Pipeline
from ingest.errors import ConfigError
from ingest.model import EventInput


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[columns]\nUserId = ["AppSubscriptionKey"]', "looks like a secret"),
        ('[columns]\nUserId = ["headers.Authorization"]', "looks like a secret"),
        ('[columns]\nNoSuchColumn = ["x"]', "not a column of ApimLogsLanding"),
        ('[columns]\nRecordId = ["x"]', "set by the pipeline"),
        ("[columns]\nUserId = 3", "must be a list of field paths"),
        ("columns = [", "cannot read"),
    ],
)
def test_bad_mappings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PolicyMapping.load(_mapping(tmp_path, text))


def test_a_custom_mapping_reads_a_custom_shape(tmp_path: Path) -> None:
    path = _mapping(
        tmp_path,
        """
timestamp_formats = ["%d.%m.%Y %H:%M"]
[columns]
Timestamp = ["meta.when"]
CorrelationId = ["meta.rid"]
SubscriptionId = ["caller.team"]
DeploymentName = ["target"]
PromptTokens = ["cost.in"]
CompletionTokens = ["cost.out"]
""",
    )
    pipeline = Pipeline(CoreSettings(policy_mapping_file=path))
    body = (
        b'{"meta": {"When": "30.09.2024 14:05", "rid": "r-1"}, "caller": {"team": "blue"},'
        b' "target": "gpt-4o", "cost": {"in": "10", "out": 5}}'
    )
    row = pipeline.process([EventInput(body)]).rows[0]
    assert (
        row["Timestamp"],
        row["CorrelationId"],
        row["SubscriptionId"],
        row["DeploymentName"],
    ) == (
        "2024-09-30T14:05:00.0000000Z",
        "r-1",
        "blue",
        "gpt-4o",
    )
    assert (
        row["PromptTokens"],
        row["CompletionTokens"],
        row["TotalTokens"],
        row["UsageSource"],
    ) == (10, 5, 15, "policy")


def test_an_object_valued_field_loses_its_secret_members() -> None:
    body = (
        b'{"timestamp": "2024-09-30T12:00:00Z", "deploymentName": "gpt-4o", "promptTokens": 3,'
        b' "subscription": {"name": "team-blue", "key": "0123456789abcdef0123456789abcdef",'
        b' "owner": {"password": "hunter2", "team": "blue"}}}'
    )
    (row,) = Pipeline(CoreSettings()).process([EventInput(body)]).rows
    assert "team-blue" in row["SubscriptionId"]
    assert "0123456789abcdef" not in row["SubscriptionId"]
    assert "hunter2" not in row["SubscriptionId"]
    assert '"team":"blue"' in row["SubscriptionId"]
