"""Measurement only, not shipped: the Prefect server begins every explicit SQLite transaction IMMEDIATE.

Prefect begins `IMMEDIATE` only where a caller asks for a lock (the triggers service does, for its
buckets); the API's write endpoints begin `DEFERRED`, and a writer committing between such a
transaction's read and its write fails it at once with "database is locked" (a 503, retried after
2 s). Put this folder first on the server's path to see a hop without that:

    .venv/bin/python benchmarks/hop_anatomy.py --windows 4 --env PYTHONPATH=$PWD/benchmarks/immediate_sqlite
"""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

try:
    import prefect.server.database.configurations as configurations
except ImportError:  # not a Prefect process: nothing to change
    configurations = None  # type: ignore[assignment]

if configurations is not None:
    _original = configurations.AioSqliteConfiguration.begin_transaction

    @asynccontextmanager
    async def _immediate(self: Any, session: Any, with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        async with _original(self, session, with_for_update=True) as transaction:
            yield transaction

    configurations.AioSqliteConfiguration.begin_transaction = _immediate  # type: ignore[method-assign]
