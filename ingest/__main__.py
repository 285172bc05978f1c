"""Entry point of ``python -m ingest``."""

import sys

from ingest.commands.cli import main

if __name__ == "__main__":  # not when a replay worker (spawn) imports this module
    sys.exit(main())
