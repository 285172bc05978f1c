"""Chargeback, BudgetStatus and CapacityUse (kusto/62_finance.kql) run on the local store.

The chargeback must reconcile with UsageAndCost() for the same period: simulated traffic replayed
through the batch path across a month's end, plus calls with cache reads and writes and calls no
price covers. Budget status and capacity use are checked on calls written by hand, with what they
must say worked out from the sample price list (gpt-4o: 2.50 USD per million input tokens, 10.00
per million output tokens).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.commands.reference import REFERENCES, local_rows, read_csv
from ingest.commands.replay import replay
from ingest.commands.simulate import simulate
from ingest.config import CoreSettings
from ingest.kql.scripts import KUSTO_DIR
from ingest.sinks.local import kql
from ingest.sinks.local.store import LocalSink
from tests.conftest import teams_during

pytestmark = pytest.mark.integration

NANO = 1_000_000_000
SAMPLES = KUSTO_DIR / "reference"


def _call(i: int, at: str, subscription: str, model: str, **kw: Any) -> dict[str, Any]:
    """One LLM call as its GatewayLogs record lands in LlmUsage."""
    return {
        "Timestamp": at,
        "RecordId": f"r{i}",
        "CorrelationId": f"c{i}",
        "Category": "GatewayLogs",
        "SubscriptionId": subscription,
        "ProductId": f"p-{subscription}",
        "BackendId": "aoai-eastus",
        "DeploymentName": model,
        "ModelName": model,
        "PromptTokens": 0,
        "CompletionTokens": 0,
        "UsageSource": "response",
        **kw,
    }


def _load(sink: LocalSink, kind: str, path: Path) -> None:
    reference = REFERENCES[kind]
    sink.replace(reference.table, local_rows(reference, read_csv(reference, path)))


def _csv(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _store(factory: pytest.TempPathFactory, name: str, calls: list[dict[str, Any]]) -> LocalSink:
    """A new local store in a folder of its own, holding ``calls`` in LlmUsage."""
    sink = LocalSink(factory.mktemp(name) / "store.duckdb")
    sink.flush()
    kql.insert_rows(sink.con, "LlmUsage", calls)
    return sink


# ---------------------------------------------------------------------------------------------
# Chargeback


@pytest.fixture(scope="module")
def billed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSink]:
    """Eight simulated hours across the end of September 2025, and calls with cache tokens."""
    folder = tmp_path_factory.mktemp("chargeback")
    events = folder / "events.jsonl"
    bodies, _ = simulate(3, dt.datetime(2025, 9, 30, 20, tzinfo=dt.UTC), 8.0, 6.0)
    events.write_bytes(b"\n".join(bodies) + b"\n")
    sink = LocalSink(folder / "store.duckdb")
    replay([str(events)], sink, CoreSettings(), workers=0, batch_events=100)
    sink.flush()
    kql.insert_rows(
        sink.con,
        "LlmUsage",
        [
            # Claude with cache reads and writes, on each side of the month's end (a product of
        # their own: the simulated traffic has Claude calls of this subscription too)
            _call(1, "2025-09-30T23:59:59Z", "sub-finance-app", "claude-sonnet-4-5",
                  PromptTokens=12_345, CompletionTokens=678, CachedTokens=9_000,
                  CacheWriteTokens=1_111),
            _call(2, "2025-10-01T00:00:00Z", "sub-finance-app", "claude-sonnet-4-5-20250929",
                  PromptTokens=50_000, CompletionTokens=1_001, CachedTokens=40_000,
                  CacheWriteTokens=7),
            _call(3, "2025-10-01T03:00:00Z", "sub-unmapped", "claude-haiku-4-5", PromptTokens=333,
                  CompletionTokens=77, CachedTokens=100, CacheWriteTokens=200),
            # no price covers it: tokens without a cost
            _call(4, "2025-10-01T04:00:00Z", "sub-unmapped", "mystery-model", PromptTokens=1_000,
                  CompletionTokens=10),
        ],
    )  # fmt: skip
    _load(sink, "teams", SAMPLES / "teams.sample.csv")
    yield sink
    sink.close()


def _nanos(value: float | None) -> int:
    return round((value or 0) * NANO)


KEY = ("SubscriptionId", "ProductId", "ModelName", "Currency")


@pytest.mark.parametrize("month", ["2025-09-01", "2025-10-01"])
def test_chargeback_reconciles_with_usage_and_cost_line_by_line(
    billed: LocalSink, month: str
) -> None:
    start = dt.datetime.fromisoformat(month)
    end = start.replace(month=start.month + 1)
    bill = billed.query(f"Chargeback(datetime({start:%Y-%m-%d}))")
    usage = billed.query(f"UsageAndCost(datetime({start:%Y-%m-%d}), datetime({end:%Y-%m-%d}))")
    assert len(bill) == len(usage) > 3
    by_key = {tuple(u[k] for k in KEY): u for u in usage}
    for line in bill:
        u = by_key[tuple(line[k] for k in KEY)]
        assert line["Month"] == start
        assert (line["Calls"], line["UnpricedCalls"]) == (u["Calls"], u["UnpricedCalls"])
        assert line["CachedInputTokens"] == (u["CachedTokens"] or 0)
        assert line["CacheWriteTokens"] == (u["CacheWriteTokens"] or 0)
        assert line["OutputTokens"] == (u["CompletionTokens"] or 0)
        prompt = line["InputTokens"] + line["CachedInputTokens"] + line["CacheWriteTokens"]
        assert prompt == (u["PromptTokens"] or 0)
        # the same cost to the nano-unit, and the categories add up to it exactly
        assert _nanos(line["Cost"]) == _nanos(u["Cost"])
        categories = ("InputCost", "CachedInputCost", "CacheWriteCost", "OutputCost")
        assert sum(_nanos(line[c]) for c in categories) == _nanos(line["Cost"])
    total = sum(_nanos(line["Cost"]) for line in bill)
    assert total == sum(_nanos(u["Cost"]) for u in usage) > 0


def test_the_months_of_a_bill_hold_every_call_once(billed: LocalSink) -> None:
    both = billed.query(
        "UsageAndCost(datetime(2025-09-01), datetime(2025-11-01))"
        " | summarize Calls = sum(Calls), Tokens = sum(PromptTokens) + sum(CompletionTokens)"
    )
    months = billed.query(
        "union Chargeback(datetime(2025-09-15)), Chargeback(datetime(2025-10-31 23:59))"
        " | summarize Calls = sum(Calls), Tokens = sum(InputTokens) + sum(CachedInputTokens)"
        " + sum(CacheWriteTokens) + sum(OutputTokens), Months = dcount(Month)"
    )
    assert months[0]["Months"] == 2
    assert (months[0]["Calls"], months[0]["Tokens"]) == (both[0]["Calls"], both[0]["Tokens"])


def test_chargeback_names_teams_and_keeps_unmapped_subscriptions(billed: LocalSink) -> None:
    teams = {
        (r["SubscriptionId"], r["Team"], r["CostCentre"])
        for r in billed.query("Chargeback(datetime(2025-10-01))")
    }
    rows = read_csv(REFERENCES["teams"], SAMPLES / "teams.sample.csv")
    october = (dt.datetime(2025, 10, 1), dt.datetime(2025, 11, 1))
    mapped = {  # the sample's rows in effect in October (not its move of November)
        (r["SubscriptionId"], r["Team"], r["CostCentre"])
        for r in rows
        if r["Team"] in teams_during(rows, r["SubscriptionId"], *october)
    }
    assert len(mapped) < len(rows)
    assert mapped <= teams  # two subscriptions of Corporate Services, each on its own lines
    unmapped = {t for t in teams if t[0] not in {m[0] for m in mapped}}
    assert unmapped >= {("sub-unmapped", "sub-unmapped", ""), ("sub-data-science",) * 2 + ("",)}
    assert all(team == subscription and not centre for subscription, team, centre in unmapped)


def test_chargeback_prices_each_token_category(billed: LocalSink) -> None:
    (sonnet,) = billed.query(
        "Chargeback(datetime(2025-10-01)) | where SubscriptionId == 'sub-finance-app'"
        " and ProductId == 'p-sub-finance-app' and ModelName == 'claude-sonnet-4-5-20250929'"
    )
    # claude-sonnet-4-5 (by the model without its version date): 3.00 input, 0.30 cache reads,
    # 3.75 cache writes, 15.00 output, per million tokens
    assert (sonnet["InputTokens"], sonnet["CachedInputTokens"], sonnet["CacheWriteTokens"]) == (
        50_000 - 40_000 - 7,
        40_000,
        7,
    )
    assert _nanos(sonnet["InputCost"]) == (50_000 - 40_000 - 7) * 3_000
    assert _nanos(sonnet["CachedInputCost"]) == 40_000 * 300
    assert _nanos(sonnet["CacheWriteCost"]) == 7 * 3_750
    assert _nanos(sonnet["OutputCost"]) == 1_001 * 15_000
    (unpriced,) = billed.query(
        "Chargeback(datetime(2025-10-01)) | where ModelName == 'mystery-model'"
    )
    assert (unpriced["Calls"], unpriced["UnpricedCalls"], unpriced["InputTokens"]) == (1, 1, 1_000)
    assert unpriced["Currency"] in ("", None)


# ---------------------------------------------------------------------------------------------
# Teams over time: a subscription moved to another team

OLD_TEAM_CALLS = """
let teams = Teams
    | where isnotempty(SubscriptionId)
    | summarize arg_max(Team, CostCentre) by SubscriptionId
    | project SubscriptionId, MappedTeam = Team, MappedCostCentre = CostCentre;
