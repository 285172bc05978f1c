"""One record -> one row or a reason: dispatch by category and shape, kinds, and URL facts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ingest.config import CaptureMode
from ingest.core.flatten import Flattener
from ingest.core.flatten.finish import kind_from_url, normalize_kind, url_facts
from ingest.model import Rejected, RejectReason
from tests.conftest import golden_settings, load_fixture

FLATTENER = Flattener(golden_settings())


def _json(doc: object) -> str:
    return orjson.dumps(doc).decode()


def _records(case: str) -> list[Any]:
    document = orjson.loads(load_fixture(case))
    if isinstance(document, dict) and "records" in document:
        records: list[Any] = document["records"]
        return records
    return document if isinstance(document, list) else [document]


def _row(record: Any) -> dict[str, Any]:
    outcome = FLATTENER.flatten(record)
    assert not isinstance(outcome, Rejected), outcome
    return dict(outcome)


def _rejected(record: Any, fallback_time: str | None = None) -> Rejected:
    outcome = FLATTENER.flatten(record, fallback_time)
    assert isinstance(outcome, Rejected), outcome
    return outcome


# ---------------------------------------------------------------------------------------------
# Dispatch


def test_gateway_logs_record() -> None:
    row = _row(_records("chat_nonstream")[0])
    assert row["Category"] == "GatewayLogs"
    assert row["SourceFormat"] == "diagnostics"
    assert row["Timestamp"] == "2024-09-30T12:31:31.4465902Z"
    assert row["CorrelationId"] == "3f6d2a9c-1b7e-4c3f-9a51-8e2d7c0b4a11"
    assert row["SubscriptionId"] == "sub-finance-app"
    assert row["ResponseCode"] == 200
    assert row["OperationKind"] == "chat"
    assert row["DeploymentName"] == "gpt-4o"
    assert row["ApiVersion"] == "2024-10-21"
    assert row["ModelName"] == "gpt-4o-2024-08-06"
    assert (row["PromptTokens"], row["CompletionTokens"], row["TotalTokens"]) == (33, 31, 64)
    assert row["UsageSource"] == "response"
    assert row["IsStreaming"] is False


def test_gateway_llm_logs_record() -> None:
    row = _row(_records("llm_logs_stream")[0])
    assert row["Category"] == "GatewayLlmLogs"
    assert row["SourceFormat"] == "diagnostics"
    assert row["SequenceNumber"] == 0
    assert row["RequestId"] == "chatcmpl-AD1zqQk3mW8xN2v0pLr5tY7uI9oPa"
    assert row["DeploymentName"] == "gpt-4o"
    assert row["OperationKind"] == "chat"
    assert row["IsStreaming"] is True
    assert (row["PromptTokens"], row["CompletionTokens"], row["TotalTokens"]) == (26, 17, 43)
    assert row["UsageSource"] == "llm_log"


def test_log_analytics_export_is_read_through_its_type_column() -> None:
    record = _records("log_analytics_export")[0]
    assert "category" not in record
    assert record["Type"] == "ApiManagementGatewayLogs"
    row = _row(record)
    assert row["Category"] == "GatewayLogs"
    assert row["SourceFormat"] == "log_analytics"
    assert row["Timestamp"] == "2024-09-30T12:31:31.4465902Z"
    assert row["DurationMs"] == 846  # TotalTime, as Log Analytics names it
    assert row["DeploymentName"] == "gpt-4o"
    assert row["ModelName"] == "gpt-4o-2024-08-06"
    assert row["TotalTokens"] == 64


@pytest.mark.parametrize("case", ["chat_nonstream", "llm_logs_stream"])
def test_properties_sent_as_json_text_give_the_same_row_as_an_object(case: str) -> None:
    record = _records(case)[0]
    as_text = {**record, "properties": _json(record["properties"])}
    assert _row(as_text) == _row(record)


def test_pascal_case_diagnostic_record_reads_like_camel_case() -> None:
    record = {
        "Time": "2024-09-30T12:00:00.0000000Z",
        "Category": "GatewayLogs",
        "Properties": {"ResponseCode": 201, "ApimSubscriptionId": "team-a", "Method": "GET"},
    }
    row = _row(record)
    assert row["SourceFormat"] == "diagnostics"
    assert (row["ResponseCode"], row["SubscriptionId"], row["Method"]) == (201, "team-a", "GET")
    assert row["OperationKind"] == "other"


def test_unsupported_category_is_rejected_with_its_name() -> None:
    record = _records("mixed_categories")[-1]
    outcome = _rejected(record)
    assert outcome.reason is RejectReason.UNSUPPORTED_CATEGORY
    assert (
        outcome.detail == "category `WebSocketConnectionLogs` is not GatewayLogs or GatewayLlmLogs"
    )
    assert outcome.source_format == "diagnostics"


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        ("just a string", "record is a str, not an object"),
        (42, "record is a int, not an object"),
        ([{"time": "x"}], "record is a list, not an object"),
        (None, "record is a NoneType, not an object"),
    ],
)
def test_non_object_records_are_rejected(record: Any, detail: str) -> None:
    outcome = _rejected(record)
    assert outcome.reason is RejectReason.NOT_A_RECORD
    assert outcome.detail == detail


def test_policy_payload_without_category_uses_the_mapping() -> None:
    payload = orjson.loads(load_fixture("policy_aihub"))
    assert "category" not in payload
    row = _row(payload)
    assert row["Category"] == "Policy"
    assert row["SourceFormat"] == "policy"
    assert row["Timestamp"] == "2024-09-30T12:31:32.0000000Z"
    assert row["SubscriptionId"] == "sub-finance-app"
    assert row["DeploymentName"] == "gpt-4o"
    assert (row["PromptTokens"], row["CompletionTokens"], row["TotalTokens"]) == (33, 31, 64)
    assert row["UsageSource"] == "policy"


def test_policy_payload_with_no_known_field_is_an_unknown_shape() -> None:
    outcome = _rejected({"hello": "world"})
    assert outcome.reason is RejectReason.UNKNOWN_SHAPE
    assert outcome.detail == "no known field in payload with keys: hello"
    assert outcome.source_format == "policy"


def test_bad_timestamp_is_rejected_with_the_value() -> None:
    poison = _records("poison_records")
    outcome = _rejected(poison[3])
    assert outcome.reason is RejectReason.BAD_TIMESTAMP
    assert outcome.detail == "`time` is `yesterday afternoon`, not a time in a known format"
    assert outcome.source_format == "diagnostics"


def test_missing_time_is_rejected() -> None:
    outcome = _rejected(_records("poison_records")[5])
    assert outcome.reason is RejectReason.BAD_TIMESTAMP
    assert outcome.detail == "record has no `time`"


def test_bad_field_is_rejected_with_its_name_and_value() -> None:
    outcome = _rejected(_records("poison_records")[4])
    assert outcome.reason is RejectReason.BAD_FIELD
    assert outcome.detail == "`responseCode` is `two hundred`, not a number"
    assert outcome.source_format == "diagnostics"


def test_the_first_bad_number_is_the_one_reported() -> None:
    record = {
        "time": "2024-09-30T12:00:00.0000000Z",
        "category": "GatewayLogs",
        "properties": {"responseCode": 200, "durationMs": "slow", "backendTime": "later"},
    }
    outcome = _rejected(record)
    assert outcome.reason is RejectReason.BAD_FIELD
    assert outcome.detail == "`durationMs` is `slow`, not a number"


def test_numbers_and_ids_sent_as_text_are_converted() -> None:
    record = {
        "time": "2024-09-30T12:00:00Z",
        "category": "GatewayLogs",
        "properties": {
            "responseCode": "429",
            "backendResponseCode": 429.0,
            "userId": 7,
            "isRequestSuccess": "false",
            "truncated": 0,
        },
    }
    row = _row(record)
    assert row["Timestamp"] == "2024-09-30T12:00:00.0000000Z"
    assert (row["ResponseCode"], row["BackendResponseCode"]) == (429, 429)
    assert row["UserId"] == "7"
    assert row["IsRequestSuccess"] is False
    assert row["IsRecordTruncated"] is False
    assert row["ThrottledBy"] == "backend"


def test_text_capture_off_leaves_text_columns_empty() -> None:
    flattener = Flattener(golden_settings(capture_text=CaptureMode.NONE))
    outcome = flattener.flatten(_records("chat_nonstream")[0])
    assert not isinstance(outcome, Rejected)
    assert (outcome["PromptText"], outcome["CompletionText"]) == ("", "")
    assert outcome["TotalTokens"] == 64


# ---------------------------------------------------------------------------------------------
# Kinds and URLs


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ChatCompletions_Create", "chat"),
        ("Embeddings_Create", "embeddings"),
        ("createResponse", "responses"),
        ("Completions_Create", "completions"),
        ("ImageGenerations_Create", "images"),
        ("Transcriptions_Create", "audio"),
        ("chat.completion.chunk", "chat"),
        ("text_completion", "completions"),
        ("embedding", "embeddings"),
        ("  Responses ", "responses"),
        ("Creates a completion for the chat message", "chat"),
        ("Text to speech", "audio"),
        ("GetWeather", "other"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize_kind(value: str, kind: str) -> None:
    assert normalize_kind(value) == kind
    assert normalize_kind(value) == kind  # the cached answer is the same


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://gw/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", "chat"),
        ("https://gw/openai/deployments/davinci/completions", "completions"),
        ("https://gw/openai/deployments/emb/embeddings/", "embeddings"),
        ("https://gw/openai/v1/responses", "responses"),
        ("https://gw/openai/v1/responses/resp_1/input_items", "responses"),
        ("https://gw/openai/deployments/dalle/images/generations", "images"),
        ("https://gw/openai/deployments/whisper/audio/transcriptions", "audio"),
        ("https://gw/openai/models", ""),
        ("", ""),
    ],
)
def test_kind_from_url(url: str, kind: str) -> None:
    assert kind_from_url(url) == kind


def test_url_facts_of_a_deployment_url() -> None:
    facts = url_facts(
        "https://gw.example/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    )
    assert facts.deployment == "gpt-4o-mini"
    assert facts.api_version == "2024-10-21"
    assert facts.kind == "chat"
    assert facts.model_in_body is False
    assert facts.scrubbed == (
        "https://gw.example/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    )


def test_url_facts_of_a_v1_url() -> None:
    facts = url_facts("https://gw.example/OpenAI/V1/chat/completions")
    assert facts.deployment == ""
    assert facts.api_version == "v1"
    assert facts.kind == "chat"
    assert facts.model_in_body is True
    explicit = url_facts("https://gw.example/openai/v1/responses?api-version=preview")
    assert (explicit.api_version, explicit.kind, explicit.model_in_body) == (
        "preview",
        "responses",
        True,
    )


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://gw.example/openai/responses?api-version=2025-04-01-preview", "responses"),
        ("https://gw.example/anthropic/v1/messages", "chat"),
        ("https://gw.example/models/chat/completions?api-version=2024-05-01-preview", "chat"),
    ],
)
def test_llm_urls_without_a_deployment_take_it_from_the_body(url: str, kind: str) -> None:
    facts = url_facts(url)
    assert (facts.deployment, facts.kind, facts.model_in_body) == ("", kind, True)


def test_urls_that_are_not_llm_calls_do_not_read_the_body_model() -> None:
    assert url_facts("https://gw.example/openai/threads/t1/messages").model_in_body is False
    assert url_facts("https://gw.example/status").model_in_body is False


def test_v1_url_takes_the_deployment_from_the_request_model() -> None:
    record = {
        "time": "2024-09-30T12:00:00.0000000Z",
        "category": "GatewayLogs",
        "properties": {
            "url": "https://gw.example/openai/v1/chat/completions",
            "requestBody": '{"model": "gpt-4o-mini", "messages": []}',
        },
    }
    row = _row(record)
    assert (row["DeploymentName"], row["ApiVersion"], row["OperationKind"]) == (
        "gpt-4o-mini",
        "v1",
        "chat",
    )


def test_secrets_are_scrubbed_from_urls() -> None:
    url = (
        "https://gw.example/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21&subscription-key=0123456789abcdef0123456789abcdef&sig=abc%2Fdef"
    )
    facts = url_facts(url)
    assert facts.scrubbed == (
        "https://gw.example/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21&subscription-key=***&sig=***"
    )
    assert facts.api_version == "2024-10-21"
    record = {
        "time": "2024-09-30T12:00:00.0000000Z",
        "category": "GatewayLogs",
        "properties": {
            "url": url,
            "backendUrl": "https://aoai.example/openai/x?api-key=secret&a=1",
        },
    }
    row = _row(record)
    assert row["Url"] == facts.scrubbed
    assert row["BackendUrl"] == "https://aoai.example/openai/x?api-key=***&a=1"
    assert "0123456789abcdef" not in orjson.dumps(row).decode()


def _gateway(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": "2025-10-06T09:00:00.0000000Z",
        "category": "GatewayLogs",
        "correlationId": "c-1",
        "properties": {"responseCode": 200, **properties},
    }


def test_counts_that_contradict_each_other_are_flagged_not_trusted_silently() -> None:
    def flag(usage: dict[str, Any]) -> str:
        body = _json({"object": "chat.completion", "usage": usage})
        return str(_row(_gateway({"responseBody": body}))["UsageFlag"])

    assert flag({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}) == ""
    assert (
        flag({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 16}) == "contradictory"
    )
    assert flag({"prompt_tokens": -1, "completion_tokens": 5}) == "contradictory"
    cached = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 11},
    }
    assert flag(cached) == "contradictory"
    reasoning = {
        "prompt_tokens": 1,
        "completion_tokens": 5,
        "completion_tokens_details": {"reasoning_tokens": 6},
    }
    assert flag(reasoning) == "contradictory"


def test_a_policy_payload_for_a_claude_model_adds_the_cache_to_its_input() -> None:
    row = _row(
        {
            "timestamp": "2025-10-06T09:00:00Z",
            "model": "claude-sonnet-4-5",
            "usage": {
                "input_tokens": 3,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
                "output_tokens": 9,
            },
        }
    )
    assert (row["PromptTokens"], row["CachedTokens"], row["CacheWriteTokens"]) == (123, 100, 20)
    assert (row["TotalTokens"], row["UsageFlag"], row["UsageSource"]) == (132, "", "policy")


def test_a_gateway_that_rewrites_the_path_takes_the_deployment_from_the_backend_url() -> None:
    row = _row(
        _gateway(
            {
                "url": "https://gw.example/team-a/chat/completions",
                "backendUrl": "https://aoai.example/openai/deployments/gpt-4o/chat/completions",
            }
        )
    )
    assert (row["DeploymentName"], row["OperationKind"]) == ("gpt-4o", "chat")


@pytest.mark.parametrize("properties", ["[1, 2]", "not json", ""])
def test_properties_sent_as_text_that_is_not_an_object_are_a_bad_field(properties: str) -> None:
    rejected = _rejected({**_gateway({}), "properties": properties})
    assert rejected.reason is RejectReason.BAD_FIELD
    assert "`properties`" in rejected.detail


def test_the_diagnostic_path_reads_the_locale_times_the_policy_path_reads() -> None:
    for value, expected in [
        ("1/9/2007 9:41:00 AM", "2007-01-09T09:41:00.0000000Z"),
        ("1/9/2007 9:41:00 PM -05:00", "2007-01-10T02:41:00.0000000Z"),
    ]:
        assert _row({**_gateway({}), "time": value})["Timestamp"] == expected
        policy = _row({"timestamp": value, "subscriptionId": "s", "promptTokens": 1})
        assert policy["Timestamp"] == expected
