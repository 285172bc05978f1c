"""``serve`` under load and abuse: Kusto's limits hold, and a bad request is a 4xx, not a crash."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoServiceError

from ingest.commands.serve import MAX_RECORDS, LocalKustoServer
from ingest.sinks.local.kql import local_function_declarations
from ingest.sinks.local.store import LocalSink

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    store = LocalSink(Path(tmp_path_factory.mktemp("serve")) / "store.duckdb")
    server = LocalKustoServer(
        store.con, port=0, functions=local_function_declarations(), quiet=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url, server.database
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def _client(url: str) -> KustoClient:
    return KustoClient(KustoConnectionStringBuilder.with_no_authentication(url))


def _post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/v1/rest/query", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _claim(url: str, length: int) -> tuple[int, str]:
    """A request announcing ``length`` bytes of body and sending none."""
    import http.client
    from urllib.parse import urlparse

    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    connection.putrequest("POST", "/v1/rest/query")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    response = connection.getresponse()
    try:
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_a_result_past_the_record_limit_is_an_error_that_says_what_to_do(
    served: tuple[str, str],
) -> None:
    url, database = served
    client = _client(url)
    with pytest.raises(KustoServiceError, match="E_QUERY_RESULT_SET_TOO_LARGE"):
        client.execute(database, f"range x from 1 to {MAX_RECORDS + 10} step 1")
    rows = client.execute(database, f"range x from 1 to {MAX_RECORDS} step 1 | count")
    assert rows.primary_results[0][0]["Count"] == MAX_RECORDS


def test_a_result_past_the_size_limit_is_an_error_that_says_what_to_do(
    served: tuple[str, str],
) -> None:
    url, database = served
    client = _client(url)
    wide = 'range x from 1 to 70000 step 1 | extend s = strrep("a", 1000)'  # 70 MB of JSON
    with pytest.raises(KustoServiceError, match=r"larger than 64 MB.*E_QUERY_RESULT_SET_TOO_LARGE"):
        client.execute(database, wide)
    rows = client.execute(database, wide.replace("70000", "50000") + " | summarize n = count()")
    assert rows.primary_results[0][0]["n"] == 50000
    assert len(client.execute(database, wide.replace("70000", "50000")).primary_results[0]) == 50000


def test_a_database_it_does_not_serve_is_named_to_the_sdk(served: tuple[str, str]) -> None:
    url, database = served
    with pytest.raises(KustoServiceError, match=f"is not attached.*serving '{database}'"):
        _client(url).execute("no-such-database", "print n = 1")


def test_query_errors_name_the_closest_known_names_as_query_does(
    served: tuple[str, str],
) -> None:
    url, database = served
    client = _client(url)
    for csl, said in [
        ("ApimRequest | take 1", "unknown table `ApimRequest`; did you mean `ApimRequests`"),
        ("ApimRequests | project StatusCod", "unknown column `StatusCod`; did you mean"),
        ("LlmCall(ago(1d), now())", "unknown function `LlmCall()`; did you mean `LlmCalls()`"),
    ]:
        with pytest.raises(KustoServiceError, match=re.escape(said)):
            client.execute(database, csl)


def test_malformed_and_oversized_bodies_are_refused_with_4xx(served: tuple[str, str]) -> None:
    url, _ = served
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = _post(url, deep)
    assert status == 400
    assert "nested too deep" in body or "malformed" in body
    status, body = _post(url, b"{not json")
    assert status == 400
    status, body = _claim(url, 64 << 20)  # refused before a byte of it is read
    assert status == 413
    assert "at most" in body
    # The server is still up.
    (row,) = _client(url).execute("default", "print n = 1").primary_results[0]
    assert row["n"] == 1


@contextmanager
def _server(store: LocalSink, max_running: int) -> Iterator[LocalKustoServer]:
    server = LocalKustoServer(store.con, port=0, quiet=True, max_running=max_running)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSink]:
    sink = LocalSink(Path(tmp_path_factory.mktemp("concurrent")) / "store.duckdb", for_queries=True)
    yield sink
    sink.close()


def _run(url: str, query: str, timeout: float | None = None) -> tuple[str, float]:
    """A query's outcome ("rows: ..." or the error's text) and when it came (monotonic)."""
    properties = ClientRequestProperties()
    if timeout is not None:
        properties.set_option(
            ClientRequestProperties.request_timeout_option_name, timedelta(seconds=timeout)
        )
    try:
        response = _client(url).execute("default", query, properties)
        outcome = f"rows: {[list(r) for r in response.primary_results[0]]}"
    except KustoServiceError as exc:
        outcome = str(exc)
    return outcome, time.monotonic()


ENDLESS = (
    "range x from 1 to 1000000 step 1 | extend k = 1"
    " | join kind=inner (range y from 1 to 1000000 step 1 | extend k = 1) on k | count"
)
"""A count over 10^12 joined rows: hours of work for DuckDB, in little memory."""


def test_a_query_past_its_timeout_is_stopped_while_other_clients_are_answered(
    store: LocalSink,
) -> None:
    with _server(store, max_running=3) as server, ThreadPoolExecutor(2) as pool:
        url = server.url
        slow = [pool.submit(_run, url, ENDLESS, 5) for _ in range(2)]
        fast = [_run(url, f"print n = {n}", 60) for n in range(3)]  # another client
        slow_outcomes = [future.result(timeout=120) for future in slow]
        # The fast queries ran beside the slow ones, and answered before their timeouts came.
        assert [outcome for outcome, _ in fast] == [f"rows: [[{n}]]" for n in range(3)]
        assert max(at for _, at in fast) < min(at for _, at in slow_outcomes)
        for outcome, _ in slow_outcomes:
            assert "timed out" in outcome
        # And the timed-out queries stopped, although they had hours of work left.
        deadline = time.monotonic() + 60
        while server.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.running == 0


def test_a_step_duckdb_does_not_interrupt_is_answered_at_its_timeout_and_holds_its_slot(
    store: LocalSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What DuckDB does not interrupt (building the list of a huge `range`), simulated: the
    # query's thread waits until the test lets it go, whatever the interrupts.
    from ingest.commands import serve

    let_go = threading.Event()
    run_on = serve._run_on

    def stuck_or_real(server: Any, cursor: Any, cancelled: Any, csl: str, *rest: Any) -> Any:
        if "stuck" in csl:
            let_go.wait(120)
        return run_on(server, cursor, cancelled, csl, *rest)

    monkeypatch.setattr(serve, "_run_on", stuck_or_real)
    with _server(store, max_running=2) as server, ThreadPoolExecutor(1) as pool:
        url = server.url
        try:
            first = _run(url, "print stuck = 1", 2)[0]
            assert "timed out" in first  # answered at its timeout, the step still running
            assert _run(url, "print n = 1")[0] == "rows: [[1]]"  # the other slot
            assert "timed out" in _run(url, "print stuck = 2", 2)[0]
            busy = _run(url, "print n = 2", 2)[0]  # both slots held by stuck steps
            assert "the store is busy" in busy
            later = pool.submit(_run, url, "print n = 3", 60)
        finally:
            let_go.set()
        assert later.result(timeout=120)[0] == "rows: [[3]]"  # slots come back as steps end


def test_the_sdks_request_properties_are_honoured(served: tuple[str, str]) -> None:
    # The SDK sends them as a JSON string: its parameters and options reach the query.
    url, database = served
    properties = ClientRequestProperties()
    properties.set_parameter("n", 41)
    query = "declare query_parameters(n: long); print m = n + 1"
    response = _client(url).execute(database, query, properties)
    assert [list(r) for r in response.primary_results[0]] == [[42]]