LlmCalls(datetime(2025-09-01), datetime(2025-11-01))
| join kind=leftouter teams on SubscriptionId
| extend Team = iff(isempty(MappedTeam), SubscriptionId, MappedTeam),
    CostCentre = iff(isempty(MappedTeam), "", MappedCostCentre)
| project-away SubscriptionId1, MappedTeam, MappedCostCentre
"""
"""TeamCalls as it was before Teams had EffectiveFrom (one team per subscription, for ever)."""


def test_a_file_without_effective_from_bills_exactly_as_before(
    billed: LocalSink, tmp_path: Path
) -> None:
    undated = "SubscriptionId,Team,CostCentre\n" + "".join(
        f"{r['SubscriptionId']},{r['Team']},{r['CostCentre']}\n"
        for r in read_csv(REFERENCES["teams"], SAMPLES / "teams.sample.csv")
        if r["EffectiveFrom"] is None
    )
    october = "Chargeback(datetime(2025-10-01))"
    sample_bill = billed.query(october)
    try:
        _load(billed, "teams", _csv(tmp_path, "undated.csv", undated))
        now = billed.query("TeamCalls(datetime(2025-09-01), datetime(2025-11-01))")
        before = billed.query(OLD_TEAM_CALLS)
        assert len(now) == len(before) > 100
        assert sorted(now, key=str) == sorted(before, key=str)
        assert billed.query(october) == sample_bill  # the sample's move is in November
    finally:
        _load(billed, "teams", SAMPLES / "teams.sample.csv")


MOVES = (
    "SubscriptionId,Team,CostCentre,EffectiveFrom\n"
    "sub-m,Alpha,CC-1,\n"  # from the beginning
    "sub-m,Beta,CC-2,2025-10-15T12:00:00\n"  # moved mid-October, at noon
    "sub-late,Gamma,CC-3,2025-10-10\n"  # its earliest row: also its calls before it
    "sub-late,Delta,CC-4,2025-11-01\n"
)
BEFORE_THE_MOVES = "SubscriptionId,Team,CostCentre\nsub-m,Alpha,CC-1\nsub-late,Gamma,CC-3\n"


@pytest.fixture(scope="module")
def moves(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSink]:
    sink = _store(
        tmp_path_factory,
        "moves",
        [
            _spend("sub-m", "2025-09-20T10:00:00Z", 1, 1.0),  # Alpha: the month closed before
            _spend("sub-m", "2025-10-01T00:00:00Z", 2, 2.0),  # Alpha
            _spend("sub-m", "2025-10-15T11:59:59Z", 3, 3.0, 1.0),  # Alpha: a second before
            _spend("sub-m", "2025-10-15T12:00:00Z", 4, 4.0),  # Beta: at the move
            _spend("sub-m", "2025-10-20T00:00:00Z", 5, 5.0, 0.5),  # Beta
            _spend("sub-late", "2025-10-05T00:00:00Z", 6, 6.0),  # Gamma: before its first row
            _spend("sub-late", "2025-10-12T00:00:00Z", 7, 7.0),  # Gamma
            _spend("sub-late", "2025-11-02T00:00:00Z", 8, 8.0),  # Delta
            _spend("sub-none", "2025-10-03T00:00:00Z", 9, 9.0),  # not in Teams: its own team
            _call(10, "2025-10-16T00:00:00Z", "sub-m", "mystery-model", PromptTokens=10),  # Beta
        ],
    )
    yield sink
    sink.close()


def _lines(sink: LocalSink, month: str) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(team, cost centre, subscription): (calls, cost in nano-units) of the month's bill."""
    lines: dict[tuple[str, str, str], tuple[int, int]] = {}
    for line in sink.query(f"Chargeback(datetime({month}))"):
        key = (line["Team"], line["CostCentre"], line["SubscriptionId"])
        calls, cost = lines.get(key, (0, 0))
        lines[key] = (calls + line["Calls"], cost + _nanos(line["Cost"]))
    return lines


