"""lakeops: the habits of a mature data platform for Iceberg pipelines (the core knows no Prefect)."""

__version__ = "0.1.0"
