"""The Real-Time Dashboard definition (the JSON ADX dashboards import), built from the tiles below.

The file has the shape the ADX web UI exports at schema version 60 (which newer web UIs import and
migrate): tiles with a description and every visual option of their type, queries referenced by
id, one ``manual-kusto`` data source. A Fabric Real-Time Dashboard takes the same definition as its
``RealTimeDashboard.json`` part, with a ``kusto-trident`` data source naming the KQL database
and workspace by item id instead of this ``manual-kusto`` one.

Every tile calls the stored functions and views of ``kusto/``; the dashboard's time range feeds
their ``start``/``end`` parameters through ``_startTime``/``_endTime``.
``python -m ingest kusto generate`` writes ``kusto/dashboard.json``; tests check that the file is
current, that every tile query passes the Kusto language service, and that it runs locally.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

NAMESPACE = uuid.UUID("6f1d9c3e-6a5b-4c1e-9d0a-5b7e2f4c8a11")
"""Ids are derived from names, so regenerating the file changes nothing that did not change."""

SCHEMA_VERSION = "60"
CLUSTER_PLACEHOLDER = "https://<cluster>.<region>.kusto.windows.net/"
DATABASE_PLACEHOLDER = "<database>"
TIME_RANGE = ("_startTime", "_endTime")
"""Variables of the dashboard's duration parameter."""


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: where it sits, how it draws, and its KQL."""

    page: str
    title: str
    visual: str
    query: str
    x: int
    y: int
    width: int = 12
    height: int = 8


TILES = (
    Tile(
        "Usage",
        "Tokens per hour by subscription",
        "timechart",
        "LlmCalls(_startTime, _endTime)\n"
        "| summarize TotalTokens = sum(TotalTokens) by bin(Timestamp, 1h), SubscriptionId",
        0,
        0,
    ),
    Tile("Usage", "Usage and cost", "table", "UsageAndCost(_startTime, _endTime)", 12, 0),
    Tile("Usage", "Top callers", "table", "TopCallers(_startTime, _endTime, 10)", 0, 8),
    Tile(
        "Usage",
        "Token count coverage (exact, estimated, missing)",
        "column",
        "UsageCoverage(_startTime, _endTime)",
        12,
        8,
    ),
    Tile(
        "Health",
        "429s by source (APIM policy vs Azure OpenAI backend)",
        "timechart",
        "Throttling(_startTime, _endTime)\n"
        "| summarize ThrottledByApim = sum(ThrottledByApim),"
        " ThrottledByBackend = sum(ThrottledByBackend) by Hour",
        0,
        0,
    ),
    Tile(
        "Health",
        "Latency percentiles by backend and deployment",
        "table",
        "Latency(_startTime, _endTime)",
        12,
        0,
    ),
    Tile(
        "Health",
        "Requests per status class",
        "column",
        'materialized_view("ApimRequestsDedup")\n'
        "| where Timestamp between (_startTime .. _endTime)\n"
        "| summarize Requests = count() by bin(Timestamp, 1h), StatusClass",
        0,
        8,
    ),
    Tile(
        "Health",
        "Dead letters by reason",
        "table",
        "DeadLetters(_startTime, _endTime)\n"
        "| summarize DeadLetters = sum(DeadLetters), LastSeen = max(LastSeen) by Reason",
        12,
        8,
    ),
    Tile(
        "Health",
        "Capacity use per deployment and backend (tokens per minute against quota, 429s by source)",
        "table",
        "CapacityUse(_startTime, _endTime)",
        0,
        16,
        width=24,
    ),
    Tile(
        "Finance",
        "Budget status, month to date at the end of the range",
        "table",
        "BudgetStatus(_endTime)",
        0,
        0,
        width=24,
        height=6,
    ),
    Tile(
        "Finance",
        "Chargeback of the month at the end of the range",
        "table",
        "Chargeback(_endTime - 1s)",
        0,
        6,
        width=24,
        height=10,
    ),
)
"""The dashboard's tiles, page by page."""