def _usd(usd: float) -> int:
    return round(usd * NANO)


def test_a_move_bills_each_call_to_the_team_of_its_time(moves: LocalSink, tmp_path: Path) -> None:
    _load(moves, "teams", _csv(tmp_path, "before.csv", BEFORE_THE_MOVES))
    september = _lines(moves, "2025-09-01")
    assert september == {("Alpha", "CC-1", "sub-m"): (1, _usd(1.0))}
    _load(moves, "teams", _csv(tmp_path, "moves.csv", MOVES))
    assert _lines(moves, "2025-09-01") == september  # the closed month keeps its team
    assert _lines(moves, "2025-10-01") == {
        ("Alpha", "CC-1", "sub-m"): (2, _usd(2.0 + 3.0 + 1.0)),
        ("Beta", "CC-2", "sub-m"): (3, _usd(4.0 + 5.0 + 0.5)),  # and the unpriced call
        ("Gamma", "CC-3", "sub-late"): (2, _usd(6.0 + 7.0)),
        ("sub-none", "", "sub-none"): (1, _usd(9.0)),
    }
    assert _lines(moves, "2025-11-01") == {("Delta", "CC-4", "sub-late"): (1, _usd(8.0))}
    for month in ("2025-09-01", "2025-10-01", "2025-11-01"):
        _reconciles(moves, month)


