"""Azurite (the Azure Storage emulator, from npm) started on free loopback ports for a test run."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's fixed, publicly documented development account and key (not a secret)."""

_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)"
)


@dataclass(frozen=True)
class Azurite:
    """Endpoints of a running Azurite."""

    blob: str
    queue: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.blob}/{ACCOUNT};QueueEndpoint={self.queue}/{ACCOUNT};"
        )

    def container_sas_url(self, container: str) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            ACCOUNT,
            container,
            account_key=KEY,
            permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
            expiry=datetime.now(UTC) + timedelta(hours=2),
        )
        return f"{self.blob}/{ACCOUNT}/{container}?{sas}"

    def queue_sas_url(self, queue: str) -> str:
        from azure.storage.queue import QueueSasPermissions, generate_queue_sas

        sas = generate_queue_sas(
            ACCOUNT,
            queue,
            account_key=KEY,
            permission=QueueSasPermissions(read=True, add=True, process=True),
            expiry=datetime.now(UTC) + timedelta(hours=2),
        )
        return f"{self.queue}/{ACCOUNT}/{queue}?{sas}"


@contextmanager
def azurite() -> Iterator[Azurite]:
    """Start Azurite in memory on free ports; stop it afterwards."""
    if not AZURITE.exists():
        raise RuntimeError("Azurite is missing: run `npm ci` in the project root (make test does)")
    workdir = tempfile.mkdtemp(prefix="azurite-")
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--silent",
            "--location",
            workdir,
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--queuePort",
            "0",
            "--tablePort",
            "0",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    endpoints: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    try:
        while len(endpoints) < 3:
            line = process.stdout.readline()
            if not line:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not start (exit {process.poll()})")
                continue
            m = _LISTENING.search(line)
            if m:
                endpoints[m.group(1)] = m.group(2).rstrip("/")
        yield Azurite(blob=endpoints["Blob"], queue=endpoints["Queue"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
