"""Ingest: day files to typed batches, schema drift, late records, quarantine rows."""
