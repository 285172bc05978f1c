"""``python -m ingest``: command-line verbs over the same code path the Functions app uses."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from ingest.commands.replay import BATCH_EVENTS, chunks
from ingest.config import CaptureMode, CoreSettings
from ingest.core.pipeline import Pipeline
from ingest.errors import ConfigError
from ingest.model import BatchCounts
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sources import SourceError, iter_events


def _settings(args: argparse.Namespace) -> CoreSettings:
    env = dict(os.environ)
    if args.capture_text:
        env["CAPTURE_TEXT"] = args.capture_text
    if args.mapping:
        env["POLICY_MAPPING_FILE"] = args.mapping
    settings = CoreSettings.from_env(env)
    if getattr(args, "fallback_time", None):
        settings = dataclasses.replace(settings, fallback_time=args.fallback_time)
    return settings


def cmd_flatten(args: argparse.Namespace) -> int:
    """Flatten files and print one JSON line per output row, then a count summary on stderr."""
    pipeline = Pipeline(_settings(args))
    out = sys.stdout.buffer
    total = BatchCounts()
    failed = False
    for path in args.paths:
        events = iter_events(path)
        try:
            for batch in chunks(events, BATCH_EVENTS):
                result = pipeline.process(batch)
                for row in result.rows:
                    out.write(orjson.dumps({"table": LANDING_TABLE, "row": row}) + b"\n")
                for dead in result.dead_letters:
                    out.write(orjson.dumps({"table": DEAD_LETTER_TABLE, "row": dead}) + b"\n")
                total.add(result.counts())
        except SourceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
    out.flush()
    counts = " ".join(f"{k}={v}" for k, v in total.as_dict().items())
    print(f"flatten: {counts}", file=sys.stderr)
    return 1 if failed else 0


def _kusto_apply(args: argparse.Namespace, *, seed_only: bool) -> int:
    from ingest.errors import IngestError
    from ingest.identity import credential
    from ingest.kql.apply import apply_statements
    from ingest.kql.scripts import Seed, declare, production_statements
    from ingest.sinks.adx import connect

    if not args.cluster or not args.database:
        print(f"kusto {args.action} needs --cluster URL and --database NAME", file=sys.stderr)
        return 2
    client = connect(args.cluster, None if args.no_auth else credential())
    statements = list(production_statements())
    if seed_only:  # the files a database script resource cannot run, whole: their policies too
        seeding = {s.file for s in statements if isinstance(declare(s), Seed)}
        statements = [s for s in statements if s.file in seeding]
    try:
        applied = apply_statements(client, args.database, statements, print)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.action}: {len(applied)} of {len(statements)} statements applied to {args.database}"
    )
    return 0


def cmd_kusto(args: argparse.Namespace) -> int:
    """Print, validate, apply or regenerate the ADX scripts."""
    from ingest.kql.scripts import KUSTO_DIR, full_script

    if args.action == "script":
        sys.stdout.write(full_script())
        return 0
    if args.action in ("apply", "seed"):
        return _kusto_apply(args, seed_only=args.action == "seed")
    if args.action == "validate":
        from ingest.kql.validate import validate

        errors, checked = validate()
        for error in errors:
            print(error, file=sys.stderr)
        print(
            f"validate: {checked['statements']} statements, {checked['policies']} update policies, "
            f"{len(errors)} errors",
            file=sys.stderr,
        )
        return 1 if errors else 0
    from ingest.kql.dashboard import dashboard_json
    from ingest.kql.generate import generate_scripts

    for name, text in {**generate_scripts(), "dashboard.json": dashboard_json()}.items():
        path = KUSTO_DIR / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'wrote' if changed else 'unchanged'} {path}", file=sys.stderr)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Publish recorded event bodies to a real Event Hub."""
    from ingest.commands import send as eventhub

    connection = (
        os.environ.get(args.connection_string_env, "") if args.connection_string_env else ""
    )
    if not args.namespace and not connection:
        print("send needs --namespace (or --connection-string-env)", file=sys.stderr)
        return 2
    client = eventhub.producer(args.namespace or "", args.eventhub, connection)
    total = 0
    with client:
        for path in args.paths:
            try:
                sent, _ = eventhub.send(
                    client, iter_events(path), partition_key=args.partition_key, report=print
                )
            except SourceError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            except eventhub.SEND_ERRORS as exc:  # unreachable, unknown, refused: said plainly
                where = args.namespace or "the connection string's namespace"
                print(
                    f"error: cannot send to event hub `{args.eventhub}` in {where} "
                    f"({total} events sent before): {getattr(exc, 'message', exc)}",
                    file=sys.stderr,
                )
                return 1
            total += sent
    print(f"send: {total} events to {args.eventhub}")
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    """Re-ingest the batches kept in the dead-letter container."""
    from ingest.config import Settings
    from ingest.sinks import adx

    # Redrive always queues: kept batches can be large, and latency no longer matters.
    sink = adx.sink_from_settings(Settings.from_env(os.environ), mode="queued")
    done, kept = adx.redrive(sink, print)
    print(f"redrive: {done} batches re-ingested, {kept} still kept")
    return 1 if kept else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write simulated APIM traffic (JSON lines of event bodies) and its ground truth."""
    from datetime import UTC, datetime
    from pathlib import Path

    from ingest.commands.simulate import simulate, write_truth

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    bodies, simulator = simulate(args.seed, start, args.hours, args.rate)
    events = out / "events.jsonl"
    with events.open("wb") as stream:
        for body in bodies:
            stream.write(body + b"\n")
    write_truth(simulator, str(out / "truth.json"))
    truth = simulator.truth
    print(  # the lines of the file (what replay counts), then the distinct events in them
        f"simulate: {truth.events + truth.duplicates} events ({truth.events} distinct, "
        f"{truth.duplicates} sent again as at-least-once delivery does, {truth.malformed} "
        f"malformed), {truth.records} distinct records -> {events}, {out / 'truth.json'}",
        file=sys.stderr,
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Push files through the Functions app's batch path into the local store."""
    from ingest.commands.progress import input_bytes, progress_line
    from ingest.commands.replay import ReplayStats, default_workers, replay
    from ingest.sinks.local.store import LocalSink

    total_bytes = input_bytes(args.paths)

    def progress(stats: ReplayStats) -> None:
        if sys.stderr.isatty():
            line = progress_line(
                stats.counts.bytes, total_bytes, stats.counts.records, stats.seconds
            )
            print(f"\r{line}", end="", file=sys.stderr)

    settings = _settings(args)
    workers = default_workers() if args.workers is None else args.workers
    sink = LocalSink(args.db)
    try:
        stats = replay(
            args.paths,
            sink,
            settings,
            workers=workers,
            batch_events=args.batch or BATCH_EVENTS,
            progress=progress,
        )
    finally:
        sink.close()
    for error in stats.errors:
        print(f"error: {error}", file=sys.stderr)
    counts = " ".join(f"{k}={v}" for k, v in stats.counts.as_dict().items())
    print(
        f"\rreplay: {counts} seconds={stats.seconds:.1f} rate={stats.rate:,.0f} records/s "
        f"workers={stats.workers} -> {args.db}",
        file=sys.stderr,
    )
    return 1 if stats.errors else 0