def _reconciles(sink: LocalSink, month: str) -> None:
    """The month's bill holds every call of UsageAndCost() once, and exactly its cost."""
    (usage,) = sink.query(
        f"UsageAndCost(startofmonth(datetime({month})), startofmonth(datetime({month}), 1))"
        " | summarize Calls = sum(Calls), CostNanos = sum(tolong(round(Cost * 1000000000.0)))"
    )
    lines = _lines(sink, month).values()
    assert sum(calls for calls, _ in lines) == usage["Calls"], month
    assert sum(cost for _, cost in lines) == usage["CostNanos"], month


def test_duplicate_team_rows_never_bill_a_call_twice(moves: LocalSink) -> None:
    reference = REFERENCES["teams"]
    rows = [  # as rows appended to Teams by hand could be: the loader refuses them
        ("sub-m", "Alpha", "CC-1", None),
        ("sub-m", "Alpha", "CC-1", None),  # the same row twice
        ("sub-m", "Beta", "CC-2", dt.datetime(2025, 10, 15, 12)),
        ("sub-m", "Zeta", "CC-9", dt.datetime(2025, 10, 15, 12)),  # the same key, another team
        ("sub-late", "Gamma", "CC-3", None),
        ("sub-late", "Gamma", "CC-3", None),
    ]
    names = ("SubscriptionId", "Team", "CostCentre", "EffectiveFrom")
    moves.replace(
        reference.table, local_rows(reference, [dict(zip(names, r, strict=True)) for r in rows])
    )
    calls = moves.query(
        "TeamCalls(datetime(2025-09-01), datetime(2025-12-01)) | project CorrelationId, Team"
    )
    assert sorted(c["CorrelationId"] for c in calls) == sorted(f"c{i}" for i in range(1, 11))
    teams = {c["CorrelationId"]: c["Team"] for c in calls}
    assert {teams[c] for c in ("c1", "c2", "c3")} == {"Alpha"}
    assert teams["c4"] in ("Beta", "Zeta")  # one of the two rows (arg_max: the larger Team)
    assert {teams[c] for c in ("c4", "c5", "c10")} == {teams["c4"]}
    assert {teams[c] for c in ("c6", "c7", "c8")} == {"Gamma"}
    for month in ("2025-09-01", "2025-10-01", "2025-11-01"):
        _reconciles(moves, month)


