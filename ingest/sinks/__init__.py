"""Sinks: where batches go. Only ``adx`` talks to Azure."""
