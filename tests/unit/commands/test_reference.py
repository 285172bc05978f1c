"""Reference CSV files: typed rows, every problem refused with its line, the ADX command, the local
table replaced, and the command line's refusals."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.commands.reference import (
    MAX_PROBLEMS,
    REFERENCES,
    ReferenceDataError,
    local_rows,
    read_csv,
    set_or_replace,
)
from ingest.kql.scripts import KUSTO_DIR
from ingest.schema import load_table
from ingest.sinks.local.store import LocalSink
from tests.conftest import ROOT

SAMPLES = KUSTO_DIR / "reference"


def _file(tmp_path: Path, text: str, name: str = "ref.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(kind: str, path: Path) -> str:
    with pytest.raises(ReferenceDataError) as raised:
        read_csv(REFERENCES[kind], path)
    return str(raised.value)


def test_every_reference_table_is_a_table_of_the_scripts() -> None:
    from ingest.kql.generate import TABLE_FOLDERS, TABLES

    for reference in REFERENCES.values():
        assert reference.table in TABLES
        assert TABLE_FOLDERS[reference.table] == "reference"
        names = {c.name for c in load_table(reference.table).columns}
        assert {*reference.required, *reference.key, *reference.positive} <= names


@pytest.mark.parametrize("kind", sorted(REFERENCES))
def test_the_sample_files_load(kind: str) -> None:
    reference = REFERENCES[kind]
    rows = read_csv(reference, SAMPLES / f"{kind}.sample.csv")
    assert rows
    columns = [c.name for c in load_table(reference.table).columns]
    assert all(list(row) == columns for row in rows)  # every column, in the table's order


def test_values_are_typed_and_optional_columns_may_be_left_out(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "\ufeffBackendId , DeploymentName,TokensPerMinute,EffectiveFrom\n"  # a BOM, any order
        "b1,gpt-4o, 150000 ,2025-10-01\n"
        "\n"  # a blank line
        "b2,gpt-4o,+2000,2025-10-01T12:30:00+02:00\n",
    )
    rows = read_csv(REFERENCES["capacity"], path)
    assert rows == [
        {
            "DeploymentName": "gpt-4o",
            "BackendId": "b1",
            "TokensPerMinute": 150_000,
            "ProvisionedUnits": None,  # not in the file
            "EffectiveFrom": dt.datetime(2025, 10, 1),
        },
        {
            "DeploymentName": "gpt-4o",
            "BackendId": "b2",
            "TokensPerMinute": 2_000,
            "ProvisionedUnits": None,
            "EffectiveFrom": dt.datetime(2025, 10, 1, 10, 30),  # in UTC
        },
    ]


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("SubscriptionId,Team,Owner", "unknown `Owner`"),
        ("SubscriptionId,CostCentre", "missing `Team`"),
        ("SubscriptionId,Team,Team", "repeated `Team`"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_header_is_refused_naming_the_columns(tmp_path: Path, header: str, said: str) -> None:
    message = _problems("teams", _file(tmp_path, header + "\nsub-a,Alpha,x\n" if header else ""))
    assert "ref.csv:1: the header must name the columns of Teams" in message
    assert "SubscriptionId,Team,CostCentre" in message
    assert said in message


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_loaded(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "Team,MonthlyAmount,Currency,AlertThresholdPercent,EffectiveFrom\n"
        "Alpha,100,USD,80,2025-10-01\n"  # 2: good
        "Beta,1 000,USD,,\n"  # 3
        "Gamma,100,usd,,\n"  # 4
        "Delta,-5,USD,0,\n"  # 5: two problems
        ",100,USD,,\n"  # 6
        "Alpha,90,USD,,2025-10-01\n"  # 7: the key of line 2 again
        "Eta,100,USD,,next month\n"  # 8
        "Theta,1e400,USD,,\n"  # 9
        "Iota,100,USD\n"  # 10
        "Kappa\tTab,100,USD,,\n",  # 11
    )
    message = _problems("budgets", path)
    assert message.startswith(f"{path}: not loaded into Budgets, 10 problems:")
    for line, said in [
        (3, "`MonthlyAmount` value `1 000` is not a number"),
        (4, "`Currency` must be an ISO currency code of three capital letters (USD), not `usd`"),
        (5, "`MonthlyAmount` must be above 0, not -5"),
        (5, "`AlertThresholdPercent` must be above 0, not 0"),
        (6, "`Team` is empty"),
        (7, "repeats line 2 (Team = Alpha, Currency = USD, EffectiveFrom = 2025-10-01 00:00:00)"),
        (8, "`EffectiveFrom` value `next month` is not an ISO 8601 date or time"),
        (9, "`MonthlyAmount` value `1e400` is too large"),
        (10, "3 values for the header's 5 columns"),
        (11, "`Team` value `Kappa\tTab` holds a control character"),
    ]:
        assert f"{path}:{line}: {said}" in message, said


def test_whole_numbers_and_long_lists_of_problems(tmp_path: Path) -> None:
    rows = "".join(f"gpt-4o,b{i},1.5\n" for i in range(MAX_PROBLEMS + 5))
    path = _file(tmp_path, "DeploymentName,BackendId,TokensPerMinute\n" + rows)
    message = _problems("capacity", path)
    assert "`TokensPerMinute` value `1.5` is not a whole number" in message
    assert message.count("is not a whole number") == MAX_PROBLEMS
    assert message.endswith("... and 5 more")


def test_a_file_without_rows_is_refused(tmp_path: Path) -> None:
    message = _problems("teams", _file(tmp_path, "SubscriptionId,Team,CostCentre\n\n"))
    assert "no rows" in message
    assert "refusing to empty Teams" in message


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    assert "cannot read it" in _problems("teams", tmp_path / "missing.csv")
    broken = tmp_path / "latin1.csv"
    broken.write_bytes(b"SubscriptionId,Team\nsub-a,\xe9quipe\n")
    assert "cannot read it" in _problems("teams", broken)


def test_the_adx_command_replaces_the_table_with_literals_in_column_order(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "Currency,Team,MonthlyAmount,EffectiveFrom\n"
        'USD,"Say ""hi"" \\ bye",1234.5,2025-10-01\n'
        "EUR,Beta,0.00001,\n",
    )
    command = set_or_replace(REFERENCES["budgets"], read_csv(REFERENCES["budgets"], path))
    assert command == (
        ".set-or-replace Budgets <|\n"
        "datatable(Team: string, MonthlyAmount: real, Currency: string, "
        "AlertThresholdPercent: real, EffectiveFrom: datetime) [\n"
        '    "Say \\"hi\\" \\\\ bye", 1234.5, "USD", real(null), '
        "datetime(2025-10-01T00:00:00.000000Z),\n"
        '    "Beta", 1e-05, "EUR", real(null), datetime(null)\n'
        "]"
    )


def test_local_rows_carry_times_as_the_store_reads_them() -> None:
    reference = REFERENCES["budgets"]
    rows = local_rows(reference, read_csv(reference, SAMPLES / "budgets.sample.csv"))
    assert {row["EffectiveFrom"] for row in rows} >= {"2025-10-01T00:00:00.000000Z"}
    table = load_table(reference.table)
    assert all(table.problems(row) == [] for row in rows)


def test_the_local_store_replaces_the_whole_table(tmp_path: Path) -> None:
    reference = REFERENCES["teams"]
    sink = LocalSink(":memory:")
    try:
        sink.replace("Teams", [{"SubscriptionId": "sub-old", "Team": "Old", "CostCentre": ""}])
        rows = read_csv(reference, SAMPLES / "teams.sample.csv")
        sink.replace("Teams", local_rows(reference, rows))
        got = sink.query("Teams")
    finally:
        sink.close()
    assert sorted(got, key=str) == sorted(rows, key=str)


def _ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_the_command_line_prints_the_command_and_refuses_bad_files(tmp_path: Path) -> None:
    sample = str(SAMPLES / "teams.sample.csv")
    printed = _ingest("reference", "load", "teams", sample, "--print")
    assert printed.returncode == 0, printed.stderr
    reference = REFERENCES["teams"]
    assert printed.stdout == set_or_replace(reference, read_csv(reference, Path(sample))) + "\n"
    bad = _file(tmp_path, "SubscriptionId,Team\nsub-a,\n")
    refused = _ingest("reference", "load", "teams", str(bad), "--db", str(tmp_path / "x.duckdb"))
    assert refused.returncode == 1
    assert f"error: {bad}: not loaded into Teams, 1 problem:\n  {bad}:2: `Team` is empty" in (
        refused.stderr
    )
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cluster", "https://c.kusto.windows.net"], "needs both --cluster URL and --database"),
        (["--cluster", "https://c", "--database", "d", "--db", "x"], "not both"),
    ],
)
def test_the_command_line_refuses_half_a_destination(args: list[str], said: str) -> None:
    done = _ingest("reference", "load", "teams", str(SAMPLES / "teams.sample.csv"), *args)
    assert done.returncode == 2
    assert said in done.stderr


def test_the_command_line_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    done = _ingest("reference", "load", "teams", str(SAMPLES / "teams.sample.csv"), "--db", str(db))
    assert done.returncode == 2
    assert "no local store" in done.stderr
    assert not db.exists()


def test_a_line_break_inside_a_quoted_value_is_refused_and_lines_stay_counted(
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, 'SubscriptionId,Team\nsub-a,"Two\nlines"\nsub-b,\nsub-c,Gamma\n')
    message = _problems("teams", path)
    assert f"{path}:3: `Team` value `Two\nlines` holds a control character" in message
    assert f"{path}:4: `Team` is empty" in message


# ---------------------------------------------------------------------------------------------
# Teams: a subscription's team from a date on


def test_teams_without_effective_from_load_as_before(tmp_path: Path) -> None:
    path = _file(tmp_path, "SubscriptionId,Team,CostCentre\nsub-a,Alpha,CC-1\nsub-b,Beta,\n")
    assert read_csv(REFERENCES["teams"], path) == [
        {"SubscriptionId": "sub-a", "Team": "Alpha", "CostCentre": "CC-1", "EffectiveFrom": None},
        {"SubscriptionId": "sub-b", "Team": "Beta", "CostCentre": "", "EffectiveFrom": None},
    ]
    # the same subscription twice, without dates, is two rows for one key
    twice = _file(tmp_path, "SubscriptionId,Team\nsub-a,Alpha\nsub-a,Beta\n", name="twice.csv")
    message = _problems("teams", twice)
    assert f"{twice}:3: repeats line 2 (SubscriptionId = sub-a, EffectiveFrom = (empty))" in message


def test_teams_take_one_row_per_subscription_and_effective_from(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "EffectiveFrom,SubscriptionId,Team,CostCentre\n"
        ",sub-a,Alpha,CC-1\n"  # from the beginning
        "2025-10-15,sub-a,Beta,CC-2\n"  # moved mid-October
        "2025-11-01T09:00:00+01:00,sub-a,Gamma,\n",  # and again, in UTC
    )
    rows = read_csv(REFERENCES["teams"], path)
    assert [(r["Team"], r["EffectiveFrom"]) for r in rows] == [
        ("Alpha", None),
        ("Beta", dt.datetime(2025, 10, 15)),
        ("Gamma", dt.datetime(2025, 11, 1, 8)),
    ]
    assert set_or_replace(REFERENCES["teams"], rows) == (
        ".set-or-replace Teams <|\n"
        "datatable(SubscriptionId: string, Team: string, CostCentre: string, "
        "EffectiveFrom: datetime) [\n"
        '    "sub-a", "Alpha", "CC-1", datetime(null),\n'
        '    "sub-a", "Beta", "CC-2", datetime(2025-10-15T00:00:00.000000Z),\n'
        '    "sub-a", "Gamma", "", datetime(2025-11-01T08:00:00.000000Z)\n'
        "]"
    )
    twice = _file(
        tmp_path,
        "SubscriptionId,Team,EffectiveFrom\nsub-a,Alpha,2025-10-15\nsub-a,Beta,2025-10-15T00:00\n",
        name="twice.csv",
    )
    message = _problems("teams", twice)
    assert (
        f"{twice}:3: repeats line 2 (SubscriptionId = sub-a, EffectiveFrom = 2025-10-15 00:00:00)"
    ) in message


@pytest.mark.parametrize("value", ["15/10/2025", "2025-13-01", "yesterday"])
def test_a_team_row_with_a_bad_date_is_refused(tmp_path: Path, value: str) -> None:
    path = _file(tmp_path, f"SubscriptionId,Team,EffectiveFrom\nsub-a,Alpha,\nsub-a,Beta,{value}\n")
    message = _problems("teams", path)
    assert message.startswith(f"{path}: not loaded into Teams, 1 problem:")
    assert (
        f"{path}:3: `EffectiveFrom` value `{value}` is not an ISO 8601 date or time (2025-10-01)"
    ) in message


@pytest.mark.parametrize(
    "day", ["0001-01-01", "0999-12-31T23:59:59.999999", "2025-10-01", "9999-12-31"]
)
def test_a_date_of_any_year_is_written_with_four_digits_and_read_back(
    tmp_path: Path, day: str
) -> None:
    """A year before 1000 is written ``0999``, not ``999`` (which ``%Y`` gives on Linux, and which
    neither KQL nor the local store reads as a date)."""
    reference = REFERENCES["budgets"]
    rows = read_csv(
        reference, _file(tmp_path, f"Team,MonthlyAmount,Currency,EffectiveFrom\nA,1,USD,{day}\n")
    )
    moment = dt.datetime.fromisoformat(day)
    literal = set_or_replace(reference, rows).splitlines()[2].split(", ")[-1]
    assert literal == f"datetime({moment.isoformat(timespec='microseconds')}Z)"
    sink = LocalSink(":memory:")
    try:
        sink.replace(reference.table, local_rows(reference, rows))
        got = sink.query(reference.table)
    finally:
        sink.close()
    assert [row["EffectiveFrom"] for row in got] == [moment]