# ---------------------------------------------------------------------------------------------
# Budgets

USD_PER_MILLION_OUT = 10.0
USD_PER_MILLION_IN = 2.5


def _spend(
    subscription: str, at: str, i: int, usd_out: float, usd_in: float = 0.0
) -> dict[str, Any]:
    """A gpt-4o call costing ``usd_out`` in output and ``usd_in`` in input."""
    return _call(
        i,
        at,
        subscription,
        "gpt-4o-2024-08-06",
        CompletionTokens=round(usd_out / USD_PER_MILLION_OUT * 1_000_000),
        PromptTokens=round(usd_in / USD_PER_MILLION_IN * 1_000_000),
    )


@pytest.fixture(scope="module")
def budgets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSink]:
    sink = _store(
        tmp_path_factory,
        "budgets",
        [
            _spend("sub-a1", "2025-10-02T10:00:00Z", 1, 20.0),  # Alpha: 25 in two subscriptions
            _spend("sub-a2", "2025-10-05T10:00:00Z", 2, 0.0, 5.0),
            _spend("sub-b", "2025-10-03T00:00:00Z", 3, 10.0, 5.0),  # Beta: 15
            _spend("sub-c", "2025-10-04T00:00:00Z", 4, 10.0, 2.0),  # Gamma: 12
            _spend("sub-d", "2025-10-06T00:00:00Z", 5, 20.0),  # sub-d (unmapped): 20
            _spend("sub-e", "2025-10-07T00:00:00Z", 6, 0.0, 5.0),  # sub-e (unmapped): 5
            _spend("sub-a1", "2025-10-12T00:00:00Z", 7, 50.0),  # after asOf
            _spend("sub-a1", "2025-09-30T23:00:00Z", 8, 50.0),  # the month before
            _call(9, "2025-10-08T00:00:00Z", "sub-c", "mystery-model", PromptTokens=10),
            # Calls that cost nothing (no tokens: 429s) to a model without a price: no spend line
            # in no currency beside a team's budget, and no line for a team that spent nothing.
            _call(10, "2025-10-03T00:00:00Z", "sub-a1", "mystery-model"),
            _call(11, "2025-10-03T00:00:00Z", "sub-g", "mystery-model", UsageSource="none"),
        ],
    )
    tmp = tmp_path_factory.mktemp("budget-files")
    teams = "SubscriptionId,Team,CostCentre\nsub-a1,Alpha,CC-1\nsub-a2,Alpha,CC-1\n"
    teams += "sub-b,Beta,CC-2\nsub-c,Gamma,\n"
    _load(sink, "teams", _csv(tmp, "teams.csv", teams))
    budgets = "Team,MonthlyAmount,Currency,AlertThresholdPercent,EffectiveFrom\n"
    budgets += "Alpha,1000,USD,,2025-01-01\nAlpha,100,USD,,2025-10-01\n"  # the later one applies
    budgets += "Alpha,5,USD,,2025-11-01\n"  # not yet
    budgets += "Beta,100,USD,10,\nGamma,10,USD,,\nsub-d,50,USD,,\nsub-f,40,EUR,,\n"
    _load(sink, "budgets", _csv(tmp, "budgets.csv", budgets))
    yield sink
    sink.close()


