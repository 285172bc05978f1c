"""What every benchmark prints under its figures: the machine, the date, and the figures as JSON."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine() -> str:
    """The machine the figures were measured on: architecture, cores, Python."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def footer(how: str = "") -> str:
    """The line under a benchmark's table: when, where, and ``how`` (e.g. one process per case)."""
    return f"measured {datetime.now(UTC):%Y-%m-%d} on {machine()}" + (f"; {how}" if how else "")


def write_json(path: str | None, results: list[dict[str, Any]]) -> None:
    """The figures and the machine as JSON at ``path`` (nothing without one)."""
    if path:
        Path(path).write_text(
            json.dumps({"machine": machine(), "results": results}, indent=2) + "\n",
            encoding="utf-8",
        )
