"""Versioning: history, time travel, replay, maintenance, rollback."""
