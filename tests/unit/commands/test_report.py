"""The report's queries on a small store, the model-name fallback, the page's data embedding."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.commands import report
from ingest.commands.report import (
    PARAMETERS,
    PER_PERIOD,
    QUERIES,
    STORED_FUNCTIONS,
    MissingLibraryError,
    html_report,
    kpis,
    live_page,
    text_report,
    with_parameters,
)
from ingest.errors import ConfigError
from ingest.kql.scripts import functions, production_statements
from ingest.sinks.local import StoreBusyError, kql

T0 = dt.datetime(2025, 10, 1, 0, 0)
HOSTILE = "</script><script>alert(1)</script><!--\u2028"


def _call(
    i: int, at: dt.datetime, team: str, model: str, deployment: str, **kw: Any
) -> dict[str, Any]:
    return {
        "Timestamp": at.isoformat(),
        "RecordId": f"r{i}",
        "CorrelationId": f"c{i}",
        "Category": "GatewayLogs",
        "SubscriptionId": team,
        "ProductId": f"p-{team}",
        "BackendId": "aoai-eastus",
        "DeploymentName": deployment,
        "ModelName": model,
        "PromptTokens": 100,
        "CompletionTokens": 50,
        "TotalTokens": 150,
        "CachedTokens": 0,
        "UsageSource": "response",
        **kw,
    }


def _request(i: int, at: dt.datetime, team: str, deployment: str, throttled: str) -> dict[str, Any]:
    return {
        "Timestamp": at.isoformat(),
        "RecordId": f"q{i}",
        "CorrelationId": f"c{i}",
        "SubscriptionId": team,
        "BackendId": "" if throttled == "apim" else "aoai-eastus",
        "DeploymentName": deployment,
        "ResponseCode": 429 if throttled else 200,
        "StatusClass": "4xx" if throttled else "2xx",
        "ThrottledBy": throttled,
        "DurationMs": 100 + i,
        "BackendTimeMs": 90 + i,
    }


class _Store:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.ran: list[str] = []

    def query(self, text: str) -> list[dict[str, Any]]:
        self.ran.append(text)
        return kql.query(self.con, text)


@pytest.fixture(scope="module")
def store() -> Iterator[_Store]:
    con = kql.connect(":memory:")
    calls = [
        _call(1, T0, "team-a", "gpt-4o-2024-08-06", "gpt-4o"),
        _call(2, T0 + dt.timedelta(hours=30), "team-b", "gpt-4o-2024-08-06", "gpt-4o"),
        # the model was not logged: shown (and priced) under its deployment's name
        _call(3, T0 + dt.timedelta(hours=30), "team-a", "", "gpt-4o-mini", UsageSource="estimated"),
        _call(4, T0 + dt.timedelta(hours=31), HOSTILE, "gpt-4o-2024-08-06", "gpt-4o"),
    ]
    kql.insert_rows(con, "LlmUsage", calls)
    kql.insert_rows(
        con,
        "ApimRequests",
        [
            _request(1, T0, "team-a", "gpt-4o", ""),
            _request(2, T0 + dt.timedelta(hours=30), "team-b", "gpt-4o", "apim"),
            _request(3, T0 + dt.timedelta(hours=30), "team-a", "gpt-4o-mini", "backend"),
        ],
    )
    kql.insert_rows(
        con,
        "IngestDeadLetters",
        [
            {"RecordId": "d1", "Reason": "not_json", "RawPayload": "{"},
            {"Timestamp": T0.isoformat(), "RecordId": "d2", "Reason": "too_large"},
        ],
    )
    yield _Store(con)
    con.close()


@pytest.fixture(scope="module")
def result(store: _Store) -> dict[str, Any]:
    return kpis(store)


def test_every_query_declares_the_period_team_and_model(store: _Store) -> None:
    for name, text in QUERIES.items():
        assert text.startswith(PARAMETERS), name


def test_every_stored_function_is_called_as_listed() -> None:
    stored = set(functions(production_statements()))
    listed = {f.split("(")[0] for f in STORED_FUNCTIONS}
    assert listed <= stored
    for name, text in QUERIES.items():
        for call in re.finditer(r"\b([A-Z]\w*)\(([^()]*)\)", text):
            if call.group(1) in stored:
                assert call.group(0) in STORED_FUNCTIONS, (name, call.group(0))


def test_queries_run_as_written_and_nothing_fails(store: _Store, result: dict[str, Any]) -> None:
    assert result["errors"] == {}
    assert all(ran in store.ran for ran in QUERIES.values())  # as written, parameters' defaults
    data = result["data"]
    assert data["span"] == [{"First": "2025-10-01T00:00:00Z", "Last": "2025-10-02T07:00:00Z"}]
    assert sum(r["Calls"] for r in data["calls_hourly"]) == 4
    assert sum(r["TotalTokens"] for r in data["calls_hourly"]) == 600
    assert {(r["Hour"], r["SubscriptionId"]) for r in data["calls_hourly"]} >= {
        ("2025-10-01T00:00:00Z", "team-a"),
        ("2025-10-02T06:00:00Z", "team-b"),
    }
    assert sum(r["ByApim"] for r in data["throttling"]) == 1
    assert sum(r["ByBackend"] for r in data["throttling"]) == 1
    assert {r["DeploymentName"] for r in data["latency"]} == {"gpt-4o", "gpt-4o-mini"}
    assert {
        r["Coverage"]: r["Calls"] for r in data["coverage"] if r["SubscriptionId"] == "team-a"
    } == {
        "exact": 1,
        "estimated": 1,
    }
    assert {r["Reason"]: r["DeadLetters"] for r in data["dead_letters"]} == {
        "not_json": 1,
        "too_large": 1,
    }


def test_an_unknown_model_falls_back_to_its_deployment(result: dict[str, Any]) -> None:
    data = result["data"]
    models = {r["ModelName"] for r in data["dimensions"]}
    assert models == {"gpt-4o-2024-08-06", "gpt-4o-mini (deployment)"}
    assert "" not in {r["ModelName"] for r in data["calls_hourly"]}
    (fallback,) = [r for r in data["calls_hourly"] if r["ModelName"] == "gpt-4o-mini (deployment)"]
    assert fallback["SubscriptionId"] == "team-a"
    assert {
        r["DeploymentName"] for r in data["dimensions"] if r["ModelName"].endswith("(deployment)")
    } == {"gpt-4o-mini"}


def test_parameters_restrict_the_period_team_and_model(store: _Store) -> None:
    late = with_parameters(
        QUERIES["calls_hourly"], start="datetime(2025-10-02T00:00:00)", end="datetime(2025-10-03)"
    )
    assert {r["Hour"].day for r in store.query(late)} == {2}
    team = with_parameters(QUERIES["calls_hourly"], team='"team-a"')
    assert {r["SubscriptionId"] for r in store.query(team)} == {"team-a"}
    model = with_parameters(QUERIES["throttling"], model='"gpt-4o-mini (deployment)"')
    assert {r["DeploymentName"] for r in store.query(model)} == {"gpt-4o-mini"}
    latency = with_parameters(QUERIES["latency"], model='"gpt-4o-2024-08-06"')
    assert {r["DeploymentName"] for r in store.query(latency)} == {"gpt-4o"}
    with pytest.raises(ValueError, match="_nope"):
        with_parameters(QUERIES["latency"], nope='""')


def test_percentiles_are_embedded_once_per_period(result: dict[str, Any]) -> None:
    assert set(result["periods"]) == set(PER_PERIOD)
    latency = result["periods"]["latency"]
    assert set(latency) == {"24h", "7d", "30d", "all"}
    # the last 24 hours end at the data's last hour (2025-10-02 07:00): the call at 00:00 the
    # day before is out
    assert sum(r["Requests"] for r in latency["24h"]) == 2
    assert sum(r["Requests"] for r in latency["all"]) == 3


def test_a_failing_query_is_reported_and_the_others_still_come() -> None:
    class Broken:
        def query(self, text: str) -> list[dict[str, Any]]:
            if "Throttling(" in text:
                raise RuntimeError("Throttling() takes (start, end, team)")
            if text == QUERIES["span"]:
                return [{"First": T0, "Last": T0}]
            return [{"Hour": T0, "Calls": 1}]

    got = kpis(Broken())
    assert got["errors"] == {"throttling": "Throttling() takes (start, end, team)"}
    assert got["data"]["throttling"] == []
    assert got["data"]["calls_hourly"] == [{"Hour": "2025-10-01T00:00:00Z", "Calls": 1}]
    assert got["periods"]["latency"]["24h"] == [{"Hour": "2025-10-01T00:00:00Z", "Calls": 1}]
    assert "!! throttling" in text_report(got)


def test_a_store_that_cannot_be_opened_is_not_drawn_as_empty_tiles() -> None:
    class Busy:
        def query(self, text: str) -> list[dict[str, Any]]:
            raise StoreBusyError("the local store `x` is in use by another process")

    with pytest.raises(StoreBusyError, match="in use"):
        kpis(Busy())


def test_text_report_rolls_up_the_hourly_rows(result: dict[str, Any]) -> None:
    text = text_report(result)
    assert "gpt-4o-mini (deployment)" in text
    assert "== Dead letters (records)" in text
    assert "too_large" in text


@pytest.fixture
def vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in report._VENDOR.values():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"/* {name} */ var s = '</script>';", encoding="utf-8")
    monkeypatch.setattr(report, "NODE_MODULES", tmp_path)
    return tmp_path


def _config(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="config" type="application/json">(.*?)</script>', page, re.S)
    assert match
    loaded: dict[str, Any] = json.loads(match.group(1))
    return loaded


def test_the_page_embeds_its_data_safely(result: dict[str, Any], vendor: Path) -> None:
    page = html_report(result)
    payload = page.split('<script id="config" type="application/json">', 1)[1].split("</script>")[0]
    assert "<" not in payload
    assert ">" not in payload
    assert "\u2028" not in payload
    config = _config(page)
    assert config["mode"] == "offline"
    assert config["queries"] == QUERIES
    assert HOSTILE in {r["SubscriptionId"] for r in config["data"]["calls_hourly"]}
    assert page.count("<script") == page.count("</script>") == 4  # 2 libraries, data, page
    assert "var s = '<\\/script>'" in page  # a library's own text cannot end its element
    assert "http://" not in page
    assert "https://" not in page


def test_the_live_page_carries_the_queries_and_no_data(vendor: Path) -> None:
    config = _config(live_page())
    assert config == {"mode": "live", "queries": QUERIES, "perPeriod": sorted(PER_PERIOD)}


def test_a_missing_library_says_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "NODE_MODULES", tmp_path)
    with pytest.raises(MissingLibraryError, match="npm ci") as raised:
        live_page()
    assert isinstance(raised.value, ConfigError)  # the command line prints it, no traceback


def test_budget_status_is_at_the_end_of_the_data_for_every_team(
    store: _Store, result: dict[str, Any]
) -> None:
    budget = result["data"]["budget"]
    # no Teams or Budgets in this store: every subscription is a team of its own, without budget
    assert {r["Team"] for r in budget} == {"team-a", "team-b", HOSTILE}
    assert all(r["Subscriptions"] == r["Team"] and r["Status"] == "no_budget" for r in budget)
    assert {r["AsOf"] for r in budget} == {"2025-10-02T08:00:00Z"}  # the last call's hour, ended
    one = with_parameters(QUERIES["budget"], team='"team-b"')
    assert [r["Team"] for r in store.query(one)] == ["team-b"]
    # a period that ends earlier is the budget status at its own end
    early = with_parameters(QUERIES["budget"], end="datetime(2025-10-01T12:00:00)")
    assert {r["AsOf"] for r in store.query(early)} == {dt.datetime(2025, 10, 1, 1)}


def test_capacity_use_per_deployment_and_backend_and_period(
    store: _Store, result: dict[str, Any]
) -> None:
    capacity = result["data"]["capacity"]
    assert {(r["DeploymentName"], r["BackendId"]) for r in capacity} == {
        ("gpt-4o", "aoai-eastus"),
        ("gpt-4o", ""),  # the 429 APIM answered itself
        ("gpt-4o-mini", "aoai-eastus"),
    }
    assert sum(r["ThrottledByApim"] for r in capacity) == 1
    assert sum(r["ThrottledByBackend"] for r in capacity) == 1
    assert sum(r["Tokens"] for r in capacity) == 600
    assert {r["Status"] for r in capacity} == {"no_quota"}  # no DeploymentCapacity rows here
    assert set(result["periods"]["capacity"]) == {"24h", "7d", "30d", "all"}
    mini = with_parameters(QUERIES["capacity"], model='"gpt-4o-mini (deployment)"')
    assert {r["DeploymentName"] for r in store.query(mini)} == {"gpt-4o-mini"}


def test_a_months_chargeback_as_csv(store: _Store, result: dict[str, Any]) -> None:
    import csv
    import io

    bill = report.chargeback(store, dt.datetime(2025, 10, 1))
    assert {line["Month"] for line in bill} == {"2025-10-01T00:00:00Z"}
    assert sum(line["Calls"] for line in bill) == 4
    text = report.chargeback_csv(bill).decode()
    read = list(csv.DictReader(io.StringIO(text)))
    assert list(read[0]) == list(bill[0])  # Chargeback()'s columns, in its order
    assert sum(float(line["Cost"]) for line in read) == pytest.approx(
        sum(line["Cost"] for line in bill)
    )
    assert HOSTILE in {line["Team"] for line in read}  # CSV quotes what needs quoting
    assert report.chargeback(store, dt.datetime(2025, 11, 1)) == []
    assert report.chargeback_csv([]) == b""
    shown = text_report(result, bill, dt.datetime(2025, 10, 1))
    assert "== Chargeback of 2025-10 per team" in shown
    assert "== Budget status, month to date at 2025-10-02T08:00:00Z" in shown
    assert "== Capacity use per deployment and backend" in shown


def test_the_budget_team_filter_follows_the_teams_that_paid_in_the_budget_month() -> None:
    """The team filter shows a subscription under the teams its calls were billed to in the month
    of the budget status, not under every team Teams ever listed it for (a subscription moved
    away months ago, or moving next month, is not the other team's business this month)."""
    con = kql.connect(":memory:")
    try:
        kql.insert_rows(
            con,
            "LlmUsage",
            [
                _call(1, T0, "team-a", "gpt-4o-2024-08-06", "gpt-4o"),
                _call(2, T0 + dt.timedelta(hours=30), "team-a", "gpt-4o-2024-08-06", "gpt-4o"),
            ],
        )
        kql.insert_rows(
            con,
            "Teams",
            [  # team-a: Alpha, then Beta from September 20, Gamma mid-data, Delta next month
                {"SubscriptionId": "team-a", "Team": "Alpha", "CostCentre": "1"},
                {"SubscriptionId": "team-a", "Team": "Beta", "EffectiveFrom": "2025-09-20"},
                {
                    "SubscriptionId": "team-a",
                    "Team": "Gamma",
                    "EffectiveFrom": T0 + dt.timedelta(hours=12),
                },
                {"SubscriptionId": "team-a", "Team": "Delta", "EffectiveFrom": "2025-11-01"},
            ],
        )
        budgets = [
            {"Team": team, "MonthlyAmount": 100.0, "Currency": "USD"}
            for team in ("Alpha", "Beta", "Gamma", "Delta")
        ]
        kql.insert_rows(con, "Budgets", budgets)
        rows = kql.query(con, with_parameters(QUERIES["budget"], team='"team-a"'))
        assert {r["AsOf"] for r in rows} == {dt.datetime(2025, 10, 2, 7)}
        # Beta paid for the first call, Gamma for the second: both, and no other team
        assert sorted(r["Team"] for r in rows) == ["Beta", "Gamma"]
        every = kql.query(con, with_parameters(QUERIES["budget"]))
        # the other teams keep their budget lines, with no subscription of this month
        assert {r["Team"]: r["Subscriptions"] for r in every} == {
            "Alpha": "Alpha",
            "Beta": "team-a",
            "Gamma": "team-a",
            "Delta": "Delta",
        }
    finally:
        con.close()