def test_budget_status_month_to_date_with_a_linear_forecast(budgets: LocalSink) -> None:
    lines = budgets.query("BudgetStatus(datetime(2025-10-11))")
    rows = {r["Team"]: r for r in lines}
    assert len(lines) == len(rows)  # one line per team here: one currency each
    # 10 of October's 31 days have passed: forecast = spend / 10 * 31
    expected = {  # team: (budget, spend, status)
        "Alpha": (100.0, 25.0, "ok"),
        "Beta": (100.0, 15.0, "warning"),  # 15% spent, at its 10% threshold; forecast 46.5
        "Gamma": (10.0, 12.0, "over"),
        "sub-d": (50.0, 20.0, "forecast_over"),  # forecast 62
        "sub-e": (None, 5.0, "no_budget"),
        "sub-f": (40.0, 0.0, "ok"),  # a budget without spend
    }
    assert set(rows) == set(expected)
    for team, (budget, spend, status) in expected.items():
        row = rows[team]
        assert (row["Budget"], row["Status"]) == (budget, status), team
        assert row["Spend"] == pytest.approx(spend), team
        assert row["Forecast"] == pytest.approx(spend / 10 * 31), team
        assert (row["ElapsedDays"], row["DaysInMonth"]) == (10.0, 31.0)
        if budget:
            assert row["PercentUsed"] == pytest.approx(100 * spend / budget), team
            assert row["ForecastPercent"] == pytest.approx(100 * spend / 10 * 31 / budget), team
    assert (rows["Beta"]["AlertThresholdPercent"], rows["Alpha"]["AlertThresholdPercent"]) == (
        10.0,
        80.0,
    )
    assert (rows["Gamma"]["Calls"], rows["Gamma"]["UnpricedCalls"]) == (2, 1)
    assert rows["sub-f"]["Currency"] == "EUR"


def test_a_month_start_gives_the_month_just_ended(budgets: LocalSink) -> None:
    rows = {r["Team"]: r for r in budgets.query("BudgetStatus(datetime(2025-11-01))")}
    alpha = rows["Alpha"]
    assert alpha["MonthStart"] == dt.datetime(2025, 10, 1)
    assert alpha["Spend"] == pytest.approx(75.0)  # every October call
    assert alpha["Forecast"] == pytest.approx(75.0)  # the month is over
    assert alpha["ElapsedDays"] == alpha["DaysInMonth"] == 31.0
    september = {r["Team"]: r for r in budgets.query("BudgetStatus(datetime(2025-09-30T23:30))")}
    assert september["Alpha"]["Budget"] == 1000.0  # the budget of before October
    assert september["Alpha"]["Spend"] == pytest.approx(50.0)
    assert "Gamma" in september  # a budget applies from the start when it has no date


