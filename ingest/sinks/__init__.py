"""Sinks: where a batch's rows go (``base.Sink``). ``adx`` and ``dead_letters`` talk to Azure."""
