"""Exceptions of the pipeline.

    IngestError                 base of everything the pipeline raises on purpose
    ├── ConfigError             a setting is missing or invalid (names the setting)
    ├── TerminalIngestError     the sink refused the batch for good (schema, mapping, authorization)
    └── TransientIngestError    the sink may take the batch later (throttling, timeouts, network)

Bad *input* never raises: the core turns it into dead letters (see ``ingest.model.RejectReason``).
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of the pipeline's own exceptions."""


class ConfigError(IngestError):
    """A setting is missing or invalid; the message names it."""


class TerminalIngestError(IngestError):
    """The sink will never accept this batch as it is: dead-letter it, do not retry."""


class TransientIngestError(IngestError):
    """The sink could not take the batch now: retry it later."""