def test_the_first_hours_of_a_month_are_not_extrapolated(budgets: LocalSink) -> None:
    (alpha,) = budgets.query("BudgetStatus(datetime(2025-10-02T12:00)) | where Team == 'Alpha'")
    assert alpha["ElapsedDays"] == 1.5
    (early,) = budgets.query("BudgetStatus(datetime(2025-10-01T06:00)) | where Team == 'Alpha'")
    assert early["ElapsedDays"] == 1.0  # six hours count as one day


# ---------------------------------------------------------------------------------------------
# Capacity


def _minute(m: int, second: int = 0) -> str:
    return f"2025-10-01T00:{m:02d}:{second:02d}Z"


def _tokens(
    i: int, m: int, deployment: str, backend: str, tokens: int, **kw: Any
) -> dict[str, Any]:
    return _call(i, _minute(m, 10), "sub-a", deployment, BackendId=backend,
                 PromptTokens=tokens, TotalTokens=tokens, **kw)  # fmt: skip


def _request(i: int, deployment: str, backend: str, throttled: str = "") -> dict[str, Any]:
    return {
        "Timestamp": _minute(5),
        "RecordId": f"q{i}",
        "SubscriptionId": "sub-a",
        "BackendId": backend,
        "DeploymentName": deployment,
        "ResponseCode": 429 if throttled else 200,
        "ThrottledBy": throttled,
    }


@pytest.fixture(scope="module")
def capacity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSink]:
    folder = tmp_path_factory.mktemp("capacity")
    sink = LocalSink(folder / "store.duckdb")
    sink.flush()
    calls = [
        _tokens(1, 0, "gpt-4o", "b1", 600),
        _tokens(2, 0, "gpt-4o", "b1", 600),
        _tokens(3, 3, "gpt-4o", "b1", 500),
        _tokens(4, 1, "gpt-4o", "b2", 300),
        _tokens(5, 19, "gpt-4o", "b2", 400),  # the range's last call: 20 minutes in all
        _tokens(6, 7, "emb", "b1", 50),  # no quota
    ]
    # call 1 logged a second time by GatewayLlmLogs: counted once
    calls.append({**calls[0], "RecordId": "r1-llm", "Category": "GatewayLlmLogs", "BackendId": ""})
    # "mini": 90 tokens every minute against 100; "big": 150 every minute against 100
    calls += [_tokens(100 + m, m, "mini", "b1", 90) for m in range(20)]
    calls += [_tokens(200 + m, m, "big", "b1", 150) for m in range(20)]
    kql.insert_rows(sink.con, "LlmUsage", calls)
    requests = [_request(i, "gpt-4o", "b1") for i in range(50)]
    requests += [_request(50 + i, "gpt-4o", "b1", "backend") for i in range(3)]
    requests += [_request(60 + i, "gpt-4o", "", "apim") for i in range(2)]
    requests += [_request(70 + i, "gpt-4o", "b2") for i in range(40)]  # b2 never throttled
    kql.insert_rows(sink.con, "ApimRequests", requests)
    quotas = "DeploymentName,BackendId,TokensPerMinute,ProvisionedUnits,EffectiveFrom\n"
    quotas += "gpt-4o,b1,500,,2025-01-01\ngpt-4o,b1,1000,,2025-09-01\n"  # the later one applies
    quotas += "gpt-4o,b1,5000,,2025-12-01\n"  # not yet
    quotas += "gpt-4o,b2,1000,,\nmini,b1,100,,\nbig,b1,100,2,\n"
    _load(sink, "capacity", _csv(folder, "capacity.csv", quotas))
    yield sink
    sink.close()


