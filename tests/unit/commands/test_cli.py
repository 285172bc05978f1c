"""``python -m ingest flatten`` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import APIM, ROOT, fixture_path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", "flatten", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CAPTURE_TEXT": "full"},
    )


def test_flatten_prints_rows_and_dead_letters_then_counts(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe not json")
    inputs = [fixture_path("poison_records"), fixture_path("chat_nonstream"), garbage]
    done = _run(*map(str, inputs))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    tables = [line["table"] for line in lines]
    assert tables.count("ApimLogsLanding") == 2
    assert tables.count("IngestDeadLetters") == 7 + 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"flatten: events=3 records=10 rows=2 dead_letters=8 bytes="
        f"{sum(p.stat().st_size for p in inputs)}"
    )
    # CAPTURE_TEXT from the environment is honoured.
    chat = [
        line["row"]
        for line in lines
        if line["row"].get("CorrelationId") == "3f6d2a9c-1b7e-4c3f-9a51-8e2d7c0b4a11"
    ]
    assert chat[0]["PromptText"].startswith("system: You are a helpful assistant.")


def test_unreadable_file_is_reported_and_fails_after_the_rest(tmp_path: Path) -> None:
    done = _run(str(tmp_path / "missing.json"), str(fixture_path("chat_nonstream")))
    assert done.returncode == 1
    assert "cannot read" in done.stderr
    assert len(done.stdout.splitlines()) == 1


def test_capture_text_flag_overrides_the_environment() -> None:
    done = _run("--capture-text", "none", str(fixture_path("chat_nonstream")))
    row = json.loads(done.stdout)["row"]
    assert row["PromptText"] == ""


def test_bad_setting_is_a_configuration_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "flatten", str(APIM / "chat_nonstream.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CAPTURE_TEXT": "all"},
    )
    assert done.returncode == 2
    assert "`CAPTURE_TEXT`" in done.stderr
