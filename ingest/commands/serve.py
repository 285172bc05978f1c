"""``python -m ingest serve``: the local store over the Kusto REST protocol, with Kusto's limits.

``duckdb-kql``'s server answers the real Kusto clients on 127.0.0.1, read-only. On top of it this
module adds what a shared endpoint needs and ADX itself enforces: a default per-query timeout
(a request may still set ``servertimeout``), a result limit (ADX's 500,000 records: more is an
error that says how to get the rows another way, not a server holding gigabytes), a bound on the
request body, and a 400 for a body that is not a sound JSON document (deep nesting included),
never a closed connection with a traceback.

Queries run concurrently, each on a DuckDB cursor of its own (a connection to the same store) in
a thread of its own, at most ``MAX_RUNNING`` at once. The request waits for its query until its
timeout, then answers with a timeout error whatever DuckDB is doing, and the query is interrupted
(again and again, until it stops). A step DuckDB does not interrupt (building the list of a
``range`` of hundreds of millions of rows) keeps running, and keeps its slot, until it ends: it
delays no other query while fewer than ``MAX_RUNNING`` are running; a query that waits for a slot
past its own timeout is answered as busy.

``GET /`` (and ``/dashboard``) answers a browser with the dashboard page of ``report``: it posts
the report's queries to this same server's ``/v1/rest/query`` (same origin), so choosing a period,
a team or a model re-runs the KQL on the store. A client asking for JSON still gets the endpoint's
description at ``/``.
"""

from __future__ import annotations

import io
import json
import threading
import time
from functools import cache
from typing import Any

import orjson
from duckdb_kql import server as kusto_server
from duckdb_kql.errors import KqlError

DEFAULT_TIMEOUT = "00:00:30"
"""Per-query timeout when the request sets none (ADX's default is 4 minutes; a laptop's
dashboard wants an answer sooner)."""

MAX_RUNNING = 4
"""Queries DuckDB runs at once (a cancelled one counts until it has stopped): they share the
store's memory limit and cores."""

INTERRUPT_EVERY = 0.05
"""Seconds between interrupts of a cancelled query that has not stopped yet."""

MAX_RECORDS = 500_000
"""ADX's default result truncation limit (``truncationmaxrecords``)."""

MAX_RESULT_BYTES = 64 << 20
"""ADX's default result size limit (``truncationmaxsize``), measured as the rows' JSON."""

MAX_REQUEST_BYTES = 1 << 20
"""Largest request body taken: a query, its parameters and options."""


class ResultTooLargeError(KqlError):
    """The result passed the record limit (ADX: E_QUERY_RESULT_SET_TOO_LARGE)."""


class QueryTimeoutError(KqlError):
    """The query ran past its timeout (``servertimeout``): it was cancelled."""


class ServerBusyError(KqlError):
    """Every query slot stayed taken until the request's timeout."""


class QueryError(KqlError):
    """A query the store could not run, said as ``query`` says it (unknown names, closest ones)."""


class _Query:
    """One query on a cursor of its own, run on a thread of its own; cancellable from another."""

    def __init__(self, server: LocalKustoServer, run: Any) -> None:
        self._server = server
        self._run = run
        self._lock = threading.Lock()
        self._cursor: Any = None
        self.cancelled = False
        self.done = threading.Event()
        self.result: kusto_server.Result | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        threading.Thread(target=self._main, name="kql-query", daemon=True).start()

    def _main(self) -> None:
        try:
            cursor = self._server.cursor()
            try:
                with self._lock:
                    self._cursor = cursor
                if not self.cancelled:
                    self.result = self._run(cursor, lambda: self.cancelled)
            finally:
                with self._lock:
                    self._cursor = None
                cursor.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the request's thread
            self.error = exc
        finally:
            self._server.release()
            self.done.set()

    def cancel(self) -> None:
        """Interrupt the query now, and again until it has stopped (on a thread of its own)."""
        self.cancelled = True
        threading.Thread(target=self._interrupt, name="kql-cancel", daemon=True).start()

    def _interrupt(self) -> None:
        while True:
            with self._lock:
                if self._cursor is not None:
                    self._cursor.interrupt()
            if self.done.wait(INTERRUPT_EVERY):
                return


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
        connection = self.rfile
        try:
            self.rfile = io.BytesIO(self._properties_as_object(connection.read(int(length))))
            super().do_POST()
        except RecursionError:
            self._send(400, kusto_server.error_response("malformed request body: nested too deep"))
        finally:
            self.rfile = connection  # the next request of a kept-alive connection

    def _send(self, status: int, payload: Any) -> None:
        # The Kusto SDK reads a 404 as a wrong URL ("the requested endpoint does not exist") and
        # drops the body: a database this server does not serve is said as a bad request.
        error = payload.get("error") if isinstance(payload, dict) else None
        code = error.get("code", "") if isinstance(error, dict) else ""
        if status == 404 and code == "General_DatabaseNotFound":
            status = 400
        super()._send(status, payload)

    def _properties_as_object(self, body: bytes) -> bytes:
        """The body with its request ``properties`` as an object, as the endpoint reads them.

        The Kusto SDKs send them as a JSON string (``ClientRequestProperties.to_json()``): read as
        they came, their options (``servertimeout``) and query parameters were ignored.
        """
        try:
            request = json.loads(body)
        except ValueError:
            return body  # the endpoint answers it with its 400
        if not isinstance(request, dict) or not isinstance(request.get("properties"), str):
            return body
        try:
            request["properties"] = json.loads(request["properties"])
        except ValueError:
            request["properties"] = {}
        body = json.dumps(request).encode()
        self.headers.replace_header("Content-Length", str(len(body)))
        return body


