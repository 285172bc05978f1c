"""kusto/ KQL executed with duckdb-kql over golden landing rows; expectations written by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ingest.kql.scripts import functions, load_statements, update_policies, views
from ingest.schema import load_table
from ingest.sinks.local import kql as kusto_local
from tests.conftest import run_case

pytestmark = pytest.mark.integration

CASES = [
    "llm_logs_stream",
    "chat_stream_no_body",
    "chat_nonstream",
    "throttled_429",
    "policy_aihub",
]


def _landing(*cases: str) -> list[dict[str, Any]]:
    return [dict(row) for case in cases for row in run_case(case).rows]


def _ingest(con: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    kusto_local.insert_rows(con, "ApimLogsLanding", rows)
    return kusto_local.apply_update_policies(con)


RANGE = "datetime(2024-09-01), datetime(2024-11-01)"
"""The time range of every golden case (calls of 2024-09-30)."""


def _calls(con: Any) -> dict[str, dict[str, Any]]:
    return {row["CallId"]: row for row in kusto_local.query(con, f"LlmCalls({RANGE})")}


@pytest.mark.parametrize("table", ["ApimRequests", "LlmUsage", "LlmMessages"])
def test_update_functions_produce_the_target_columns_types_and_order(table: str) -> None:
    con = kusto_local.connect()
    kusto_local.insert_rows(con, "ApimLogsLanding", _landing(*CASES))
    (entry,) = update_policies(load_statements())[table].entries
    relation = kusto_local.duckdb_kql.query(con, str(entry["Query"]))
    schema = load_table(table)
    assert relation.columns == list(schema.names)
    want = [kusto_local.DUCKDB_TYPES[c.type] for c in schema.columns]
    assert [str(t) for t in relation.types] == want


def test_update_policies_route_the_landing_rows() -> None:
    con = kusto_local.connect()
    appended = _ingest(con, _landing(*CASES))
    # GatewayLogs records: chat_stream_no_body 1, chat_nonstream 1, throttled_429 2.
    # LlmUsage: those 4 LLM calls, the token-bearing GatewayLlmLogs header, the policy payload.
    # LlmMessages: records with text (golden settings capture redacted text): 2 LLM chunks,
    # chat_nonstream, and the two 429s' prompts.
    assert appended == {"ApimRequests": 4, "LlmUsage": 6, "LlmMessages": 5}
    assert kusto_local.query(con, "ApimLogsLanding | count") == [{"Count": 0}]  # retention 0
    health = kusto_local.query(
        con,
        "ApimRequests | summarize n = count() by StatusClass, ThrottledBy"
        " | order by StatusClass asc, ThrottledBy asc",
    )
    assert health == [
        {"StatusClass": "2xx", "ThrottledBy": "", "n": 2},
        {"StatusClass": "4xx", "ThrottledBy": "apim", "n": 1},
        {"StatusClass": "4xx", "ThrottledBy": "backend", "n": 1},
    ]
    chunks = kusto_local.query(
        con,
        "LlmMessages | where Category == 'GatewayLlmLogs'"
        " | order by SequenceNumber asc | project SequenceNumber",
    )
    assert chunks == [{"SequenceNumber": 1}, {"SequenceNumber": 2}]


def test_llm_calls_attributes_prices_and_picks_the_exact_source() -> None:
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    calls = _calls(con)
    # Five cases, four calls: the log-to-eventhub payload is the non-streamed chat call again
    # (the same response id), logged by a policy.
    assert len(calls) == 4
    streamed = calls["7a2c9e15-3b4d-4f6a-8e1c-9d0b2a4c6e83"]
    assert streamed == {
        "CallId": "7a2c9e15-3b4d-4f6a-8e1c-9d0b2a4c6e83",
        "CorrelationId": "7a2c9e15-3b4d-4f6a-8e1c-9d0b2a4c6e83",
        "RequestId": "chatcmpl-AD1zqQk3mW8xN2v0pLr5tY7uI9oPa",
        "Timestamp": datetime(2024, 9, 30, 12, 34, 0, 2187),
        "SubscriptionId": "sub-finance-app",
        "ProductId": "ai-finance",
        "UserId": "1",
        "BackendId": "aoai-swedencentral",
        "DeploymentName": "gpt-4o",
        "ModelName": "gpt-4o-2024-08-06",
        "OperationKind": "chat",
        "PromptTokens": 26,
        "CompletionTokens": 17,
        "TotalTokens": 43,
        "CachedTokens": None,
        "ReasoningTokens": None,
        "CacheWriteTokens": None,
        "UsageSource": "llm_log",
        "UsageFlag": "",
        "IsStreaming": True,
        "Priced": True,
        "InputCost": pytest.approx(26 * 2.50 / 1e6),
        "CachedInputCost": 0.0,
        "CacheWriteCost": 0.0,
        "OutputCost": pytest.approx(17 * 10.00 / 1e6),
        "Cost": pytest.approx((26 * 2.50 + 17 * 10.00) / 1e6),
        "Currency": "USD",
    }
    # Tokens from GatewayLlmLogs, attribution from its GatewayLogs partner (which had no body).
    assert (streamed["SubscriptionId"], streamed["ProductId"], streamed["UserId"]) == (
        "sub-finance-app",
        "ai-finance",
        "1",
    )
    assert (streamed["PromptTokens"], streamed["CompletionTokens"], streamed["TotalTokens"]) == (
        26,
        17,
        43,
    )
    assert (streamed["UsageSource"], streamed["ModelName"], streamed["IsStreaming"]) == (
        "llm_log",
        "gpt-4o-2024-08-06",
        True,
    )
    # gpt-4o-2024-08-06: 2.50 USD per million input, 10.00 per million output.
    assert streamed["Cost"] == pytest.approx((26 * 2.50 + 17 * 10.00) / 1e6)
    assert streamed["Currency"] == "USD"
    chat = calls["3f6d2a9c-1b7e-4c3f-9a51-8e2d7c0b4a11"]
    assert chat["RequestId"] == "chatcmpl-AD1xk2pQeZ9Ls0d0mVb3yq1J8fT2a"
    # Tokens from its response body, attribution from its GatewayLogs record (not the payload's
    # product display name).
    assert (chat["UsageSource"], chat["ProductId"], chat["UserId"]) == (
        "response",
        "ai-finance",
        "1",
    )
    assert chat["Cost"] == pytest.approx((33 * 2.50 + 31 * 10.00) / 1e6)
    assert chat["Timestamp"] == datetime(2024, 9, 30, 12, 31, 31, 446590)
    throttled = calls["b2e7d1c4-0a9f-4e61-8d3b-7c5a2f1e9d08"]
    # A 429 used no tokens: it costs nothing (not an unpriced call).
    assert (throttled["UsageSource"], throttled["Cost"], throttled["Priced"]) == ("none", 0.0, True)


def test_records_arriving_apart_and_out_of_order_give_the_same_calls() -> None:
    together = kusto_local.connect()
    _ingest(together, _landing("chat_stream_no_body", "llm_logs_stream"))
    apart = kusto_local.connect()
    _ingest(apart, _landing("llm_logs_stream"))  # the GatewayLlmLogs batch first ...
    assert not _calls(apart)["7a2c9e15-3b4d-4f6a-8e1c-9d0b2a4c6e83"]["SubscriptionId"]
    _ingest(apart, _landing("chat_stream_no_body"))  # ... its GatewayLogs partner in a later batch
    assert _calls(apart) == _calls(together)


def test_a_replayed_batch_changes_no_kpi() -> None:
    con = kusto_local.connect()
    batch = _landing(*CASES)
    _ingest(con, batch)
    kpis = (
        "materialized_view('LlmUsageDedup') | summarize Calls = count(), Tokens = sum(TotalTokens) "
        "by SubscriptionId, UsageSource | order by SubscriptionId asc, UsageSource asc"
    )
    before = (kusto_local.query(con, kpis), _calls(con))
    _ingest(con, batch)
    assert kusto_local.query(con, "LlmUsage | count") == [
        {"Count": 12}
    ]  # the raw table has the duplicates
    assert (kusto_local.query(con, kpis), _calls(con)) == before


ARGUMENTS = {
    "datetime": ["datetime(2024-09-01)", "datetime(2024-11-01)"],
    "timespan": ["3650d"],
    "long": ["3"],
}
"""Values for the required parameters of a function, by type, in parameter order."""


AS_OF = {"BudgetStatus": "BudgetStatus(datetime(2024-10-01))"}
"""Functions of one moment, called at one that follows the golden calls (2024-09-30) in the month
it closes (the ARGUMENTS' first datetime opens the month instead)."""


def _call(name: str, params: str) -> str:
    """A call of a stored function with every required parameter given (defaults kept)."""
    if name in AS_OF:
        return AS_OF[name]
    given: dict[str, int] = {}
    args = []
    for param in filter(None, (p.strip() for p in params.split(","))):
        if "=" in param:
            break
        kind = param.split(":")[1].strip()
        args.append(ARGUMENTS[kind][given.get(kind, 0)])
        given[kind] = given.get(kind, 0) + 1
    return f"{name}({', '.join(args)})"


def test_every_declared_function_runs_locally() -> None:
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    # A team mapping, so that the functions of the reference tables (TeamRanges) have rows too.
    team = {"SubscriptionId": "sub-1", "Team": "Finance", "CostCentre": "CC-1"}
    kusto_local.insert_rows(con, "Teams", [team])
    for name, function in functions(load_statements()).items():
        rows = kusto_local.query(con, _call(name, function.params))
        # The landing table is empty once ingested (retention 0); these cases have no dead letter.
        if function.properties["folder"] != "update" and name != "DeadLetters":
            assert rows, name


def test_calls_without_a_correlation_id_stay_apart() -> None:
    con = kusto_local.connect()
    (record,) = _landing("chat_nonstream")
    # Two records logged without a CorrelationId or a response id (a gateway that sets neither).
    first = {**record, "CorrelationId": "", "RequestId": "", "RecordId": "no-correlation-1"}
    second = {**record, "CorrelationId": "", "RequestId": "", "RecordId": "no-correlation-2"}
    second["Timestamp"] = "2024-09-30T12:40:00.0000000Z"
    _ingest(con, [first, second])
    calls = _calls(con)
    assert sorted(calls) == ["no-correlation-1", "no-correlation-2"]
    for call in calls.values():
        assert (call["CorrelationId"], call["TotalTokens"], call["UsageSource"]) == (
            "",
            64,
            "response",
        )
        assert call["Cost"] == pytest.approx((33 * 2.50 + 31 * 10.00) / 1e6)
    usage = kusto_local.query(con, f"UsageAndCost({RANGE})")
    assert [(r["Calls"], r["TotalTokens"]) for r in usage] == [(2, 128)]
    texts = kusto_local.query(con, f"LlmConversation({RANGE}) | order by CallId asc")
    assert [r["CallId"] for r in texts] == ["no-correlation-1", "no-correlation-2"]
    assert texts[0]["PromptText"] == texts[1]["PromptText"] != ""


def test_a_call_logged_twice_gets_its_text_once_from_the_llm_log_chunks() -> None:
    con = kusto_local.connect()
    (gateway,) = _landing("chat_nonstream")
    chunks = _landing("llm_logs_stream")
    # The same call logged by GatewayLogs (whole bodies) and GatewayLlmLogs (chunks).
    gateway = {**gateway, "CorrelationId": chunks[0]["CorrelationId"]}
    _ingest(con, [gateway, *chunks])
    (conversation,) = kusto_local.query(con, f"LlmConversation({RANGE})")
    assert conversation["CallId"] == chunks[0]["CorrelationId"]
    assert conversation["PromptText"] == (
        "system: You are a helpful assistant.\nuser: Write a haiku about quotas."
    )
    assert conversation["CompletionText"] == (
        "assistant: Tokens trickle out / the meter counts every drop / budgets breathe again"
    )
    # The call starts at its first record, the GatewayLogs one.
    assert conversation["Timestamp"] == datetime(2024, 9, 30, 12, 31, 31, 446590)


def test_llm_calls_reads_a_margin_around_the_range_and_keeps_calls_started_in_it() -> None:
    con = kusto_local.connect()
    gateway = _landing("chat_stream_no_body")  # the call's GatewayLogs record, at 12:34:00
    chunks = _landing("llm_logs_stream")  # its GatewayLlmLogs records, logged 10 minutes later
    for chunk in chunks:
        chunk["Timestamp"] = "2024-09-30T12:44:00.0000000Z"
    _ingest(con, gateway + chunks)
    call = "| where CallId == '7a2c9e15-3b4d-4f6a-8e1c-9d0b2a4c6e83'"

    def calls(start: str, end: str, margin: str = "") -> list[dict[str, Any]]:
        margin = f", {margin}" if margin else ""
        return kusto_local.query(
            con, f"LlmCalls(datetime({start}), datetime({end}){margin}) {call}"
        )

    # A range ending before the GatewayLlmLogs records: the call is whole all the same.
    (whole,) = calls("2024-09-30 12:00", "2024-09-30 12:35")
    assert (whole["SubscriptionId"], whole["TotalTokens"], whole["UsageSource"]) == (
        "sub-finance-app",
        43,
        "llm_log",
    )
    assert whole["Timestamp"] == datetime(2024, 9, 30, 12, 34, 0, 2187)
    # A range starting after the call started: the call belongs to the earlier range only.
    assert calls("2024-09-30 12:35", "2024-09-30 13:00") == []
    # Without a margin the call is cut: no tokens in one range, a second call in the other.
    (cut,) = calls("2024-09-30 12:00", "2024-09-30 12:35", "0s")
    assert cut["UsageSource"] == "none"
    (partial,) = calls("2024-09-30 12:35", "2024-09-30 13:00", "0s")
    assert partial["SubscriptionId"] is None


def test_usage_and_cost_per_subscription_product_and_model() -> None:
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    rows = kusto_local.query(con, f"UsageAndCost({RANGE}) | where ModelName == 'gpt-4o-2024-08-06'")
    by_product = {r["ProductId"]: r for r in rows}
    # ai-finance: the non-streamed chat (33 + 31) and the streamed call (26 + 17, from its LLM log).
    finance = by_product["ai-finance"]
    assert (
        finance["Calls"],
        finance["PromptTokens"],
        finance["CompletionTokens"],
        finance["TotalTokens"],
    ) == (2, 59, 48, 107)
    assert finance["Cost"] == pytest.approx((59 * 2.50 + 48 * 10.00) / 1e6)
    # The log-to-eventhub payload (product AI-Finance) is the same chat call: not counted again.
    assert "AI-Finance" not in by_product


def test_throttling_splits_apim_and_backend() -> None:
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    rows = kusto_local.query(
        con, f"Throttling({RANGE}) | where Throttled > 0 | order by BackendId asc"
    )
    assert [
        (r["BackendId"], r["Throttled"], r["ThrottledByApim"], r["ThrottledByBackend"])
        for r in rows
    ] == [
        ("", 1, 1, 0),
        ("aoai-swedencentral", 1, 0, 1),
    ]


def test_latency_percentiles_local_equivalent() -> None:
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    rows = {r["BackendId"]: r for r in kusto_local.query(con, f"Latency({RANGE})")}
    # aoai-swedencentral served durations 5130 (stream), 846 (chat) and 41 (backend 429).
    assert rows["aoai-swedencentral"]["Requests"] == 3
    assert rows["aoai-swedencentral"]["P50Ms"] == 846


def test_top_callers() -> None:
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    rows = kusto_local.query(con, f"TopCallers({RANGE}, 1)")
    assert [(r["SubscriptionId"], r["ProductId"], r["TotalTokens"]) for r in rows] == [
        ("sub-finance-app", "ai-finance", 107)
    ]


def test_conversation_reassembles_chunks_in_sequence_order() -> None:
    con = kusto_local.connect()
    rows = _landing("llm_logs_stream")
    _ingest(con, list(reversed(rows)))  # chunks arrive in reverse order
    (conversation,) = kusto_local.query(con, f"LlmConversation({RANGE})")
    assert (
        conversation["PromptText"]
        == "system: You are a helpful assistant.\nuser: Write a haiku about quotas."
    )
    assert conversation["CompletionText"] == (
        "assistant: Tokens trickle out / the meter counts every drop / budgets breathe again"
    )


def test_prompt_usage_answers_the_origin_query_for_chat_calls() -> None:
    con = kusto_local.connect()
    _ingest(
        con, _landing("chat_nonstream", "responses_api", "llm_logs_stream", "chat_stream_no_body")
    )
    rows = kusto_local.query(con, "PromptUsage(datetime(2024-01-01), datetime(2026-01-01))")
    assert [r["CorrelationId"] for r in rows] == [
        "3f6d2a9c-1b7e-4c3f-9a51-8e2d7c0b4a11",
        "7a2c9e15-3b4d-4f6a-8e1c-9d0b2a4c6e83",
    ]  # the Responses API call is not a chat call
    first = rows[0]
    assert (first["ModelName"], first["PromptTokens"], first["CompletionTokens"]) == (
        "gpt-4o-2024-08-06",
        33,
        31,
    )
    prompt = "system: You are a helpful assistant.\n"
    prompt += "user: Summarise our Q3 travel policy in two sentences."
    assert first["Prompt"] == prompt[:100]
    completion = (
        "Employees must book economy class for flights under six hours and use approved vendors. "
        "Expenses require receipts and manager approval within 30 days."
    )
    assert first["Completion"] == completion[:100]


def test_local_overrides_return_the_production_columns() -> None:
    from ingest.kql.validate import result_columns

    calls = {
        "Latency": f"Latency({RANGE})",
        "TopCallers": f"TopCallers({RANGE}, 3)",
        "LlmConversation": f"LlmConversation({RANGE})",
        "ViewHealth": "ViewHealth(3650d)",
    }
    assert set(calls) == set(kusto_local.local_overrides())
    production = result_columns(list(calls.values()))
    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    for call in calls.values():
        local = kusto_local.duckdb_kql.query(con, kusto_local.local_kql(call)).columns
        assert production[call] is not None, call
        assert local == [name for name, _ in production[call]], call


def test_local_dedup_views_return_the_production_columns() -> None:
    from ingest.kql.validate import result_columns

    views = kusto_local.local_views()
    production = _view_queries()
    assert set(views) == {"LlmUsageDedup", "ApimRequestsDedup"}
    bodies = [production[name] for name in views] + [v.query for v in views.values()]
    columns = result_columns(bodies)
    con = kusto_local.connect()
    for name, view in views.items():
        body = view.query
        # Same names and types as take_any(*) (the language service's view), in another order.
        expected = dict(columns[production[name]] or [])
        assert expected
        assert dict(columns[body] or []) == expected, name
        local = con.execute(f'SELECT * FROM "{name}" LIMIT 0').description
        assert {d[0] for d in local} == set(expected), name


def test_every_dashboard_tile_runs_on_the_local_store() -> None:
    from ingest.kql.dashboard import TILES, with_time_range

    con = kusto_local.connect()
    _ingest(con, _landing(*CASES))
    con.execute("DELETE FROM IngestDeadLetters")
    dead = run_case("poison_records").dead_letters
    for row in dead:
        row["Timestamp"] = "2024-09-30T13:00:00.0000000Z"
    kusto_local.insert_rows(con, "IngestDeadLetters", dead)
    # A range ending at the end of the golden calls' month: the finance tiles show that month.
    results = {
        tile.title: kusto_local.query(
            con, with_time_range(tile.query, "datetime(2024-09-01)", "datetime(2024-10-01)")
        )
        for tile in TILES
    }
    assert all(results.values()), [title for title, rows in results.items() if not rows]
    assert {r["Reason"]: r["DeadLetters"] for r in results["Dead letters by reason"]} == {
        "not_a_record": 2,
        "bad_timestamp": 2,
        "bad_field": 1,
        "unknown_shape": 2,
    }


def _view_queries() -> dict[str, str]:
    return {name: view.query for name, view in views(load_statements()).items()}


def test_materialized_view_queries_run_locally_and_aggregate_the_dedup_rows() -> None:
    views = _view_queries()
    assert set(views) == {
        "LlmUsageDedup",
        "ApimRequestsDedup",
        "LlmUsageHourly",
        "LlmUsageDaily",
        "RequestHealthHourly",
    }
    con = kusto_local.connect()
    batch = _landing(*CASES)
    _ingest(con, batch)
    _ingest(con, batch)  # a replay: the hourly view must not change
    hourly = kusto_local.query(
        con,
        views["LlmUsageHourly"]
        + " | where SubscriptionId == 'sub-finance-app' and Category == 'GatewayLogs'",
    )
    # Four GatewayLogs LLM calls of sub-finance-app, all in the 12:00 hour of 2024-09-30; only the
    # non-streamed chat has counts (33 + 31), the stream had no body and the 429s none. The APIM 429
    # never reached a backend, so it has a group of its own. sum() over no values is 0, as in ADX.
    groups = {(r["UsageSource"], r["BackendId"]): (r["Calls"], r["TotalTokens"]) for r in hourly}
    assert groups == {
        ("response", "aoai-swedencentral"): (1, 64),
        ("none", "aoai-swedencentral"): (2, 0),
        ("none", ""): (1, 0),
    }
    assert {r["Timestamp"] for r in hourly} == {datetime(2024, 9, 30, 12)}
    daily = kusto_local.query(
        con, views["LlmUsageDaily"] + " | summarize Calls = sum(Calls), Tokens = sum(TotalTokens)"
    )
    # 6 LlmUsage rows (4 GatewayLogs, 1 GatewayLlmLogs header, 1 policy); tokens 64 + 43 + 64.
    assert daily == [{"Calls": 6, "Tokens": 171}]


def test_aggregation_views_are_queried_by_name_as_in_adx() -> None:
    from ingest.kql.validate import result_columns

    built = kusto_local.aggregation_views()
    assert set(built) == {"LlmUsageHourly", "LlmUsageDaily"}
    assert set(_view_queries()) == {
        *built,
        *kusto_local.local_views(),
        *kusto_local.NOT_BUILT_LOCALLY,
    }
    con = kusto_local.connect()
    batch = _landing(*CASES)
    _ingest(con, batch)
    _ingest(con, batch)  # a replay: the views count each call once
    columns = result_columns([view.query for view in built.values()])
    for name, view in built.items():
        by_name = kusto_local.query(con, name)
        by_query = kusto_local.query(con, view.query)

        def key(row: dict[str, Any]) -> list[str]:
            return [str(value) for value in row.values()]

        assert sorted(by_name, key=key) == sorted(by_query, key=key), name
        assert sum(row["Calls"] for row in by_name) == 6, name  # the 6 LlmUsage rows, once
        local = con.execute(f'SELECT * FROM "{name}" LIMIT 0').description
        assert [d[0] for d in local] == [c for c, _ in columns[view.query] or []], name
    with pytest.raises(Exception, match="RequestHealthHourly"):
        kusto_local.query(con, "RequestHealthHourly | take 1")


def test_dead_letters_count_records_across_events_and_replays() -> None:
    from ingest.commands.report import kpis
    from ingest.core.pipeline import Pipeline
    from ingest.model import EventInput, EventMeta

    # Five events, seven bad records with the same payload: seven dead letters, not one per
    # payload (a dead letter's id is its event's body and its place in it).
    bad = b'{"category": "GatewayLogs", "properties": {}}'
    events = []
    for event, count in enumerate([2, 2, 1, 1, 1]):
        body = b'{"records": [' + b",".join([bad] * count) + b', {"event": %d}]}' % event
        meta = EventMeta("0", event, str(event), "2024-09-30T12:00:00.0000000Z")
        events.append(EventInput(body, meta))
    con = kusto_local.connect()

    class Store:
        def query(self, text: str) -> list[dict[str, Any]]:
            return kusto_local.query(con, text)

    total = (
        "DeadLetters(datetime(2024-09-01), datetime(2024-11-01)) | summarize N = sum(DeadLetters)"
    )
    for _ in range(2):  # the same batch again (at-least-once delivery) changes no count
        letters = Pipeline().process(events).dead_letters
        assert len(letters) == 7 + 5  # each event's `{"event": n}` is not a record either
        kusto_local.insert_rows(con, "IngestDeadLetters", [dict(row) for row in letters])
        assert kusto_local.query(con, total) == [{"N": 12}]
        report = kpis(Store())["data"]["dead_letters"]
        assert sum(row["DeadLetters"] for row in report) == 12
