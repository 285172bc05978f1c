"""Turn Azure API Management gateway logs for LLM traffic into typed ADX rows.

The folders follow the data flow:

* ``sources``: event bodies from files, Event Hubs Capture and stdin (local tools only);
* ``core``: pure and per record, no ``azure.*`` and no I/O: ``decode`` (bytes -> JSON records),
  ``flatten`` (record -> landing row or ``Rejected``), ``pipeline`` (a batch -> ``BatchResult``);
* ``sinks``: where a batch goes: ``adx`` (the Functions app), ``dead_letters`` (batches ADX
  refused), ``memory`` (tests), ``local`` (the embedded DuckDB store);
* ``kql``: the ``kusto/`` scripts as typed declarations: generate, validate, apply, dashboard;
* ``commands``: ``python -m ingest`` verbs: flatten, replay, simulate, report, send, ...

``function_app.py`` (the Functions app) uses ``config``, ``core`` and ``sinks.adx`` only.
"""
