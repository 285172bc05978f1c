"""A call is counted once whichever of its records arrive, in any order, and priced per category.

Records are built in the shapes APIM writes (a GatewayLogs record with its bodies, one without,
a GatewayLlmLogs record, a log-to-eventhub usage event that names the call by its response id
only), flattened by the real core and routed by the update policies of the local store; the
expectations are written from the documented rules of LlmCalls().
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.core.pipeline import Pipeline
from ingest.model import EventInput
from ingest.sinks.local import kql as kusto_local
from tests.conftest import golden_settings, run_case

pytestmark = pytest.mark.integration

RANGE = "datetime(2025-10-01), datetime(2025-11-01)"
PIPELINE = Pipeline(golden_settings())


def _sources(n: int) -> dict[str, dict[str, Any]]:
    """The records that may carry call number ``n`` (prompt 100 + n, completion 20 + n)."""
    correlation, response_id = f"0000000{n}-aaaa-4bbb-8ccc-dddddddddddd", f"chatcmpl-call{n}"
    prompt, completion = 100 + n, 20 + n
    time = f"2025-10-06T10:0{n}:00.0000000Z"
    url = "https://gw.example/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    gateway = {
        "time": time,
        "category": "GatewayLogs",
        "correlationId": correlation,
        "properties": {
            "apimSubscriptionId": f"sub-{n}",
            "productId": "ai-team",
            "responseCode": 200,
            "url": url,
            "operationId": "ChatCompletions_Create",
        },
    }
    body = {
        "id": response_id,
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    with_body = {
        **gateway,
        "properties": {**gateway["properties"], "responseBody": orjson.dumps(body).decode()},
    }
    llm_log = {
        "time": time,
        "category": "GatewayLlmLogs",
        "correlationId": correlation,
        "properties": {
            "deploymentName": "gpt-4o",
            "modelName": "gpt-4o-2024-08-06",
            "requestId": response_id,
            "promptTokens": prompt,
            "completionTokens": completion,
        },
    }
    usage_event = {  # ai-hub-gateway style: the response id, no APIM request id
        "id": response_id,
        "timestamp": time,
        "subscriptionId": f"sub-{n}",
        "productName": "ai-team",
        "model": "gpt-4o-2024-08-06",
        "deploymentName": "gpt-4o",
        "promptTokens": prompt,
        "responseTokens": completion,
    }
    return {
        "gateway_with_body": with_body,
        "llm_log": llm_log,
        "usage_event": usage_event,
        "gateway_without_body": gateway,
    }


LINKED = ("gateway_with_body", "llm_log", "usage_event")
"""Sources that carry the response id: any subset of them is joined, whatever the order."""


CURATED = ("ApimRequests", "LlmUsage", "LlmMessages")


def _store(records: list[dict[str, Any]], con: Any = None) -> Any:
    if con is None:
        con = kusto_local.connect()
    for table in CURATED:  # a store reused between examples starts empty
        con.execute(f'DELETE FROM "{table}"')
    events = [EventInput(orjson.dumps(record)) for record in records]
    result = PIPELINE.process(iter(events))
    assert result.counts().reconciles
    assert not result.dead_letters
    kusto_local.insert_rows(con, "ApimLogsLanding", [dict(row) for row in result.rows])
    kusto_local.apply_update_policies(con)
    return con


def _calls(con: Any) -> list[dict[str, Any]]:
    return kusto_local.query(con, f"LlmCalls({RANGE}) | order by CallId asc")


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[int, set[str]]]:
    """Two or three calls, each delivered by a subset of its sources, shuffled, some twice."""
    chosen: dict[int, set[str]] = {}
    records: list[dict[str, Any]] = []
    for n in range(1, draw(st.integers(2, 3)) + 1):
        subset = set(draw(st.sets(st.sampled_from(LINKED), min_size=1)))
        if subset & {"gateway_with_body", "llm_log"} and draw(st.booleans()):
            subset.add("gateway_without_body")  # joined by the APIM request id
        chosen[n] = subset
        sources = _sources(n)
        for name in sorted(subset):
            records.extend([sources[name]] * draw(st.integers(1, 2)))  # at-least-once delivery
    return draw(st.permutations(records)), chosen


STORE = kusto_local.connect()
"""One store for every example (connecting declares every table and function: it takes time)."""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_a_call_is_counted_once_through_any_subset_of_its_sources_in_any_order(
    delivered: tuple[list[dict[str, Any]], dict[int, set[str]]],
) -> None:
    records, chosen = delivered
    calls = _calls(_store(records, STORE))
    assert len(calls) == len(chosen)
    for n, subset in chosen.items():
        (call,) = [c for c in calls if c["PromptTokens"] == 100 + n]
        # The APIM request id names the call when any record carries it, else the response id.
        if subset & {"gateway_with_body", "llm_log", "gateway_without_body"}:
            assert call["CallId"] == f"0000000{n}-aaaa-4bbb-8ccc-dddddddddddd"
        else:
            assert call["CallId"] == f"chatcmpl-call{n}"
        assert call["CompletionTokens"] == 20 + n
        source = "response" if "gateway_with_body" in subset else None
        source = source or ("llm_log" if "llm_log" in subset else "policy")
        assert call["UsageSource"] == source
        attributed = subset - {"llm_log"}
        # No attribution: null locally, '' in ADX (a string column is never null there).
        assert (call["SubscriptionId"] or "") == (f"sub-{n}" if attributed else "")
        assert call["Priced"] is True
        assert call["Cost"] == pytest.approx(((100 + n) * 2.50 + (20 + n) * 10.00) / 1e6)


def test_records_that_share_no_id_cannot_be_joined() -> None:
    # A usage event that logs only the response id and a GatewayLogs record logged without its
    # body have nothing in common: two calls. Log context.RequestId in the policy (mapped to
    # CorrelationId), or enable GatewayLlmLogs, to join them.
    sources = _sources(1)
    calls = _calls(_store([sources["usage_event"], sources["gateway_without_body"]]))
    assert sorted(c["CallId"] for c in calls) == [
        "00000001-aaaa-4bbb-8ccc-dddddddddddd",
        "chatcmpl-call1",
    ]


def test_usage_events_without_any_id_are_calls_of_their_own() -> None:
    first = {**_sources(1)["usage_event"], "id": "NA"}
    second = {**_sources(2)["usage_event"], "id": "NA"}
    calls = _calls(_store([first, second]))
    assert len(calls) == 2
    assert all(c["CorrelationId"] == "" for c in calls)


def _landed(*cases: str) -> Any:
    con = kusto_local.connect()
    rows = [dict(row) for case in cases for row in run_case(case).rows]
    kusto_local.insert_rows(con, "ApimLogsLanding", rows)
    kusto_local.apply_update_policies(con)
    return con


def test_a_claude_call_is_priced_per_token_category() -> None:
    # Its GatewayLogs record (response usage, cache writes included) and its GatewayLlmLogs
    # record (no cache writes) are one call; the response's counts win.
    con = _landed("anthropic_messages", "llm_logs_claude")
    (call,) = kusto_local.query(con, f"LlmCalls({RANGE})")
    assert (call["PromptTokens"], call["CachedTokens"], call["CacheWriteTokens"]) == (
        4621,
        3400,
        1200,
    )
    assert (call["UsageSource"], call["OperationKind"], call["SubscriptionId"]) == (
        "response",
        "chat",
        "sub-research",
    )
    # claude-sonnet-4-5-20250929 is priced by claude-sonnet-4-5 (USD per million tokens).
    assert call["InputCost"] == pytest.approx(21 * 3.00 / 1e6)
    assert call["CachedInputCost"] == pytest.approx(3400 * 0.30 / 1e6)
    assert call["CacheWriteCost"] == pytest.approx(1200 * 3.75 / 1e6)
    assert call["OutputCost"] == pytest.approx(18 * 15.00 / 1e6)
    assert call["Cost"] == pytest.approx((21 * 3.00 + 3400 * 0.30 + 1200 * 3.75 + 18 * 15.00) / 1e6)


def test_every_llm_operation_kind_is_counted_and_unpriced_calls_are_visible() -> None:
    con = _landed("deployment_from_body", "anthropic_stream", "contradictory_usage")
    calls = {c["DeploymentName"]: c for c in kusto_local.query(con, f"LlmCalls({RANGE})")}
    assert set(calls) == {"Mistral-Large-2411", "gpt-4.1", "claude-haiku-4-5", "gpt-4o"}
    assert calls["gpt-4.1"]["OperationKind"] == "responses"
    # Mistral's model is logged in lower case: the price list knows its deployment name.
    mistral = calls["Mistral-Large-2411"]
    assert mistral["Priced"] is True  # priced by its deployment name, which the list knows
    contradictory = calls["gpt-4o"]
    assert contradictory["UsageFlag"] == "contradictory"
    assert contradictory["Cost"] >= 0  # 50 cached of 10 prompt tokens: no negative input cost
    usage = kusto_local.query(
        con,
        f"UsageAndCost({RANGE}) | summarize Calls = sum(Calls),"
        " Unpriced = sum(UnpricedCalls), Flagged = sum(FlaggedCalls)",
    )
    assert usage == [{"Calls": 4, "Unpriced": 0, "Flagged": 1}]
    con.execute("DELETE FROM ModelPrices WHERE Model = 'claude-haiku-4-5'")
    (haiku,) = kusto_local.query(
        con, f"LlmCalls({RANGE}) | where DeploymentName == 'claude-haiku-4-5'"
    )
    assert haiku["Priced"] is False
    assert haiku["Cost"] is None
    unpriced = kusto_local.query(
        con, f"UsageAndCost({RANGE}) | where UnpricedCalls > 0 | project ModelName, UnpricedCalls"
    )
    assert unpriced == [{"ModelName": "claude-haiku-4-5-20251001", "UnpricedCalls": 1}]
