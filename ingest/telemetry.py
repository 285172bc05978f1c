"""Per-batch metrics as OpenTelemetry instruments: ``customMetrics`` in Application Insights.

In Azure the Python worker sets up the Azure Monitor exporter when the app setting
``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`` is ``true`` (and host.json says
``"telemetryMode": "OpenTelemetry"``); these instruments then reach Application Insights as
``customMetrics`` rows, their attributes as ``customDimensions``. Without an exporter (tests,
tools) the OpenTelemetry API makes them no-ops. The instruments are made once, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.model import BatchCounts

METER = "ingest"
"""The meter name (also the logger name the worker exports)."""


@dataclass(frozen=True, slots=True)
class BatchMetrics:
    """The instruments one batch records."""

    events: Any
    records: Any
    rows: Any
    dead_letters: Any
    bytes: Any
    seconds: Any
    lag: Any
    ingestions: Any
    """Queued ingestions whose outcome ADX reported (attribute ``outcome``)."""

    @classmethod
    def create(cls, meter: Any | None = None) -> BatchMetrics:
        """Instruments on ``meter`` (default: the global provider's ``ingest`` meter)."""
        if meter is None:
            from opentelemetry import metrics

            meter = metrics.get_meter(METER)
        return cls(
            events=meter.create_counter("ingest.events", unit="{event}"),
            records=meter.create_counter("ingest.records", unit="{record}"),
            rows=meter.create_counter("ingest.rows", unit="{row}"),
            dead_letters=meter.create_counter("ingest.dead_letters", unit="{row}"),
            bytes=meter.create_counter("ingest.bytes", unit="By"),
            seconds=meter.create_histogram("ingest.batch.seconds", unit="s"),
            lag=meter.create_histogram("ingest.lag.seconds", unit="s"),
            ingestions=meter.create_counter("ingest.ingestions", unit="{ingestion}"),
        )

    def record(
        self,
        counts: BatchCounts,
        *,
        seconds: float,
        lag_seconds: float | None,
        attributes: dict[str, str],
    ) -> None:
        """One batch: its counts, how long it took, and how old its oldest event was."""
        self.events.add(counts.events, attributes)
        self.records.add(counts.records, attributes)
        self.rows.add(counts.rows, attributes)
        self.dead_letters.add(counts.dead_letters, attributes)
        self.bytes.add(counts.bytes, attributes)
        self.seconds.record(seconds, attributes)
        if lag_seconds is not None:
            self.lag.record(lag_seconds, attributes)

    def record_status(self, succeeded: int, failed: int, expired: int) -> None:
        """One run of the ingestion-status watcher (failed and expired ones are kept batches)."""
        for outcome, count in (("succeeded", succeeded), ("failed", failed), ("expired", expired)):
            if count:
                self.ingestions.add(count, {"outcome": outcome})
