"""Headline KPIs over the local store, as text and as a dashboard page.

Every KPI's KQL is in :data:`QUERIES`, run on the store exactly as written: by ``report`` (each
query once with its parameters' defaults, the whole period, every team and model; the rows are
embedded in the page, which filters them in the browser) and by the page served by ``serve``
(which posts the same text to the server's Kusto endpoint with the period, team and model as
query parameters). The stored functions they call (``LlmCalls``, ``Throttling``, ``Latency``, each
over the period) are listed in :data:`STORED_FUNCTIONS`: a function whose signature
changes is changed here and nowhere else.

The page draws its charts with Chart.js, inlined from ``node_modules`` (``npm ci``): the written
file opens offline, with no CDN.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from ingest.commands.table import format_table
from ingest.errors import ConfigError
from ingest.sinks.local import StoreError


class Queryable(Protocol):
    """A store that answers KQL (the local store, or anything with the same ``query``)."""

    def query(self, kql: str) -> list[dict[str, Any]]:
        """Rows of a KQL query."""
        ...


PARAMETERS = (
    "declare query_parameters(_start:datetime = datetime(1900-01-01), "
    '_end:datetime = datetime(2100-01-01), _team:string = "", _model:string = "");\n'
)
"""Every query's parameters: the period (``_start`` inclusive, ``_end`` exclusive), a team
(``SubscriptionId``) and a model, empty for all. Their defaults are the whole store."""

MODEL = (
    'extend ModelName = iif(isempty(ModelName), strcat(DeploymentName, " (deployment)"), ModelName)'
)
"""A call whose model was not logged is shown under its deployment's name."""

CALLS = "LlmCalls(_start, _end)"
THROTTLING = "Throttling(_start, _end)"
LATENCY = "Latency(_start, _end)"
BUDGET = "BudgetStatus(asOf)"
TEAM_RANGES = "TeamRanges()"
CAPACITY = "CapacityUse(_start, _end)"
STORED_FUNCTIONS = (CALLS, THROTTLING, LATENCY, BUDGET, TEAM_RANGES, CAPACITY)
"""The stored functions (``kusto/60_functions.kql``, ``62_finance.kql``) the queries call, as they
call them."""

_CALLS_IN_SCOPE = (
    f"{CALLS}\n| where Timestamp >= _start and Timestamp < _end\n"
    "| where isempty(_team) or SubscriptionId == _team\n"
    f"| {MODEL}\n| where isempty(_model) or ModelName == _model\n"
)
_DEPLOYMENTS_OF_MODEL = (
    f"let deployments = {CALLS} | {MODEL} | where ModelName == _model | distinct DeploymentName;\n"
)

