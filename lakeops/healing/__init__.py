"""Healing: failure classes and retry policy, out-of-memory decisions, the memory supervisor, alerts."""
