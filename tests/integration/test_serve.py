"""``serve`` under load and abuse: Kusto's limits hold, and a bad request is a 4xx, not a crash."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
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