QUERIES: dict[str, str] = {
    # The data's first and last call: the page's periods end at the last one.
    "span": f"{PARAMETERS}{CALLS}\n| summarize First = min(Timestamp), Last = max(Timestamp)",
    # The teams and models to filter on, and which deployments serve which model.
    "dimensions": f"{PARAMETERS}{CALLS}\n| {MODEL}\n"
    "| summarize Calls = count() by SubscriptionId, ProductId, ModelName, DeploymentName\n"
    "| order by SubscriptionId asc, ModelName asc, DeploymentName asc",
    # Tokens per hour, spend per team over time, and the usage-and-cost table.
    "calls_hourly": f"{PARAMETERS}{_CALLS_IN_SCOPE}"
    "| summarize Calls = count(), PromptTokens = sum(PromptTokens),"
    " CompletionTokens = sum(CompletionTokens), TotalTokens = sum(TotalTokens),"
    " CachedTokens = sum(CachedTokens), CostNanos = sum(tolong(round(Cost * 1000000000.0)))\n"
    "    by Hour = bin(Timestamp, 1h), SubscriptionId, ProductId, ModelName, Currency\n"
    "| extend Cost = CostNanos / 1000000000.0\n| project-away CostNanos\n"
    "| order by Hour asc, SubscriptionId asc, ModelName asc",
    # 429s per hour: APIM's limit policies vs the backend.
    "throttling": f"{PARAMETERS}{_DEPLOYMENTS_OF_MODEL}{THROTTLING}\n"
    "| where isempty(_team) or SubscriptionId == _team\n"
    "| where isempty(_model) or DeploymentName in (deployments)\n"
    "| summarize Requests = sum(Requests), ByApim = sum(ThrottledByApim),"
    " ByBackend = sum(ThrottledByBackend) by Hour, SubscriptionId, DeploymentName\n"
    "| order by Hour asc, SubscriptionId asc, DeploymentName asc",
    # Latency percentiles per backend and deployment (the view has no team: every team's).
    "latency": f"{PARAMETERS}{_DEPLOYMENTS_OF_MODEL}{LATENCY}\n"
    "| where isempty(_model) or DeploymentName in (deployments)\n"
    "| order by BackendId asc, DeploymentName asc",
    # Token counts exact, estimated or missing (UsageCoverage's classes), per hour.
    "coverage": f"{PARAMETERS}{_CALLS_IN_SCOPE}"
    '| extend Coverage = case(UsageSource in ("response", "stream", "llm_log", "policy",'
    ' "salvaged"), "exact", UsageSource == "estimated", "estimated", "missing")\n'
    "| summarize Calls = count() by Hour = bin(Timestamp, 1h), SubscriptionId, ModelName,"
    " Coverage\n| order by Hour asc, Coverage asc",
    # Dead letters by reason (not per team or model; one with no time is in every period).
    "dead_letters": f"{PARAMETERS}IngestDeadLetters\n"
    "| where isnull(Timestamp) or (Timestamp >= _start and Timestamp < _end)\n"
    "| summarize DeadLetters = dcount(RecordId) by Reason, Hour = bin(Timestamp, 1h)\n"
    "| order by Reason asc",
    # Budget status, month to date at the end of the data in the period (its last call's hour):
    # the same moment for every period that ends with the data. Per team, with the subscriptions
    # it paid for in that budget's month (TeamRanges() rows whose range meets the month; the
    # subscription itself when unmapped) for the team filter.
    "budget": f"{PARAMETERS}let asOf = min_of(bin(toscalar({CALLS} | summarize max(Timestamp)), 1h)"
    " + 1h, _end);\n"
    "let monthStart = iff(asOf == startofmonth(asOf), startofmonth(asOf, -1),"
    " startofmonth(asOf));\n"
    f"let members = {TEAM_RANGES}"
    " | where (isnull(TeamFrom) or TeamFrom < asOf) and (isnull(TeamTo) or TeamTo > monthStart)"
    " | summarize Subscriptions = make_set(SubscriptionId) by Team"
    ' | extend Subscriptions = strcat_array(Subscriptions, ",");\n'
    f"{BUDGET}\n| join kind=leftouter members on Team\n"
    "| extend Subscriptions = iff(isempty(Subscriptions), Team, Subscriptions)\n"
    '| where isempty(_team) or strcat(",", Subscriptions, ",") contains strcat(",", _team, ",")\n'
    "| project AsOf, Team, Subscriptions, Currency, Budget, Spend, Forecast, PercentUsed,"
    " ForecastPercent, Status, Calls, UnpricedCalls\n"
    "| order by Team asc, Currency asc",
    # Tokens per minute against each deployment's quota on each backend, with its 429s by source.
    "capacity": f"{PARAMETERS}{_DEPLOYMENTS_OF_MODEL}{CAPACITY}\n"
    "| where isempty(_model) or DeploymentName in (deployments)\n"
    "| order by DeploymentName asc, BackendId asc",
}
"""Each KPI's KQL, run on the store exactly as written (with the parameters' defaults, or with
the page's period, team and model when ``serve`` answers it)."""

PER_PERIOD = frozenset({"latency", "capacity"})
"""Queries whose rows cannot be re-aggregated in the browser (percentiles): the offline page
embeds them once per period of its picker."""

