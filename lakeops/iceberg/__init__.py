"""Iceberg access: catalog, tables, reads at a snapshot, commits with provenance, tags, markers."""
