"""Replay throughput and memory: a generated corpus of ~1 million records into the local store.

Simulates traffic to a JSON-lines file (streamed to disk, never held in memory), then runs
``python -m ingest replay`` on it in a child process and reports records/s and that process's peak
RSS. Targets on the 2-core machine: 50,000 records/s, peak RSS under 300 MB whatever the size.
Not a test: numbers only.

    python benchmarks/bench_replay.py [--records 1000000] [--rate 120]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.simulate import DEFAULT_START, simulate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=120.0, help="simulated calls per minute")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        events = Path(folder) / "events.jsonl"
        # About 1.8 records per call: size the period to reach the record count.
        hours = args.records / 1.8 / args.rate / 60
        bodies, simulator = simulate(3, DEFAULT_START, hours, args.rate)
        with events.open("wb") as out:
            for body in bodies:
                out.write(body + b"\n")
        truth = simulator.truth
        size = events.stat().st_size / 1e6
        print(f"corpus: {truth.events:,} events, {truth.records:,} records, {size:,.0f} MB")
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ingest",
                "replay",
                str(events),
                "--db",
                str(Path(folder) / "bench.duckdb"),
            ],
            cwd=ROOT,
            check=True,
        )
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"replay: {truth.records / seconds:,.0f} records/s ({seconds:,.1f} s), peak RSS {peak_mb:,.0f} MB"
        )


if __name__ == "__main__":
    main()
