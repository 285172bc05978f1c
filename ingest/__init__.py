"""Turn Azure API Management gateway logs for Azure OpenAI traffic into typed ADX rows.

The package is layered as the data flows: ``parse`` (bytes -> JSON records), ``flatten`` and
``policy`` (record -> landing row or dead letter), ``pipeline`` (a batch of events -> BatchResult).
None of these import ``azure.*``; only the sinks and ``function_app.py`` do.
"""
