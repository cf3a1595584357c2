"""lakeops's Prefect worker types; importing the package registers them (the `prefect.collections` entry point)."""

from workers.warm import WarmWorker

__all__ = ["WarmWorker"]