class LocalKustoServer(kusto_server.KustoRestServer):
    """The store's Kusto endpoint: concurrent queries, a default timeout and a result limit."""

    def __init__(self, con: Any, *, max_running: int = MAX_RUNNING, **kwargs: Any) -> None:
        super().__init__(con, **kwargs)
        self.RequestHandlerClass = _Handler
        self.max_running = max_running
        self._slots = threading.BoundedSemaphore(max_running)
        self._running = 0

    def cursor(self) -> Any:
        """A connection of its own to the store, for one query."""
        from ingest.sinks.local.kql import cursor

        with self._lock:  # the store's connection makes it: one thread at a time
            return cursor(self._con)

    def release(self) -> None:
        """A query has stopped: its slot is free."""
        with self._lock:
            self._running -= 1
        self._slots.release()

    @property
    def running(self) -> int:
        """Queries DuckDB is running (cancelled ones included, until they have stopped)."""
        return self._running

    def run(
        self,
        csl: str,
        parameters: dict[str, Any] | None = None,
        database: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> kusto_server.Result:
        """Run with a default timeout; a query asks for one record past the limit, to know."""
        from duckdb_kql.kusto.client import _seconds

        started = time.monotonic()
        options = {"servertimeout": DEFAULT_TIMEOUT, **(options or {})}
        limited = not csl.lstrip().startswith(".") and str(
            options.get("notruncation", "")
        ).lower() not in ("true",)
        if limited:
            csl = f"{csl.rstrip().rstrip(';')}\n| take {MAX_RECORDS + 1}"
        timeout = (
            None
            if str(options.get("norequesttimeout", "")).lower() == "true"
            else _seconds(options.get("servertimeout"))
        )
        if not self._slots.acquire(timeout=timeout):  # None: as long as it takes
            raise ServerBusyError(
                f"the store is busy: {self.max_running} queries are running (a cancelled one "
                f"holds its place until DuckDB stops it), none ended within {timeout:g} s; "
                "try again"
            )

        with self._lock:
            self._running += 1

        def execute(cursor: Any, cancelled: Any) -> kusto_server.Result:
            # The parent's own run, on this query's cursor and without its lock and deadline.
            return _run_on(self, cursor, cancelled, csl, parameters, database, options)

        query = _Query(self, execute)
        query.start()
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        if not query.done.wait(left):
            query.cancel()
            raise QueryTimeoutError(
                f"query timed out after {timeout:g} s (servertimeout): it was cancelled; "
                "filter to a shorter period, or set a longer servertimeout"
            )
        if query.error is not None:
            if _is_engine_error(query.error):
                from ingest.commands.query import explain_store_error

                raise QueryError(explain_store_error(str(query.error))) from query.error
            raise query.error
        result = query.result
        if result is None:  # cancelled before it ran: only a timeout cancels
            raise QueryTimeoutError(f"query timed out after {timeout} s (servertimeout)")
        if limited and len(result.rows) > MAX_RECORDS:
            raise ResultTooLargeError(
                f"the result has more than {MAX_RECORDS:,} records "
                "(E_QUERY_RESULT_SET_TOO_LARGE): summarize, filter or `take` fewer rows"
            )
        if limited and _larger_than(result.rows, MAX_RESULT_BYTES):
            raise ResultTooLargeError(
                f"the result is larger than {MAX_RESULT_BYTES >> 20} MB "
                "(E_QUERY_RESULT_SET_TOO_LARGE): project fewer or shorter columns, or fewer rows"
            )
        return result


def _is_engine_error(error: BaseException) -> bool:
    """Whether DuckDB or the KQL translation refused the query as written (not a policy answer)."""
    import duckdb
    from duckdb_kql.errors import KqlUnsupportedError

    if isinstance(error, KqlUnsupportedError):
        return "writes are disabled" not in str(error)  # a refused write stays a 403
    return isinstance(error, duckdb.Error)


def _larger_than(rows: Any, limit: int) -> bool:
    """Whether the rows, written as JSON, pass ``limit`` bytes (stops counting once they do)."""
    size = 0
    for row in rows:
        size += len(orjson.dumps(row, default=str))
        if size > limit:
            return True
    return False


def _run_on(
    server: LocalKustoServer,
    cursor: Any,
    cancelled: Any,
    csl: str,
    parameters: dict[str, Any] | None,
    database: str | None,
    options: dict[str, Any],
) -> kusto_server.Result:
    """``KustoRestServer.run``'s translation, execution and description, on one cursor."""
    from duckdb_kql.engine import kql
    from duckdb_kql.types import kusto_type

    target = database if database and database != "default" else None
    relation = kql(
        cursor,
        csl,
        parameters or None,
        target,
        server.allow_write,
        server.clusters,
        server.entity_groups,
        options.get("query_now"),
        functions=server.functions,
    )
    names = list(relation.columns)
    kinds = [kusto_type(t) for t in relation.types]
    if cancelled():
        raise QueryTimeoutError("query cancelled before it ran")
    rows = relation.fetchall()
    declared = kusto_server._declared_schema(csl)
    if declared is not None and len(declared) == len(names):
        columns = [
            kusto_server.RestColumn(d.name, kind, d.data_type, d.column_type)
            for d, kind in zip(declared, kinds, strict=True)
        ]
    else:
        columns = [
            kusto_server.RestColumn.derived(name, kind)
            for name, kind in zip(names, kinds, strict=True)
        ]
    return kusto_server.Result(columns, rows)
