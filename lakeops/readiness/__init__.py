"""Readiness: signals and markers, contracts, SLA facts and decisions, status."""
