"""The pure core: bytes of an event body -> landing rows and dead letters, record by record.

Nothing here imports ``azure.*`` or does I/O (the mapping file is read once, when a ``Pipeline``
is built). Bad input never raises: it becomes a ``Rejected`` outcome, then a dead letter.
"""
