"""The replay's progress line."""

from __future__ import annotations

from pathlib import Path

from ingest.commands.progress import input_bytes, progress_line


def test_a_known_size_gives_a_share_a_bar_and_the_time_left() -> None:
    line = progress_line(done_bytes=25_000_000, total_bytes=100_000_000, records=50_000, seconds=10)
    assert "25.0%" in line
    assert "[######..................]" in line
    assert "50,000 records  5,000/s" in line
    assert "ETA 0:00:30" in line  # 75 MB left at 2.5 MB/s


def test_the_share_stays_below_100_until_the_end() -> None:
    assert "99.9%" in progress_line(120, 100, 10, 1.0)


def test_a_stream_has_no_share_only_counts() -> None:
    line = progress_line(10, None, 1_000, 4.0)
    assert line == "replay: 1,000 records  250/s  0:00:04"


def test_input_bytes_add_up_files_and_give_up_on_streams(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 5)
    assert input_bytes([str(a), str(b)]) == 15
    assert input_bytes([str(a), "-"]) is None