DEMO_DB = ".local/demo.duckdb"
"""The store `make demo` fills (not the default one: the demo starts it afresh every time)."""


def _existing_store(path: str) -> Any:
    """The local store at ``path``, refusing to create an empty one by mistake."""
    from pathlib import Path

    from ingest.sinks.local import StoreError
    from ingest.sinks.local.store import LocalSink

    if path != ":memory:" and not Path(path).is_file():
        demo = DEMO_DB if Path(DEMO_DB).is_file() else ""
        raise StoreError(
            f"no local store at `{path}`: "
            + (f"`make demo` filled `{demo}` (add --db {demo}); " if demo else "")
            + f"fill one with `python -m ingest replay FILE --db {path}`, "
            "or point --db at an existing one"
        )
    return LocalSink(path, for_queries=True)


def cmd_query(args: argparse.Namespace) -> int:
    """Run KQL on the local store; print a table, JSON or CSV."""
    from ingest.commands.query import explain_store_error, render
    from ingest.sinks.local import StoreError

    sink = _existing_store(args.db)
    try:
        rows = sink.query(args.kql)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - a query error is the user's, shown as such
        print(f"query error: {explain_store_error(str(exc))}", file=sys.stderr)
        return 1
    finally:
        sink.close()
    sys.stdout.buffer.write(render(rows, "json" if args.json else args.format))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the headline KPIs, write the HTML dashboard and a month's chargeback lines."""
    from pathlib import Path

    from ingest.commands.report import chargeback, chargeback_csv, html_report, kpis, text_report

    if args.csv and args.month is None:
        print("report --csv needs --month YYYY-MM (the month to bill)", file=sys.stderr)
        return 2
    sink = _existing_store(args.db)
    try:
        data = kpis(sink)
        bill = None if args.month is None else chargeback(sink, args.month)
    finally:
        sink.close()
    sys.stdout.write(text_report(data, bill, args.month))
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(html_report(data), encoding="utf-8")
        print(f"\nreport: dashboard written to {args.html}", file=sys.stderr)
    if args.csv and bill is not None:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        Path(args.csv).write_bytes(chargeback_csv(bill))
        print(
            f"report: {len(bill)} chargeback lines of {args.month:%Y-%m} written to {args.csv}",
            file=sys.stderr,
        )
    if data["errors"]:  # the others are drawn; a script still learns that the report is partial
        print(
            f"report: {len(data['errors'])} KPI queries failed: {', '.join(data['errors'])}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    """Replace a reference table (teams, budgets, capacity) with the rows of a CSV file."""
    from pathlib import Path

    from ingest.commands.reference import (
        REFERENCES,
        ReferenceDataError,
        local_rows,
        read_csv,
        set_or_replace,
    )
    from ingest.sinks.local import DEFAULT_DB

    reference = REFERENCES[args.kind]
    adx = bool(args.cluster or args.database)
    if adx and not (args.cluster and args.database):
        print("reference load needs both --cluster URL and --database NAME", file=sys.stderr)
        return 2
    if adx and args.db:
        print("reference load: --db (local store) or --cluster (ADX), not both", file=sys.stderr)
        return 2
    path = Path(args.file)
    try:
        rows = read_csv(reference, path)
    except ReferenceDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.print:
        sys.stdout.write(set_or_replace(reference, rows) + "\n")
        return 0
    if adx:
        from ingest.errors import IngestError
        from ingest.identity import credential
        from ingest.kql.apply import execute
        from ingest.sinks.adx import connect

        client = connect(args.cluster, None if args.no_auth else credential())
        try:
            execute(
                client,
                args.database,
                set_or_replace(reference, rows),
                f"loading {path} into {reference.table}",
            )
        except IngestError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        where = args.database
    else:
        where = args.db or str(DEFAULT_DB)
        sink = _existing_store(where)
        try:
            sink.replace(reference.table, local_rows(reference, rows))
        finally:
            sink.close()
    print(f"reference: {reference.table} in {where} replaced by the {len(rows)} rows of {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the local store over the Kusto REST protocol on 127.0.0.1 (read-only)."""
    from ingest.commands.serve import LocalKustoServer
    from ingest.sinks.local.kql import local_function_declarations

    sink = _existing_store(args.db)
    server = LocalKustoServer(
        sink.con,
        port=args.port,
        source=args.db,
        functions=local_function_declarations(),
        quiet=True,
    )
    print(
        f"serve: {args.db} as database `{server.database}` at {server.url} "
        f"(dashboard: {server.url}/dashboard; Ctrl-C stops)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sink.close()
    return 0


MAX_SIMULATED_HOURS = 24 * 366
"""A year of simulated traffic at most."""

MAX_SIMULATED_RATE = 60_000.0
"""Calls per minute at most (1,000 per second): more is a benchmark's job, not the simulator's."""


def _bounded(low: float, high: float) -> Any:
    """An argparse type: a finite number in ``(low, high]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a number") from None
        if not low < value <= high:  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"`{text}` is not in ({low:g}, {high:g}]")
        return value

    return parse


def _whole(minimum: int) -> Any:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"`{text}` is less than {minimum}")
        return value

    return parse


def _start_time(text: str) -> str:
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not an ISO 8601 time") from None
    return text


def _fallback_time(text: str) -> str:
    from ingest.core.coerce import TimestampError, to_datetime

    try:
        value = to_datetime(text, "--fallback-time")
    except TimestampError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"`{text}` is not an ISO 8601 time")
    return value


def _month(text: str) -> Any:
    from datetime import datetime

    try:
        return datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a month (YYYY-MM)") from None


def _inputs(parser: argparse.ArgumentParser, *, core: bool = True) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help=".json, .jsonl, .avro (Capture) or -"
    )
    if core:
        parser.add_argument(
            "--capture-text", choices=[m.value for m in CaptureMode], help="override CAPTURE_TEXT"
        )
        parser.add_argument(
            "--mapping", help="log-to-eventhub mapping file (overrides POLICY_MAPPING_FILE)"
        )
        parser.add_argument(
            "--fallback-time",
            type=_fallback_time,
            help="time (ISO 8601) of payloads that carry none: files have no enqueued time",
        )


def _store(parser: argparse.ArgumentParser) -> None:
    from ingest.sinks.local import DEFAULT_DB

    parser.add_argument("--db", default=str(DEFAULT_DB), help="DuckDB file of the local store")


def _kusto_parser(verbs: Any) -> None:
    kusto = verbs.add_parser("kusto", help="the ADX scripts in kusto/")
    kusto.add_argument(
        "action",
        choices=["script", "generate", "validate", "apply", "seed"],
        help="script: print every statement in order; generate: rewrite 10_tables/20_mappings "
        "from schemas/, and dashboard.json (the ADX dashboard); validate: check every "
        "statement with the Kusto language service; "
        "apply: run every statement against --cluster/--database; seed: only the files a "
        "database script resource cannot run (the price list and its table's policies)",
    )
    kusto.add_argument(
        "--cluster", help="cluster URL, e.g. https://mycluster.westeurope.kusto.windows.net"
    )
    kusto.add_argument("--database", help="database name")
    kusto.add_argument(
        "--no-auth",
        action="store_true",
        help="send no credential (a local Kusto emulator); default: DefaultAzureCredential",
    )
    kusto.set_defaults(handler=cmd_kusto)


def _reference_parser(verbs: Any) -> None:
    from ingest.commands.reference import REFERENCES

    reference = verbs.add_parser(
        "reference", help="reference tables (teams, budgets, capacity) from CSV files"
    )
    reference.add_argument("action", choices=["load"], help="load: replace the table with the file")
    reference.add_argument(
        "kind",
        choices=list(REFERENCES),
        help="teams (Teams), budgets (Budgets) or capacity (DeploymentCapacity)",
    )
    reference.add_argument("file", help="CSV file with a header naming the table's columns")
    reference.add_argument(
        "--db", help="the local store to load (default: the local store's default file)"
    )
    reference.add_argument("--cluster", help="load into ADX: the cluster URL")
    reference.add_argument("--database", help="load into ADX: the database name")
    reference.add_argument(
        "--no-auth",
        action="store_true",
        help="send no credential (a local Kusto emulator); default: DefaultAzureCredential",
    )
    reference.add_argument(
        "--print",
        action="store_true",
        help="only check the file and print the ADX command that loads it",
    )
    reference.set_defaults(handler=cmd_reference)


def _send_parser(verbs: Any) -> None:
    send = verbs.add_parser("send", help="publish event bodies to a real Event Hub (smoke test)")
    _inputs(send, core=False)
    send.add_argument(
        "--namespace", help="<namespace>.servicebus.windows.net (DefaultAzureCredential)"
    )
    send.add_argument("--eventhub", required=True, help="event hub name")
    send.add_argument(
        "--connection-string-env",
        help="name of an environment variable holding a connection string",
    )
    send.add_argument("--partition-key", help="send every event with this partition key")
    send.set_defaults(handler=cmd_send)


def _simulate_parser(verbs: Any) -> None:
    simulate = verbs.add_parser(
        "simulate", help="write simulated APIM traffic and its ground truth"
    )
    simulate.add_argument(
        "--out", default=".local/sim", help="folder for events.jsonl and truth.json"
    )
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--start", type=_start_time, default="2025-10-01T00:00:00", help="UTC start of the period"
    )
    simulate.add_argument(
        "--hours", type=_bounded(0, MAX_SIMULATED_HOURS), default=24.0, help="length of the period"
    )
    simulate.add_argument(
        "--rate",
        type=_bounded(0, MAX_SIMULATED_RATE),
        default=5.0,
        help="calls per minute on average",
    )
    simulate.set_defaults(handler=cmd_simulate)


def _replay_parser(verbs: Any) -> None:
    replay = verbs.add_parser("replay", help="replay event files into the local store")
    _inputs(replay)
    _store(replay)
    replay.add_argument(
        "--batch", type=_whole(1), help=f"events per batch (default: {BATCH_EVENTS})"
    )
    replay.add_argument(
        "--workers",
        type=_whole(0),
        help="processes that flatten events (default: one per core; 0: all in this process)",
    )
    replay.set_defaults(handler=cmd_replay)


def _store_parsers(verbs: Any) -> None:
    query = verbs.add_parser("query", help="run KQL on the local store")
    query.add_argument(
        "kql",
        help='e.g. "LlmCalls(ago(30d), now()) | summarize sum(TotalTokens) by SubscriptionId"',
    )
    _store(query)
    query.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", help="how rows are printed"
    )
    query.add_argument("--json", action="store_true", help="the same as --format json")
    query.set_defaults(handler=cmd_query)
    report = verbs.add_parser("report", help="print the headline KPIs and write the HTML dashboard")
    _store(report)
    report.add_argument("--html", help="write the self-contained dashboard page here")
    report.add_argument(
        "--month", type=_month, help="a month to bill (YYYY-MM): its chargeback per team"
    )
    report.add_argument(
        "--csv", help="write the month's chargeback lines here (the columns of Chargeback())"
    )
    report.set_defaults(handler=cmd_report)
    serve = verbs.add_parser("serve", help="serve the local store over the Kusto REST protocol")
    _store(serve)
    serve.add_argument("--port", type=int, default=31415, help="0 picks a free port")
    serve.set_defaults(handler=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    flatten = verbs.add_parser("flatten", help="flatten files to JSON lines of ADX rows")
    _inputs(flatten)
    flatten.set_defaults(handler=cmd_flatten)
    _kusto_parser(verbs)
    _reference_parser(verbs)
    _send_parser(verbs)
    redrive = verbs.add_parser(
        "redrive", help="re-ingest the batches kept in the dead-letter container"
    )
    redrive.set_defaults(handler=cmd_redrive)
    _simulate_parser(verbs)
    _replay_parser(verbs)
    _store_parsers(verbs)
    from ingest.commands.size import add_size_parser

    add_size_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; return the process exit code."""
    from ingest.sinks.local import StoreError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
