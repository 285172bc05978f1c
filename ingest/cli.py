"""``python -m ingest``: command-line verbs over the same code path the Functions app uses."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence

import orjson

from ingest.config import CoreSettings
from ingest.errors import ConfigError
from ingest.model import BatchCounts
from ingest.pipeline import Pipeline
from ingest.privacy import CaptureMode
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sources import SourceError, iter_events

BATCH_EVENTS = 500
"""Events flattened per batch by the file commands (keeps memory flat on large files)."""


def _settings(args: argparse.Namespace) -> CoreSettings:
    env = dict(os.environ)
    if args.capture_text:
        env["CAPTURE_TEXT"] = args.capture_text
    if args.mapping:
        env["POLICY_MAPPING_FILE"] = args.mapping
    return CoreSettings.from_env(env)


def cmd_flatten(args: argparse.Namespace) -> int:
    """Flatten files and print one JSON line per output row, then a count summary on stderr."""
    pipeline = Pipeline(_settings(args))
    out = sys.stdout.buffer
    total = BatchCounts()
    failed = False
    for path in args.paths:
        events = iter_events(path)
        try:
            while batch := list(itertools.islice(events, BATCH_EVENTS)):
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


def _kusto_apply(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.kusto import load_statements
    from ingest.sinks import adx

    if not args.cluster or not args.database:
        print("kusto apply needs --cluster URL and --database NAME", file=sys.stderr)
        return 2
    credential = None if args.no_auth else adx.default_credential()
    client = adx.connect(args.cluster, credential)
    statements = load_statements()
    try:
        applied = adx.apply_statements(client, args.database, statements, print)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"apply: {len(applied)} of {len(statements)} statements applied to {args.database}")
    return 0


def cmd_kusto(args: argparse.Namespace) -> int:
    """Print the whole ADX script, or regenerate the scripts derived from schemas/."""
    from ingest.kusto import KUSTO_DIR, full_script, generate_scripts

    if args.action == "script":
        sys.stdout.write(full_script())
        return 0
    if args.action == "apply":
        return _kusto_apply(args)
    if args.action == "validate":
        from ingest.kusto_validate import validate

        errors, checked = validate()
        for error in errors:
            print(error, file=sys.stderr)
        print(
            f"validate: {checked['statements']} statements, {checked['policies']} update policies, "
            f"{len(errors)} errors",
            file=sys.stderr,
        )
        return 1 if errors else 0
    from ingest.dashboard import dashboard_json

    for name, text in {**generate_scripts(), "dashboard.json": dashboard_json()}.items():
        path = KUSTO_DIR / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'wrote' if changed else 'unchanged'} {path}", file=sys.stderr)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Publish recorded event bodies to a real Event Hub."""
    from ingest.sinks import eventhub

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    flatten = verbs.add_parser("flatten", help="flatten files to JSON lines of ADX rows")
    flatten.add_argument(
        "paths", nargs="+", metavar="PATH", help=".json, .jsonl, .avro (Capture) or -"
    )
    flatten.add_argument(
        "--capture-text", choices=[m.value for m in CaptureMode], help="override CAPTURE_TEXT"
    )
    flatten.add_argument(
        "--mapping", help="log-to-eventhub mapping file (overrides POLICY_MAPPING_FILE)"
    )
    flatten.set_defaults(handler=cmd_flatten)
    kusto = verbs.add_parser("kusto", help="the ADX scripts in kusto/")
    kusto.add_argument(
        "action",
        choices=["script", "generate", "validate", "apply"],
        help="script: print every statement in order; generate: rewrite 10_tables/20_mappings "
        "from schemas/; validate: check every statement with the Kusto language service; "
        "apply: run every statement against --cluster/--database",
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
    send = verbs.add_parser("send", help="publish event bodies to a real Event Hub (smoke test)")
    send.add_argument(
        "paths", nargs="+", metavar="PATH", help=".json, .jsonl, .avro (Capture) or -"
    )
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
    redrive = verbs.add_parser(
        "redrive", help="re-ingest the batches kept in the dead-letter container"
    )
    redrive.set_defaults(handler=cmd_redrive)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return code