def test_capacity_use_per_minute_against_the_quota(capacity: LocalSink) -> None:
    rows = {
        (r["DeploymentName"], r["BackendId"]): r
        for r in capacity.query("CapacityUse(datetime(2025-10-01), datetime(2025-10-02))")
    }
    b1, b2 = rows[("gpt-4o", "b1")], rows[("gpt-4o", "b2")]
    # b1: 1200 tokens in minute 0 (600 + 600, the call logged twice counted once), 500 in
    # minute 3, nothing in the 18 other minutes: p95 of the 20 minutes is the second largest
    assert (b1["Minutes"], b1["ActiveMinutes"], b1["Tokens"]) == (20, 2, 1700)
    assert (b1["PeakTokensPerMinute"], b1["P95TokensPerMinute"]) == (1200, 500)
    assert (b1["TokensPerMinute"], b1["PeakPercentOfQuota"], b1["P95PercentOfQuota"]) == (
        1000,
        120.0,
        50.0,
    )
    assert (b1["Requests"], b1["ThrottledByBackend"], b1["ThrottledByApim"]) == (53, 3, 0)
    # the pool: 1200, 300, 500, 400 in four minutes of 20 against 2000: p95 500 (25%)
    assert b1["PoolP95PercentOfQuota"] == 25.0
    assert b1["Status"] == "rebalance"  # at its quota while the pool has room
    assert (b2["PeakTokensPerMinute"], b2["PeakPercentOfQuota"], b2["Status"]) == (400, 40.0, "ok")
    apim = rows[("gpt-4o", "")]
    assert (apim["ThrottledByApim"], apim["ThrottledByBackend"], apim["Status"]) == (
        2,
        0,
        "no_quota",
    )
    mini, big = rows[("mini", "b1")], rows[("big", "b1")]
    assert (mini["P95PercentOfQuota"], mini["PeakPercentOfQuota"], mini["Status"]) == (
        90.0,
        90.0,
        "near_quota",
    )
    assert (big["PeakPercentOfQuota"], big["PoolP95PercentOfQuota"], big["Status"]) == (
        150.0,
        150.0,
        "add_capacity",
    )
    assert big["ProvisionedUnits"] == 2
    emb = rows[("emb", "b1")]
    assert (emb["TokensPerMinute"], emb["PeakTokensPerMinute"], emb["Status"]) == (
        None,
        50,
        "no_quota",
    )


def test_capacity_use_counts_the_minutes_of_its_range_only(capacity: LocalSink) -> None:
    rows = {
        (r["DeploymentName"], r["BackendId"]): r
        for r in capacity.query(
            "CapacityUse(datetime(2025-10-01T00:02), datetime(2025-10-01T00:10))"
        )
    }
    b1 = rows[("gpt-4o", "b1")]
    # minutes 2 to 9 (the first call at minute 2, the last at minute 9): minute 3's 500 only
    assert (b1["Minutes"], b1["PeakTokensPerMinute"], b1["Tokens"]) == (8, 500, 500)
    b2 = rows[("gpt-4o", "b2")]  # its calls are at minutes 1 and 19, its requests at minute 5
    assert (b2["Tokens"], b2["PeakTokensPerMinute"], b2["Requests"]) == (0, 0, 40)


# ---------------------------------------------------------------------------------------------
# The same columns as in production


def test_the_functions_return_their_production_columns_locally(billed: LocalSink) -> None:
    from ingest.kql.validate import result_columns

    calls = [
        "TeamCalls(datetime(2025-10-01), datetime(2025-10-02))",
        "Chargeback(datetime(2025-10-01))",
        "BudgetStatus(datetime(2025-10-02))",
        "CapacityUse(datetime(2025-10-01), datetime(2025-10-02))",
    ]
    production = result_columns(calls)
    for call in calls:
        relation = kql.duckdb_kql.query(billed.con, kql.local_kql(call))
        expected = production[call]
        assert expected, call
        assert relation.columns == [name for name, _ in expected], call
        # DuckDB sums BIGINT into HUGEINT: both are a KQL long
        local = [str(t).replace("HUGEINT", "BIGINT") for t in relation.types]
        assert local == [kql.DUCKDB_TYPES[t] for _, t in expected], call
