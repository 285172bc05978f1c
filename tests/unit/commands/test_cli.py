"""``python -m ingest`` as a user runs it: flatten, and what every verb refuses clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APIM, ROOT, fixture_path

VERBS = {"simulate", "replay", "query", "report", "serve", "kusto", "reference"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ingest flatten ARGS``, or another verb when the first argument names one."""
    verb = [] if args and args[0] in VERBS else ["flatten"]
    return subprocess.run(
        [sys.executable, "-m", "ingest", *verb, *args],
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


def test_a_payload_without_time_takes_the_fallback_time_when_one_is_given(tmp_path: Path) -> None:
    payload = tmp_path / "no_time.jsonl"
    payload.write_text(
        json.dumps({"subscriptionId": "sub-a", "deploymentName": "gpt-4o", "promptTokens": 5})
        + "\n"
    )
    refused = json.loads(_run(str(payload)).stdout)
    assert refused["table"] == "IngestDeadLetters"
    assert refused["row"]["Reason"] == "bad_timestamp"
    assert "--fallback-time" in refused["row"]["Detail"]
    kept = _run("--fallback-time", "2025-10-01T08:00:00+02:00", str(payload))
    row = json.loads(kept.stdout)["row"]
    assert (row["Timestamp"], row["SubscriptionId"], row["PromptTokens"]) == (
        "2025-10-01T06:00:00.0000000Z",
        "sub-a",
        5,
    )
    # The same time on every replay: the record's id and its row do not change.
    again = json.loads(_run("--fallback-time", "2025-10-01T06:00:00Z", str(payload)).stdout)
    assert again["row"] == row
    bad = _run("--fallback-time", "soon", str(payload))
    assert bad.returncode == 2
    assert "is not an ISO 8601 time" in bad.stderr


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--rate", "-5"], "is not in (0, 60000]"),
        (["simulate", "--rate", "0"], "is not in (0, 60000]"),
        (["simulate", "--rate", "nan"], "is not in (0, 60000]"),
        (["simulate", "--hours", "inf"], "is not in (0, 8784]"),
        (["simulate", "--start", "yesterday"], "is not an ISO 8601 time"),
        (["replay", "x.jsonl", "--batch", "-1"], "is less than 1"),
        (["replay", "x.jsonl", "--workers", "two"], "is not a whole number"),
        (["report", "--month", "2025-13"], "`2025-13` is not a month (YYYY-MM)"),
        (["report", "--month", "October"], "`October` is not a month (YYYY-MM)"),
        (["report", "--csv", "bill.csv"], "report --csv needs --month YYYY-MM"),
    ],
)
def test_bad_arguments_are_refused_without_a_traceback(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = _run(*args, "--out" if args[0] == "simulate" else "--db", str(tmp_path / "out"))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("verb", ["query", "report"])
def test_a_store_that_does_not_exist_is_not_created(verb: str, tmp_path: Path) -> None:
    db = tmp_path / "nowhere.duckdb"
    args = [verb, "--db", str(db)] + (["ModelPrices | count"] if verb == "query" else [])
    done = _run(*args)
    assert done.returncode == 2
    assert f"no local store at `{db}`" in done.stderr
    assert "Traceback" not in done.stderr
    assert not db.exists()


def test_a_report_with_a_failed_kpi_prints_the_rest_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.commands import cli

    class Store:
        def query(self, text: str) -> list[dict[str, object]]:
            if "Throttling(" in text:
                raise RuntimeError("Throttling() is broken")
            return []

        def close(self) -> None:
            pass

    monkeypatch.setattr(cli, "_existing_store", lambda path: Store())
    assert cli.main(["report", "--db", str(tmp_path / "store.duckdb")]) == 1
    out, err = capsys.readouterr()
    assert "== Latency (ms) per backend and deployment" in out  # the others are printed
    assert "!! throttling: Throttling() is broken" in out
    assert "report: 1 KPI queries failed: throttling" in err


def test_the_default_store_missing_points_at_the_demos_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.commands import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["query", "ModelPrices | count"]) == 2
    assert "`make demo` filled" not in capsys.readouterr().err  # no demo store: no such hint
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "demo.duckdb").write_bytes(b"")
    assert cli.main(["report"]) == 2
    err = capsys.readouterr().err
    assert "no local store at `.local/apimlogs.duckdb`" in err
    assert "`make demo` filled `.local/demo.duckdb` (add --db .local/demo.duckdb)" in err
    assert not (tmp_path / ".local" / "apimlogs.duckdb").exists()


AZURE_CLUSTER = ("--cluster", "https://x.kusto.windows.net", "--database", "d", "--no-auth")


@pytest.mark.parametrize(
    "args",
    [
        ["kusto", "apply", *AZURE_CLUSTER],
        ["reference", "load", "teams", "kusto/reference/teams.sample.csv", *AZURE_CLUSTER],
    ],
)
def test_no_authentication_to_a_cluster_in_azure_is_refused_with_a_message(
    args: list[str],
) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert "no authentication is for a local endpoint" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_event_hub_that_cannot_be_reached_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from azure.eventhub.exceptions import ConnectError

    from ingest.commands import cli
    from ingest.commands import send as eventhub

    class Client:
        def __enter__(self) -> Client:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def unreachable(*args: object, **kwargs: object) -> tuple[int, int]:
        raise ConnectError("Name or service not known")

    monkeypatch.setattr(eventhub, "producer", lambda *args: Client())
    monkeypatch.setattr(eventhub, "send", unreachable)
    path = fixture_path("chat_nonstream")
    code = cli.main(["send", str(path), "--eventhub", "hub", "--namespace", "ns.invalid"])
    assert code == 1
    err = capsys.readouterr().err
    assert "cannot send to event hub `hub` in ns.invalid (0 events sent before)" in err
    assert "Name or service not known" in err


def test_simulate_counts_the_events_it_writes_as_replay_will(tmp_path: Path) -> None:
    import re

    done = _run("simulate", "--out", str(tmp_path), "--hours", "6", "--rate", "20")
    assert done.returncode == 0, done.stderr
    said = re.search(r"simulate: (\d+) events \((\d+) distinct, (\d+) sent again", done.stderr)
    assert said is not None, done.stderr
    written, distinct, again = map(int, said.groups())
    lines = (tmp_path / "events.jsonl").read_bytes().count(b"\n")
    assert written == lines == distinct + again
    assert again > 0  # six hours at 20 calls a minute repeat a few events