PERIODS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
"""The period picker's relative periods (and "all"), ending at the data's last hour."""

HOUR = dt.timedelta(hours=1)

_VENDOR = {
    "CHARTJS": "chart.js/dist/chart.umd.min.js",
    "DATE_ADAPTER": "chartjs-adapter-date-fns/dist/chartjs-adapter-date-fns.bundle.min.js",
}
"""The page's libraries, inlined from ``node_modules`` (Chart.js 4, its date-fns time adapter)."""

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
_PAGE = Path(__file__).with_name("dashboard.html")
"""The page template: placeholders for the libraries and the data; its script draws the charts."""


class MissingLibraryError(ConfigError):
    """The page's charting library is not installed (``npm ci``): the command line says so."""


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    return value


def _rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with datetimes as ISO 8601 UTC text (what the Kusto endpoint sends too)."""
    return [{k: _iso(v) for k, v in row.items()} for row in rows]


def _literal(value: dt.datetime) -> str:
    return f"datetime({value.isoformat()})"


def with_parameters(kql: str, **values: str) -> str:
    """The query with its declared parameters' defaults replaced (``_start="datetime(...)"``)."""
    for name, literal in values.items():
        kql, n = re.subn(
            rf"(\b_{name}:\w+ = )(datetime\([^)]*\)|\"[^\"]*\")", rf"\g<1>{literal}", kql, count=1
        )
        if n != 1:
            raise ValueError(f"the query declares no parameter _{name}")
    return kql


def kpis(store: Queryable) -> dict[str, Any]:
    """Every query's rows (the whole store), the latency of each period, and what failed.

    A query that fails leaves its tile empty ("no data") and its error in ``errors``: one broken
    KPI never hides the others. A store that cannot be opened at all (another process holds it)
    is no KPI's failure: its StoreError propagates, and nothing is drawn.
    """
    data: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    for name, kql in QUERIES.items():
        try:
            data[name] = _rows(store.query(kql))
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - the tile shows the error, the others draw
            data[name], errors[name] = [], str(exc)
    periods: dict[str, dict[str, list[dict[str, Any]]]] = {}
    last = _last_hour(data["span"])
    for name in PER_PERIOD & QUERIES.keys():
        periods[name] = {"all": data[name]}
        for period, length in PERIODS.items():
            if last is None or name in errors:
                periods[name][period] = []
                continue
            kql = with_parameters(
                QUERIES[name], start=_literal(last - length), end=_literal(last + HOUR)
            )
            try:
                periods[name][period] = _rows(store.query(kql))
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001
                periods[name][period], errors[name] = [], str(exc)
    return {"data": data, "periods": periods, "errors": errors}


def _last_hour(span: list[dict[str, Any]]) -> dt.datetime | None:
    if not span or not span[0].get("Last"):
        return None
    last = dt.datetime.fromisoformat(str(span[0]["Last"]).replace("Z", ""))
    return last.replace(minute=0, second=0, microsecond=0)


