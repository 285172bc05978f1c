"""Headline KPIs over the local store, as text and as a self-contained HTML dashboard.

The KPIs come from the same stored functions the ADX dashboard uses (``LlmCalls``,
``Throttling``, ``Latency``, ``UsageCoverage``, over a time range). The HTML page embeds its data
and a small script that draws the charts as SVG: it opens offline, with no CDN.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Protocol

from ingest.commands.table import format_table, format_value


class Queryable(Protocol):
    """A store that answers KQL (the local store, or anything with the same ``query``)."""

    def query(self, kql: str) -> list[dict[str, Any]]:
        """Rows of a KQL query."""
        ...


ALL_TIME = "datetime(1900-01-01), datetime(2100-01-01)"

QUERIES = {
    "usage": f"UsageAndCost({ALL_TIME})"
    " | order by SubscriptionId asc, ProductId asc, ModelName asc, Currency asc",
    "hourly": f"LlmCalls({ALL_TIME})"
    " | summarize TotalTokens = sum(TotalTokens) by Hour = bin(Timestamp, 1h) | order by Hour asc",
    "throttling": f"Throttling({ALL_TIME}) | summarize Requests = sum(Requests),"
    " ByApim = sum(ThrottledByApim), ByBackend = sum(ThrottledByBackend) by BackendId"
    " | order by BackendId asc",
    "latency": f"Latency({ALL_TIME}) | order by BackendId asc, DeploymentName asc",
    "coverage": f"UsageCoverage({ALL_TIME}) | summarize Calls = sum(Calls) by Coverage"
    " | order by Coverage asc",
    "dead_letters": "IngestDeadLetters | summarize DeadLetters = dcount(RecordId) by Reason"
    " | order by Reason asc",
}
"""Each KPI's KQL, run on the local store exactly as written."""


def kpis(store: Queryable) -> dict[str, list[dict[str, Any]]]:
    """Every KPI's rows."""
    return {name: store.query(kql) for name, kql in QUERIES.items()}


def text_report(data: dict[str, list[dict[str, Any]]]) -> str:
    """The KPIs as plain-text tables."""
    titles = {
        "usage": "Tokens and cost per subscription and model",
        "throttling": "429s by source, per backend",
        "latency": "Latency (ms) per backend and deployment",
        "coverage": "Token count coverage (calls)",
        "dead_letters": "Dead letters",
    }
    out = []
    for name, title in titles.items():
        rows = data[name]
        out.append(f"\n== {title}")
        out.append(format_table(rows).rstrip("\n") if rows else "(none)")
    return "\n".join(out) + "\n"


_PAGE = Path(__file__).with_name("dashboard.html")
"""The page template: placeholders for the usage table and the data; its script draws the charts."""


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no calls)</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(data: dict[str, list[dict[str, Any]]]) -> str:
    """The dashboard page: data embedded, charts drawn by an inline script, nothing fetched."""
    payload = json.dumps(data, default=str).replace("</", "<\\/")
    page = _PAGE.read_text(encoding="utf-8")
    return page.replace("__DATA__", payload).replace("__TABLE__", _table(data["usage"]))
