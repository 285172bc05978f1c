"""The embedded default end to end: simulated traffic -> the app's batch path -> the local store ->
KPIs that equal the simulator's ground truth, unchanged by a replay
(the dashboard's tests: test_dashboard.py)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from ingest.commands.report import kpis
from ingest.kql.scripts import load_statements, seeds
from ingest.sinks.local import kql
from ingest.sinks.local.store import LocalSink
from tests.conftest import run_ingest, serving, teams_during

pytestmark = pytest.mark.e2e

EXACT = "UsageSource in ('response', 'stream', 'llm_log', 'policy')"
CALLS = "LlmCalls(datetime(1900-01-01), datetime(2100-01-01))"
"""Every call of the simulated period."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demo")
    run_ingest("simulate", "--out", str(folder), "--hours", "6", "--rate", "6", "--seed", "11")
    db = folder / "store.duckdb"
    run_ingest("replay", str(folder / "events.jsonl"), "--db", str(db), "--batch", "200")
    return {
        "folder": folder,
        "db": db,
        "events": folder / "events.jsonl",
        "truth": folder / "truth.json",
    }


def _exact_kpis(db: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    store = LocalSink(db)
    rows = store.query(
        f"{CALLS} | where {EXACT} | summarize Calls = count(), "
        "PromptTokens = sum(PromptTokens), "
        "CompletionTokens = sum(CompletionTokens) by SubscriptionId, ModelName"
    )
    store.close()
    return {
        (r["SubscriptionId"], r["ModelName"]): (
            r["Calls"],
            r["PromptTokens"],
            r["CompletionTokens"],
        )
        for r in rows
    }


def test_kpis_equal_the_ground_truth_for_exact_usage(world: dict[str, Path]) -> None:
    truth = json.loads(world["truth"].read_text())
    expected = {
        (u["SubscriptionId"], u["ModelName"]): (
            u["ExactCalls"],
            u["ExactPromptTokens"],
            u["ExactCompletionTokens"],
        )
        for u in truth["usage"]
        if u.get("ExactCalls")
    }
    assert expected  # the simulation produced exact usage for several teams and models
    assert _exact_kpis(world["db"]) == expected


def test_every_call_is_counted_once_per_subscription(world: dict[str, Path]) -> None:
    truth = json.loads(world["truth"].read_text())
    calls: dict[str, int] = {}
    for u in truth["usage"]:
        calls[u["SubscriptionId"]] = calls.get(u["SubscriptionId"], 0) + u["Calls"]
    store = LocalSink(world["db"])
    rows = store.query(f"{CALLS} | summarize Calls = count() by SubscriptionId")
    store.close()
    assert {r["SubscriptionId"]: r["Calls"] for r in rows} == calls


def test_malformed_events_are_dead_letters_and_counts_reconcile(world: dict[str, Path]) -> None:
    truth = json.loads(world["truth"].read_text())
    store = LocalSink(world["db"])
    (dead,) = store.query("IngestDeadLetters | count")
    store.close()
    assert dead["Count"] == truth["malformed_events"]


def test_replaying_the_same_files_changes_no_kpi(world: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "twice.duckdb"
    shutil.copy(world["db"], db)
    before_store = LocalSink(db)
    before = kpis(before_store)
    (raw_before,) = before_store.query("LlmUsage | count")
    before_store.close()
    run_ingest("replay", str(world["events"]), "--db", str(db), "--batch", "333")
    after_store = LocalSink(db)
    after = kpis(after_store)
    (raw,) = after_store.query("LlmUsage | count")
    (dedup,) = after_store.query("materialized_view('LlmUsageDedup') | count")
    after_store.close()
    assert (
        raw["Count"] == 2 * raw_before["Count"] > dedup["Count"]
    )  # every duplicate is kept raw ...
    assert after == before  # ... and no KPI moved


def test_query_command_prints_json_rows(world: dict[str, Path]) -> None:
    done = run_ingest(
        "query",
        "--db",
        str(world["db"]),
        "--json",
        f"{CALLS} | summarize Calls = count()",
    )
    (row,) = json.loads(done.stdout)
    assert row["Calls"] > 0
    table = run_ingest("query", "--db", str(world["db"]), "ModelPrices | summarize n = count()")
    # the seed's rows (kusto/70_prices.kql), as a table: a header and one line
    (seed,) = seeds(load_statements())
    prices = len(kql.query(kql.connect(), seed.query.split("| join kind=leftanti")[0]))
    assert table.stdout.split() == ["n", str(prices)]


def test_serve_answers_the_real_kusto_client(world: dict[str, Path], tmp_path: Path) -> None:

    from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

    db = tmp_path / "served.duckdb"
    shutil.copy(world["db"], db)
    with serving(db) as (database, url):
        client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(url))
        result = client.execute(database, f"{CALLS} | summarize Calls = count() by SubscriptionId")
        served = {row["SubscriptionId"]: row["Calls"] for row in result.primary_results[0]}
    truth = json.loads(world["truth"].read_text())
    calls: dict[str, int] = {}
    for u in truth["usage"]:
        calls[u["SubscriptionId"]] = calls.get(u["SubscriptionId"], 0) + u["Calls"]
    assert served == calls


def test_the_months_chargeback_csv_bills_every_call_once(
    world: dict[str, Path], tmp_path: Path
) -> None:
    import csv

    db = tmp_path / "billed.duckdb"
    shutil.copy(world["db"], db)
    samples = Path(__file__).resolve().parents[2] / "kusto" / "reference"
    run_ingest("reference", "load", "teams", str(samples / "teams.sample.csv"), "--db", str(db))
    bill = tmp_path / "bill.csv"
    run_ingest("report", "--db", str(db), "--month", "2025-10", "--csv", str(bill))
    with bill.open(encoding="utf-8", newline="") as stream:
        lines = list(csv.DictReader(stream))
    store = LocalSink(db)
    (usage,) = store.query(
        "UsageAndCost(datetime(2025-10-01), datetime(2025-11-01)) | summarize Calls = sum(Calls),"
        " CostNanos = sum(tolong(round(Cost * 1000000000.0))), Prompt = sum(PromptTokens),"
        " Completion = sum(CompletionTokens)"
    )
    teams = store.query("Teams")
    store.close()
    assert sum(int(line["Calls"]) for line in lines) == usage["Calls"]
    assert sum(round(float(line["Cost"]) * 1e9) for line in lines) == usage["CostNanos"]
    prompt = sum(
        int(line[c])
        for line in lines
        for c in ("InputTokens", "CachedInputTokens", "CacheWriteTokens")
    )
    assert (prompt, sum(int(line["OutputTokens"]) for line in lines)) == (
        usage["Prompt"],
        usage["Completion"],
    )
    october = (dt.datetime(2025, 10, 1), dt.datetime(2025, 11, 1))
    mapped = {t["SubscriptionId"] for t in teams}
    for line in lines:  # each subscription under its team(s) of October, or its own id if unmapped
        subscription = line["SubscriptionId"]
        if subscription in mapped:
            assert line["Team"] in teams_during(teams, subscription, *october), line
        else:
            assert line["Team"] == subscription, line
