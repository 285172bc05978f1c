"""The ``kusto/`` scripts as data: one parser (``scripts``), generation, validation, apply."""