def _rollup(
    rows: list[dict[str, Any]], keys: tuple[str, ...], sums: tuple[str, ...]
) -> list[dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        total = out.setdefault(key, {**dict(zip(keys, key, strict=True)), **dict.fromkeys(sums, 0)})
        for s in sums:
            total[s] += row.get(s) or 0
    return [out[k] for k in sorted(out, key=lambda k: tuple(str(v) for v in k))]


CHARGEBACK = "Chargeback({month})"
"""A month's bill (``kusto/62_finance.kql``); ``month`` is a datetime literal in the month."""


def chargeback(store: Queryable, month: dt.datetime) -> list[dict[str, Any]]:
    """The chargeback lines of the month holding ``month``, as ``Chargeback()`` returns them."""
    return _rows(store.query(CHARGEBACK.format(month=_literal(month))))


def chargeback_csv(lines: list[dict[str, Any]]) -> bytes:
    """The chargeback lines as CSV: a header of ``Chargeback()``'s columns, one line each."""
    out = io.StringIO()
    if lines:
        writer = csv.DictWriter(out, fieldnames=list(lines[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
    return out.getvalue().encode("utf-8")


_BUDGET_COLUMNS = (
    "Team",
    "Currency",
    "Budget",
    "Spend",
    "Forecast",
    "PercentUsed",
    "ForecastPercent",
    "Status",
    "UnpricedCalls",
)
_CAPACITY_COLUMNS = (
    "DeploymentName",
    "BackendId",
    "TokensPerMinute",
    "PeakTokensPerMinute",
    "P95TokensPerMinute",
    "PeakPercentOfQuota",
    "P95PercentOfQuota",
    "ThrottledByApim",
    "ThrottledByBackend",
    "Status",
)


_CHARGEBACK_SUMS = (
    "Calls",
    "UnpricedCalls",
    "InputCost",
    "CachedInputCost",
    "CacheWriteCost",
    "OutputCost",
    "Cost",
)


def _columns(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{c: row.get(c) for c in columns} for row in rows]


def text_report(
    report: dict[str, Any],
    bill: list[dict[str, Any]] | None = None,
    month: dt.datetime | None = None,
) -> str:
    """The KPIs as plain-text tables (the whole store), and a month's bill per team if given."""
    data = report["data"]
    budget = data.get("budget") or [{}]
    as_of = budget[0].get("AsOf") or "the end of the data"
    tables = {
        "Tokens and cost per subscription and model (USD)": _rollup(
            data["calls_hourly"],
            ("SubscriptionId", "ProductId", "ModelName", "Currency"),
            ("Calls", "PromptTokens", "CompletionTokens", "TotalTokens", "Cost"),
        ),
        "429s by source (calls)": _rollup(
            data["throttling"], ("DeploymentName",), ("Requests", "ByApim", "ByBackend")
        ),
        "Latency (ms) per backend and deployment": data["latency"],
        "Token count coverage (calls)": _rollup(data["coverage"], ("Coverage",), ("Calls",)),
        "Dead letters (records)": _rollup(data["dead_letters"], ("Reason",), ("DeadLetters",)),
        f"Budget status, month to date at {as_of} (percent of the budget)": _columns(
            data.get("budget", []), _BUDGET_COLUMNS
        ),
        "Capacity use per deployment and backend (tokens per minute, percent of quota)": _columns(
            data.get("capacity", []), _CAPACITY_COLUMNS
        ),
    }
    if bill is not None:
        billed = f"{month:%Y-%m}" if month else "the month"
        tables[f"Chargeback of {billed} per team"] = _rollup(
            bill,
            ("Team", "CostCentre", "Currency"),
            _CHARGEBACK_SUMS,
        )
    out = []
    for title, rows in tables.items():
        out.append(f"\n== {title}")
        out.append(format_table(rows).rstrip("\n") if rows else "(none)")
    for name, error in report["errors"].items():
        out.append(f"\n!! {name}: {error}")
    return "\n".join(out) + "\n"


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or line separators."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _vendor(name: str) -> str:
    path = NODE_MODULES / _VENDOR[name]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingLibraryError(
            f"{path} is missing: the dashboard's charting library comes from npm (run `npm ci`)"
        ) from None
    return text.replace("</script", "<\\/script")


def _page(config: dict[str, Any]) -> str:
    page = _PAGE.read_text(encoding="utf-8")
    for name in _VENDOR:
        page = page.replace(f"/*__{name}__*/", _vendor(name))
    return page.replace("__CONFIG__", _script_json(config))


def html_report(report: dict[str, Any]) -> str:
    """The offline page: the rows embedded, filtered in the browser, nothing fetched."""
    return _page({"mode": "offline", "queries": QUERIES, **report})


def live_page() -> str:
    """The page ``serve`` serves: it runs :data:`QUERIES` on the same server's Kusto endpoint."""
    return _page({"mode": "live", "queries": QUERIES, "perPeriod": sorted(PER_PERIOD)})