_CHART_OPTIONS: dict[str, Any] = {
    "multipleYAxes": {
        "base": {
            "id": "-1",
            "label": "",
            "columns": [],
            "yAxisMaximumValue": None,
            "yAxisMinimumValue": None,
            "yAxisScale": "linear",
            "horizontalLines": [],
        },
        "additional": [],
        "showMultiplePanels": False,
    },
    "hideLegend": False,
    "legendLocation": "bottom",
    "xColumnTitle": "",
    "xColumn": None,
    "yColumns": None,
    "seriesColumns": None,
    "xAxisScale": "linear",
    "verticalLine": "",
    "crossFilterDisabled": False,
    "drillthroughDisabled": False,
    "crossFilter": [],
    "drillthrough": [],
}
"""Chart tiles' options as the web UI exports a chart left at its defaults (columns inferred)."""

_TABLE_OPTIONS: dict[str, Any] = {
    "table__enableRenderLinks": True,
    "colorRulesDisabled": True,
    "colorStyle": "light",
    "crossFilterDisabled": False,
    "drillthroughDisabled": False,
    "crossFilter": [],
    "drillthrough": [],
    "table__renderLinks": [],
    "colorRules": [],
}
"""Table tiles' options as the web UI exports a table left at its defaults."""


def visual_options(visual: str) -> dict[str, Any]:
    """A tile's ``visualOptions``: every option the web UI writes for its visual type."""
    options: dict[str, Any] = copy.deepcopy(_TABLE_OPTIONS if visual == "table" else _CHART_OPTIONS)
    return options


def _id(*names: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(names)))


def dashboard() -> dict[str, Any]:
    """The dashboard definition."""
    source = _id("datasource")
    pages = list(dict.fromkeys(tile.page for tile in TILES))
    queries = []
    tiles = []
    for tile in TILES:
        query_id = _id("query", tile.page, tile.title)
        queries.append(
            {
                "id": query_id,
                "dataSource": {"kind": "inline", "dataSourceId": source},
                "text": tile.query,
                "usedVariables": [v for v in TIME_RANGE if v in tile.query],
            }
        )
        tiles.append(
            {
                "id": _id("tile", tile.page, tile.title),
                "title": tile.title,
                "description": "",
                "visualType": tile.visual,
                "pageId": _id("page", tile.page),
                "layout": {"x": tile.x, "y": tile.y, "width": tile.width, "height": tile.height},
                "queryRef": {"kind": "query", "queryId": query_id},
                "visualOptions": visual_options(tile.visual),
            }
        )
    return {
        "$schema": f"https://dataexplorer.azure.com/static/d/schema/{SCHEMA_VERSION}/dashboard.json",
        "id": _id("dashboard"),
        "eTag": _id("etag", "v1"),
        "schema_version": SCHEMA_VERSION,
        "title": "Azure OpenAI through APIM: usage, cost and health",
        "autoRefresh": {"enabled": True, "defaultInterval": "5m", "minInterval": "1m"},
        "tiles": tiles,
        "baseQueries": [],
        "parameters": [
            {
                "kind": "duration",
                "id": _id("parameter", "time-range"),
                "displayName": "Time range",
                "description": "",
                "beginVariableName": TIME_RANGE[0],
                "endVariableName": TIME_RANGE[1],
                "defaultValue": {"kind": "dynamic", "count": 7, "unit": "days"},
                "showOnPages": {"kind": "all"},
            }
        ],
        "dataSources": [
            {
                "id": source,
                "kind": "manual-kusto",
                "scopeId": "kusto",
                "name": "APIM logs",
                "clusterUri": CLUSTER_PLACEHOLDER,
                "database": DATABASE_PLACEHOLDER,
            }
        ],
        "pages": [{"id": _id("page", page), "name": page} for page in pages],
        "queries": queries,
    }


def dashboard_json() -> str:
    """The definition as the file holds it."""
    return json.dumps(dashboard(), indent=2) + "\n"


def with_time_range(query: str, start: str, end: str) -> str:
    """A tile query made standalone by declaring the dashboard's time variables."""
    return f"let {TIME_RANGE[0]} = {start};\nlet {TIME_RANGE[1]} = {end};\n{query}"
