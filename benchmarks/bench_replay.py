"""Replay throughput and memory: a generated corpus of ~1 million records into the local store.

Simulates traffic to a JSON-lines file (streamed to disk, never held in memory), then runs
``python -m ingest replay`` on it in a child process and reports records/s (wall time of the whole
command, start-up and final checkpoint included) and peak memory: the largest sum of the resident
sets of the replay and its worker processes, sampled every 50 ms from /proc (a sum of RSS counts
shared pages once per process, so it over-states). Targets on the 2-core machine: 50,000 records/s,
peak memory under 300 MB whatever the size. Not a test: numbers only.

    python benchmarks/bench_replay.py [--records 1000000] [--rate 120]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.commands.simulate import DEFAULT_START, simulate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=120.0, help="simulated calls per minute")
    parser.add_argument(
        "replay_args", nargs="*", help="more `replay` options, after --, e.g. -- --workers 0"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        events = Path(folder) / "events.jsonl"
        # About 1.8 records per call: size the period to reach the record count.
        hours = args.records / 1.8 / args.rate / 60
        bodies, simulator = simulate(3, DEFAULT_START, hours, args.rate)
        with events.open("wb") as out:
            for body in bodies:
                out.write(body + b"\n")
            out.flush()
            os.fsync(out.fileno())  # the corpus's write-back must not run during the timed replay
        truth = simulator.truth
        size = events.stat().st_size / 1e6
        print(f"corpus: {truth.events:,} events, {truth.records:,} records, {size:,.0f} MB")
        started = time.perf_counter()
        command = [sys.executable, "-m", "ingest", "replay", str(events)]
        command += ["--db", str(Path(folder) / "bench.duckdb"), *args.replay_args]
        child = subprocess.Popen(command, cwd=ROOT)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss(child.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if child.returncode:
            raise SystemExit(f"replay failed: exit code {child.returncode}")
        print(
            f"replay: {truth.records / seconds:,.0f} records/s ({seconds:,.1f} s), "
            f"peak memory {peak / 2**20:,.0f} MB (sum of RSS over the replay's processes)"
        )


def tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants (Linux /proc)."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        proc = Path("/proc") / str(pid)
        try:
            status = (proc / "status").read_text()
            for task in (proc / "task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the process ended meanwhile
            continue
        total += next(
            (
                int(line.split()[1]) * 1024
                for line in status.splitlines()
                if line.startswith("VmRSS:")
            ),
            0,
        )
    return total


if __name__ == "__main__":
    main()
