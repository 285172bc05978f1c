"""A local HTTP endpoint that speaks the Kusto REST protocol as far as the real SDK needs it.

It answers the SDK's cloud-metadata request, records every management command it receives, and
answers each one with a one-table v1 response or, when the test says so, with a Kusto error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

METADATA = {
    "AzureAD": {
        "LoginEndpoint": "https://login.microsoftonline.com",
        "LoginMfaRequired": False,
        "KustoClientAppId": "db662dc1-0cfe-4e1c-a843-19a68e65be58",
        "KustoClientRedirectUri": "https://microsoft/kustoclient",
        "KustoServiceResourceId": "https://kusto.dev.kusto.windows.net",
        "FirstPartyAuthorityUrl": "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    },
    "dSTS": {},
}
"""The cloud metadata a public-cloud cluster serves at /v1/rest/auth/metadata."""

Reply = tuple[int, dict[str, Any]]
"""HTTP status and JSON body."""


def table_reply(columns: list[tuple[str, str]], rows: list[list[Any]]) -> Reply:
    """A v1 management response with one table."""
    return 200, {
        "Tables": [
            {
                "TableName": "Table_0",
                "Columns": [
                    {"ColumnName": name, "DataType": kind.capitalize(), "ColumnType": kind}
                    for name, kind in columns
                ],
                "Rows": rows,
            }
        ]
    }


def error_reply(status: int, code: str, message: str, *, permanent: bool) -> Reply:
    """A Kusto error body, as the service returns it."""
    return status, {
        "error": {
            "code": code,
            "message": message,
            "@type": "Kusto.Data.Exceptions.SemanticException"
            if permanent
            else "Kusto.Common.Svc.Exceptions.ThrottledException",
            "@message": message,
            "@permanent": permanent,
        }
    }


@dataclass
class Recorded:
    """A request the endpoint received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""


@dataclass
class KustoEndpoint:
    """The running endpoint: its URL, what it received, and how it answers."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answer: Callable[[Recorded], Reply] = lambda _: table_reply([("Result", "string")], [["ok"]])

    @property
    def commands(self) -> list[str]:
        """Management commands in the order received."""
        return [r.body["csl"] for r in self.requests if r.path == "/v1/rest/mgmt"]

    @property
    def streamed(self) -> list[Recorded]:
        """Streaming-ingestion requests in the order received."""
        return [r for r in self.requests if r.path.startswith("/v1/rest/ingest/")]


@contextmanager
def kusto_endpoint(*, keep_alive: bool = False) -> Iterator[KustoEndpoint]:
    """Start an endpoint on a free loopback port; stop it afterwards.

    ``keep_alive``: HTTP/1.1, connections stay open between requests (as a cluster's do). Only for
    clients that send a Content-Length with every body (management commands, queued ingestion):
    a chunked streaming-ingestion body would be left in the connection.
    """
    endpoint = KustoEndpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/v1/rest/auth/metadata"):
                self._send(200, METADATA)
            else:
                self._send(404, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            is_json = "json" in self.headers.get("Content-Type", "") and not self.path.startswith(
                "/v1/rest/ingest/"
            )
            body = json.loads(raw or b"{}") if is_json else {}
            recorded = Recorded(self.path, dict(self.headers), body, raw)
            endpoint.requests.append(recorded)
            self._send(*endpoint.answer(recorded))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def kusto_endpoints(count: int, *, keep_alive: bool = False) -> Iterator[list[KustoEndpoint]]:
    """``count`` endpoints, each on its own port (one per simulated partition reader)."""
    with ExitStack() as stack:
        yield [stack.enter_context(kusto_endpoint(keep_alive=keep_alive)) for _ in range(count)]
