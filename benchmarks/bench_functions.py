"""Cost of the stored functions as history grows, the range asked held fixed (the local store).

ADX cannot run here, so the shape of the claim "cost grows with the range asked, not with history"
is measured on the local store, which runs the same KQL (duckdb-kql on DuckDB): a store is filled
with N synthetic calls (``LlmUsage`` and ``ApimRequests`` rows, 100,000 calls a day, so more calls
is more days of history), then each function is timed over the last day, and ``LlmCalls`` also over
all of history for contrast. Numbers only, not a test.

    python benchmarks/bench_functions.py [--calls 1000000 5000000] [--repeat 3] [--all-history]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.sinks.local import kql

PER_DAY = 100_000
START = "2025-01-01 00:00:00"

FUNCTIONS = {
    "LlmCalls (last day)": "LlmCalls({start}, {end}) | count",
    "UsageAndCost (last day)": "UsageAndCost({start}, {end}) | count",
    "UsageCoverage (last day)": "UsageCoverage({start}, {end}) | count",
    "TopCallers (last day)": "TopCallers({start}, {end}, 10) | count",
    "Throttling (last day)": "Throttling({start}, {end}) | count",
    "Latency (last day)": "Latency({start}, {end}) | count",
}
ALL_HISTORY = {
    "LlmCalls (all history)": "LlmCalls(datetime(1900-01-01), datetime(2100-01-01)) | count",
}
"""For contrast: what every call cost before functions took a range (``--all-history``)."""


def fill(con: object, calls: int) -> tuple[str, str]:
    """Insert ``calls`` calls, PER_DAY a day from START; returns the last day's range as KQL."""
    step_ms = 86_400_000 // PER_DAY
    con.execute(  # type: ignore[attr-defined]
        f"""
        INSERT INTO LlmUsage BY NAME
        SELECT TIMESTAMP '{START}' + to_milliseconds(i * {step_ms}) AS Timestamp,
               md5(i::VARCHAR) AS RecordId, md5('c' || i::VARCHAR) AS CorrelationId,
               'GatewayLogs' AS Category, 'team-' || (i % 5)::VARCHAR AS SubscriptionId,
               'product-' || (i % 5)::VARCHAR AS ProductId, 'user-' || (i % 50)::VARCHAR AS UserId,
               'backend-' || (i % 2)::VARCHAR AS BackendId, '' AS Region, '' AS BackendRegion,
               'gpt-4o' AS DeploymentName, 'gpt-4o-2024-08-06' AS ModelName, '' AS ApiVersion,
               'chat' AS OperationKind, false AS IsStreaming, 200 AS ResponseCode,
               100 + i % 50 AS PromptTokens, 50 AS CompletionTokens, 150 + i % 50 AS TotalTokens,
               0 AS CachedTokens, 0 AS ReasoningTokens, 'response' AS UsageSource
        FROM range({calls}) t(i)
        """
    )
    con.execute(  # type: ignore[attr-defined]
        f"""
        INSERT INTO ApimRequests BY NAME
        SELECT TIMESTAMP '{START}' + to_milliseconds(i * {step_ms}) AS Timestamp,
               md5(i::VARCHAR) AS RecordId, md5('c' || i::VARCHAR) AS CorrelationId,
               'team-' || (i % 5)::VARCHAR AS SubscriptionId, 'backend-' || (i % 2)::VARCHAR
               AS BackendId, 'gpt-4o' AS DeploymentName, CASE WHEN i % 50 = 0 THEN 429 ELSE 200
               END AS ResponseCode, CASE WHEN i % 50 = 0 THEN '4xx' ELSE '2xx' END AS StatusClass,
               CASE WHEN i % 100 = 0 THEN 'apim' WHEN i % 50 = 0 THEN 'backend' ELSE '' END
               AS ThrottledBy, 200 + i % 3000 AS DurationMs, 180 + i % 2900 AS BackendTimeMs,
               'chat' AS OperationKind
        FROM range({calls}) t(i)
        """
    )
    days = calls // PER_DAY
    last = f"datetime({START[:10]}) + {days - 1}d"
    return last, f"datetime({START[:10]}) + {days}d"


def main() -> None:
    """Fill a store per history size and time each function over the last day."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all-history", action="store_true", help="also time LlmCalls over all")
    args = parser.parse_args()
    functions = {**FUNCTIONS, **(ALL_HISTORY if args.all_history else {})}
    results: dict[str, dict[int, float]] = {name: {} for name in functions}
    for calls in args.calls:
        with tempfile.TemporaryDirectory(prefix="bench-functions-") as folder:
            con = kql.connect(str(Path(folder) / "store.duckdb"))
            con.execute("SET memory_limit = '4GB'")
            started = time.perf_counter()
            start, end = fill(con, calls)
            print(
                f"{calls:,} calls ({calls // PER_DAY} days) filled in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            for name, template in functions.items():
                query = template.format(start=start, end=end)
                times = []
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    kql.query(con, query)
                    times.append(time.perf_counter() - began)
                results[name][calls] = min(times)
                print(f"  {name:<26} {min(times):7.3f} s", flush=True)
            con.close()
    sizes = args.calls
    print()
    print("| function | " + " | ".join(f"{c:,} calls" for c in sizes) + " | growth |")
    print("| --- | " + " | ".join("---" for _ in sizes) + " | --- |")
    for name, by_size in results.items():
        cells = " | ".join(f"{by_size[c]:.3f} s" for c in sizes)
        growth = by_size[sizes[-1]] / by_size[sizes[0]] if by_size[sizes[0]] else 0.0
        print(f"| {name} | {cells} | {growth:.1f}x |")


if __name__ == "__main__":
    main()
