"""``python -m ingest serve``: the local store over the Kusto REST protocol, with Kusto's limits.

``duckdb-kql``'s server answers the real Kusto clients on 127.0.0.1, read-only. On top of it this
module adds what a shared endpoint needs and ADX itself enforces: a default per-query timeout
(a request may still set ``servertimeout``), a result limit (ADX's 500,000 records: more is an
error that says how to get the rows another way, not a server holding gigabytes), a bound on the
request body, and a 400 for a body that is not a sound JSON document (deep nesting included),
never a closed connection with a traceback. Queries run one at a time on the store's connection.
The timeout is duckdb-kql's (it interrupts the DuckDB connection): a query DuckDB does not stop
on an interrupt (seen here with a 4-billion-row ``range``) still keeps the others waiting.

``GET /`` (and ``/dashboard``) answers a browser with the dashboard page of ``report``: it posts
the report's queries to this same server's ``/v1/rest/query`` (same origin), so choosing a period,
a team or a model re-runs the KQL on the store. A client asking for JSON still gets the endpoint's
description at ``/``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from duckdb_kql import server as kusto_server
from duckdb_kql.errors import KqlError

DEFAULT_TIMEOUT = "00:00:30"
"""Per-query timeout when the request sets none (ADX's default is 4 minutes; a laptop's
dashboard wants an answer sooner, and queries run one at a time)."""

MAX_RECORDS = 500_000
"""ADX's default result truncation limit (``truncationmaxrecords``)."""

MAX_REQUEST_BYTES = 1 << 20
"""Largest request body taken: a query, its parameters and options."""


class ResultTooLargeError(KqlError):
    """The result passed the record limit (ADX: E_QUERY_RESULT_SET_TOO_LARGE)."""


@cache
def _dashboard() -> bytes:
    """The live dashboard page, built once (its libraries are read from ``node_modules``)."""
    from ingest.commands.report import live_page

    return live_page().encode("utf-8")


DASHBOARD_PATHS = ("/dashboard", "/dashboard.html")
"""Where the page is served; ``/`` too, for a client that accepts HTML (a browser)."""


class _Handler(kusto_server._Handler):
    """The dashboard page, and a 4xx for oversized and malformed bodies, not a dropped line."""

    def do_GET(self) -> None:
        route = self.path.split("?", 1)[0].rstrip("/")
        wants_page = route in DASHBOARD_PATHS or (
            route == "" and "text/html" in self.headers.get("Accept", "")
        )
        if not wants_page or not self._is_local():
            super().do_GET()
            return
        from ingest.commands.report import MissingLibraryError

        try:
            body = _dashboard()
        except MissingLibraryError as exc:
            self._send(500, kusto_server.error_response(str(exc), code="Internal"))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # the page's scripts are inline and it talks to this origin only
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:",
        )
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
            self._send(
                413,
                kusto_server.error_response(
                    f"request body of `{length}` bytes: at most {MAX_REQUEST_BYTES} are taken"
                ),
            )
            self.close_connection = True
            return
        try:
            super().do_POST()
        except RecursionError:
            self._send(400, kusto_server.error_response("malformed request body: nested too deep"))


class LocalKustoServer(kusto_server.KustoRestServer):
    """The store's Kusto endpoint with a default timeout and a result limit."""

    def __init__(self, con: Any, **kwargs: Any) -> None:
        super().__init__(con, **kwargs)
        self.RequestHandlerClass = _Handler

    def run(
        self,
        csl: str,
        parameters: dict[str, Any] | None = None,
        database: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> kusto_server.Result:
        """Run with a default timeout; a query asks for one record past the limit, to know."""
        options = {"servertimeout": DEFAULT_TIMEOUT, **(options or {})}
        limited = not csl.lstrip().startswith(".") and str(
            options.get("notruncation", "")
        ).lower() not in ("true",)
        if limited:
            csl = f"{csl.rstrip().rstrip(';')}\n| take {MAX_RECORDS + 1}"
        result = super().run(csl, parameters, database, options)
        if limited and len(result.rows) > MAX_RECORDS:
            raise ResultTooLargeError(
                f"the result has more than {MAX_RECORDS:,} records "
                "(E_QUERY_RESULT_SET_TOO_LARGE): summarize, filter or `take` fewer rows"
            )
        return result
