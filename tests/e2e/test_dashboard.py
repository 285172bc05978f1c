"""The dashboard in headless Chromium: the offline page ``report --html`` writes and the live page
``serve`` serves draw every chart from a simulated day and a half (with the sample teams, budgets
and quotas loaded), and answer a team, a model and a period; the live one by re-running the
report's queries on the server.

The page records what it drew (``data-charts`` on the body; ``data-state`` and ``data-points`` on
each tile); ``dashboard_driver.mjs`` drives it with ``playwright-core`` and Debian's Chromium and
prints that record as JSON. The default view's screenshot is kept in ``screenshots/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_ingest, serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("dashboard_driver.mjs")
SCREENSHOT = Path(__file__).with_name("screenshots") / "dashboard.png"
CHARTS = (
    "tokens",
    "spend",
    "throttling",
    "latency",
    "coverage",
    "dead_letters",
    "budget",
    "capacity",
)
OVER_TIME = ("tokens", "spend", "throttling", "coverage")
HORIZONTAL = ("latency", "dead_letters", "budget", "capacity")
TOOLTIP_UNITS = {
    "tokens": " tokens",
    "spend": " USD",
    "throttling": " calls",
    "coverage": " calls",
    "latency": " ms",
    "dead_letters": " records",
    "budget": " USD",
    "capacity": " % of quota",
}
UNITS = {
    "tokens": "Tokens",
    "spend": "Cost (USD)",
    "throttling": "Calls",
    "coverage": "Calls",
    "latency": "Ms",
    "dead_letters": "Records",
    "budget": "Amount (USD)",
    "capacity": "% of quota",
}
SAMPLES = ROOT / "kusto" / "reference"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("chromium") is None or shutil.which("node") is None:
        pytest.fail("chromium or node is missing: `make e2e` installs them")
    folder = tmp_path_factory.mktemp("dashboard")
    run_ingest("simulate", "--out", str(folder), "--hours", "36", "--rate", "2", "--seed", "5")
    db = folder / "store.duckdb"
    run_ingest("replay", str(folder / "events.jsonl"), "--db", str(db))
    for kind in ("teams", "budgets", "capacity"):
        run_ingest("reference", "load", kind, str(SAMPLES / f"{kind}.sample.csv"), "--db", str(db))
    return db


def _drive(url: str, profile: Path, screenshot: Path | None = None) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(DRIVER), url, str(screenshot or ""), str(profile)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)
    assert "error" not in out, out["error"]
    assert out["problems"] == [], out["problems"]
    return out


def _points(view: dict[str, Any]) -> dict[str, int]:
    return {tile: t["points"] for tile, t in view["tiles"].items()}


@pytest.fixture(scope="module")
def offline(store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("offline")
    page = folder / "dashboard.html"
    run_ingest("report", "--db", str(store), "--html", str(page))
    SCREENSHOT.parent.mkdir(exist_ok=True)
    return _drive(page.as_uri(), folder / "profile", SCREENSHOT)


@pytest.fixture(scope="module")
def served(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("served") / "served.duckdb"
    shutil.copy(store, db)
    with serving(db) as (_, url):
        yield url


@pytest.fixture(scope="module")
def live(served: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _drive(served + "/", tmp_path_factory.mktemp("live") / "profile")


def test_the_offline_page_draws_every_chart_with_labelled_axes(offline: dict[str, Any]) -> None:
    view = offline["initial"]
    assert view["charts"] == len(CHARTS)
    for tile in CHARTS:
        assert view["tiles"][tile]["state"] == "drawn", tile
        assert view["tiles"][tile]["points"] > 0, tile
    for tile in OVER_TIME:
        x, y = view["axes"][tile]["x"], view["axes"][tile]["y"]
        assert x["type"] == "time"
        assert x["title"] == "Time (UTC)"
        assert len(x["ticks"]) >= 4
        assert all(re.match(r"[A-Z][a-z]{2} \d", t) for t in x["ticks"])
        assert y["title"] == UNITS[tile]
    for tile in HORIZONTAL:  # horizontal bars: the values on x
        assert view["axes"][tile]["x"]["title"] == UNITS[tile]
    assert view["axes"]["latency"]["y"]["ticks"]  # every backend and deployment named
    assert all(" @ " in t for t in view["axes"]["latency"]["y"]["ticks"])
    # every sample team (and the unmapped subscription) with its status, every deployment and
    # backend with what to do (or APIM's 429s)
    budget = view["axes"]["budget"]["y"]["ticks"]
    assert {t.split(",")[0] for t in budget} >= {
        "Finance",
        "Corporate Services",
        "sub-data-science",
    }
    assert any("over budget" in t for t in budget)
    assert any(t.endswith(",no budget") for t in budget)
    capacity = view["axes"]["capacity"]["y"]["ticks"]
    assert all(" @ " in t and "429s: " in t for t in capacity)
    assert any("@ APIM (no backend)" in t for t in capacity)
    for tile, unit in TOOLTIP_UNITS.items():  # hovering a point names its series and unit
        title, *lines = view["tooltips"][tile]
        assert lines
        assert all(re.search(r": [\d,.]+" + unit + "$", line) for line in lines), lines
        if tile in OVER_TIME:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:00", title), title
    assert view["tableRows"] > 5
    assert "Cost (USD)" in view["tableHead"]
    assert any(m.endswith("(deployment)") for m in view["tableModels"])
    assert "" not in view["tableModels"]
    assert "(none)" not in view["tableModels"]
    # nothing is fetched: the libraries and the data are in the file
    assert all(u.startswith(("file:", "data:")) for u in offline["fetched"]), offline["fetched"]
    assert offline["posted"] == []
    assert SCREENSHOT.stat().st_size > 50_000


def test_the_offline_page_answers_a_team_a_model_and_a_period(offline: dict[str, Any]) -> None:
    everything, by_team = _points(offline["initial"]), _points(offline["byTeam"])
    assert by_team["spend"] < everything["spend"]  # one team's line instead of every team's
    assert offline["byTeam"]["tableRows"] < offline["initial"]["tableRows"]
    assert by_team["latency"] == everything["latency"]  # latency is not per team
    assert by_team["capacity"] == everything["capacity"]  # nor is capacity
    assert 0 < by_team["budget"] < everything["budget"]  # the team's budget status only
    both = offline["byTeamAndModel"]
    assert both["tableRows"] == 1
    assert both["tableModels"] == [offline["model"]]
    assert _points(both)["throttling"] < by_team["throttling"]
    assert _points(both)["latency"] < everything["latency"]
    assert 0 < _points(both)["capacity"] < everything["capacity"]  # the model's deployment
    assert _points(both)["budget"] == by_team["budget"]  # budgets are not per model
    last = _points(offline["last24h"])
    assert 0 < last["tokens"] < everything["tokens"]  # 36 hours of data: 24 of them
    assert "per hour" in offline["last24h"]["tiles"]["tokens"]["title"]


def test_the_live_page_runs_the_queries_on_the_server(live: dict[str, Any]) -> None:
    assert live["initial"]["charts"] == len(CHARTS)
    assert {p["path"] for p in live["posted"]} == {"/v1/rest/query"}
    team, model = live["team"], live["model"]
    assert live["byTeam"]["posted"]
    assert all(p == {"_team": team} for p in live["byTeam"]["posted"])
    assert all(p == {"_team": team, "_model": model} for p in live["byTeamAndModel"]["posted"])
    periods = live["last24h"]["posted"]
    assert periods
    assert all(set(p) == {"_start", "_end"} for p in periods)
    assert live["byTeam"]["fetches"] > live["initial"]["fetches"]


def test_live_and_offline_pages_draw_the_same(
    live: dict[str, Any], offline: dict[str, Any]
) -> None:
    assert (live["team"], live["model"]) == (offline["team"], offline["model"])
    for view in ("initial", "byTeam", "byTeamAndModel", "last24h"):
        assert _points(live[view]) == _points(offline[view]), view
        assert live[view]["tableRows"] == offline[view]["tableRows"], view


def test_serve_still_describes_itself_to_a_client_asking_for_json(served: str) -> None:
    with urllib.request.urlopen(served + "/", timeout=30) as response:
        assert json.loads(response.read())["endpoints"]
    request = urllib.request.Request(served + "/", headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        assert b'"mode": "live"' in response.read()
