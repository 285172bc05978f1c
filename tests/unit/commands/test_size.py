"""The sizing model (``ingest/commands/size.py``): worked examples and monotonicity in the load."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import pytest

from ingest.commands import size as model
from ingest.commands.size import add_size_parser, cmd_size, size

ROOT = Path(__file__).resolve().parents[3]
LOADS = (0.5, 1, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10_000)
MODES = ("none", "redacted", "full")


def test_worked_example_50_calls_of_12_kb() -> None:
    s = size(50, 12_000, "none")
    events = 50 * 1.74 / 6.4
    assert s.events_per_second == pytest.approx(events)
    assert s.ingress_mb_per_second == pytest.approx(events * 12_000 / 1e6)
    assert (s.event_hubs_tier, s.throughput_units, s.partitions) == ("Standard", 1, 4)
    # 12 KB bodies: the worker is bound by events, not bytes: min(621, 17.6e6 / 12000).
    assert s.worker_events_per_second == 621
    assert (s.flex_instances, s.instance_memory_mb) == (1, 2048)
    # 3.4 events/s per partition: 32 events take 9.4 s, under host.json's 10 s.
    wait = 32 / (events / 4)
    assert s.batch_wait_seconds == pytest.approx(wait)
    assert s.batch_events == pytest.approx(32)
    assert s.lag_seconds == pytest.approx(wait + 32 / 621 + 30)
    assert s.adx_sealed_by == "time"


def test_worked_example_1000_calls_of_the_measured_size() -> None:
    s = size(1000, 28_500, "none")
    mb = 1000 * 1.74 / 6.4 * 28_500 / 1e6  # 7.75 MB/s
    assert s.throughput_units == math.ceil(mb) == 8
    assert s.partitions == 8  # one partition takes about 1 MB/s
    worker = min(621, 17.6e6 / 28_500)  # bytes bound: 617.5 events/s
    assert s.worker_events_per_second == pytest.approx(worker)
    assert s.parallelism == math.ceil(s.events_per_second / (worker * 0.5)) == 1
    assert s.event_hubs_tier == "Standard"


def test_quiet_traffic_waits_the_full_ten_seconds() -> None:
    s = size(1, 28_500, "none")
    assert s.batch_wait_seconds == 10
    assert s.batch_events == 1  # under one event per partition in 10 s: batches of one
    assert s.lag_seconds == pytest.approx(10 + 1 / s.worker_events_per_second + 30)
    assert s.throughput_units == 1


def test_beyond_standard_the_tier_changes() -> None:
    s = size(5000, 30_000, "full")
    assert s.throughput_units > model.EVENT_HUBS_STANDARD_MAX_TU
    assert s.event_hubs_tier == "Premium or Dedicated"


def test_large_bodies_and_batches_need_the_larger_instance() -> None:
    assert size(100, 100_000, "full", batch_events=1024).instance_memory_mb == 2048
    big = size(100, 200_000, "full", batch_events=1024)
    # 64 + (178 - 64) x 200000 / 28500 = 864 MB worker + 400 MB host > half of 2048.
    assert big.peak_worker_mb == pytest.approx(64 + 114 * 200_000 / 28_500)
    assert big.instance_memory_mb == 4096


def test_capture_modes_cost_more_workers() -> None:
    none, full = size(10_000, 28_500, "none"), size(10_000, 28_500, "full")
    assert full.worker_events_per_second < none.worker_events_per_second
    assert full.flex_instances > none.flex_instances
    assert full.adx_raw_mb_per_window > none.adx_raw_mb_per_window


@pytest.mark.parametrize("mode", MODES)
def test_monotonic_in_load(mode: str) -> None:
    previous = None
    for load in LOADS:
        s = size(load, 12_000, mode)
        if previous is not None:
            assert s.events_per_second > previous.events_per_second
            assert s.ingress_mb_per_second > previous.ingress_mb_per_second
            assert s.throughput_units >= previous.throughput_units
            assert s.partitions >= previous.partitions
            assert s.flex_instances >= previous.flex_instances
            assert s.adx_raw_mb_per_window > previous.adx_raw_mb_per_window
            # More traffic fills batches sooner: the wait never grows.
            assert s.batch_wait_seconds <= previous.batch_wait_seconds
        assert s.flex_instances <= s.partitions  # one reader per partition
        assert s.throughput_units >= 1
        assert s.partitions >= model.MIN_PARTITIONS
        previous = s


@pytest.mark.parametrize("mode", MODES)
def test_monotonic_in_body_size(mode: str) -> None:
    previous = None
    for body in (1_000, 4_000, 12_000, 28_500, 60_000, 120_000):
        s = size(2000, body, mode)
        if previous is not None:
            assert s.ingress_mb_per_second > previous.ingress_mb_per_second
            assert s.throughput_units >= previous.throughput_units
            assert s.flex_instances >= previous.flex_instances
            assert s.peak_worker_mb > previous.peak_worker_mb
            assert s.instance_memory_mb >= previous.instance_memory_mb
        previous = s


def test_rejects_what_was_not_measured() -> None:
    with pytest.raises(ValueError, match="capture mode"):
        size(10, 1000, "everything")
    with pytest.raises(ValueError, match="batch"):
        size(10, 1000, "none", batch_events=512)
    with pytest.raises(ValueError, match="body bytes"):
        size(10, 0, "none")


def test_measured_tables_cover_every_mode_and_batch() -> None:
    tables = (
        model.MEASURED_EVENTS_PER_SECOND,
        model.MEASURED_MB_PER_SECOND,
        model.MEASURED_PEAK_RSS_MB,
    )
    for table in tables:
        assert set(table) == set(MODES)
        assert all(set(row) == {64, 256, 1024} for row in table.values())
    assert all(
        peak >= model.MEASURED_BASELINE_RSS_MB
        for row in model.MEASURED_PEAK_RSS_MB.values()
        for peak in row.values()
    )


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_size_parser(parser.add_subparsers(dest="verb"))
    return parser.parse_args(["size", *argv])


def test_the_verb_prints_the_sizing(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("--calls-per-second", "50", "--body-bytes", "12000", "--capture-text", "none")
    assert args.handler is cmd_size
    assert cmd_size(args) == 0
    out = capsys.readouterr().out
    assert "Standard, 1 TU, 4 partitions" in out
    assert "1 instance(s) of 2048 MB" in out
    assert "sealed by time" in out
    assert cmd_size(_parse("--calls-per-second", "50", "--body-bytes", "12000", "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["throughput_units"] == 1
    assert data["adx_batching"]["MaximumBatchingTimeSpan"] == "00:00:30"


def test_instance_sizes_are_documented_flex_sizes_that_infra_allows() -> None:
    # Every size the model proposes is a Flex Consumption size with at least a worker's core.
    assert set(model.INSTANCE_MEMORY_MB) <= set(model.FLEX_INSTANCE_CORES)
    assert all(
        model.FLEX_INSTANCE_CORES[memory] >= model.WORKER_CORES
        for memory in model.INSTANCE_MEMORY_MB
    )
    # ... and exactly the sizes infra/main.bicep accepts.
    bicep = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    allowed = re.search(r"@allowed\(\[([^\]]*)\]\)\s*param instanceMemoryMB", bicep)
    assert allowed is not None
    assert sorted(int(size) for size in allowed.group(1).split()) == list(model.INSTANCE_MEMORY_MB)
