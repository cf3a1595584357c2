"""A table's fingerprint: its row count and an order-independent digest, the cheapest comparison of a release.

Equal fingerprints mean the same multiset of rows (up to a 64-bit hash collision), whatever the row
order. A fingerprint is a digest of a row sum, and row sums add up: a table's windows, fingerprinted
one at a time, give the table's.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lakeops.release.hashing import row_hashes


@dataclass(frozen=True)
class Fingerprint:
    """Row count and an order-independent digest of a table's values and column names and types."""

    rows: int
    digest: str


@dataclass(frozen=True)
class RowSum:
    """What a fingerprint is made of: the column names and types, the rows, the sum of the row hashes mod
    2**64. Parts of a table (its windows) add up to the table's: a table is fingerprinted window by window."""

    schema: str
    rows: int
    total: int

    def __add__(self, other: "RowSum") -> "RowSum":
        if other.schema != self.schema:
            raise ValueError(f"row sums of unlike schemas: {self.schema} and {other.schema}")
        return RowSum(self.schema, self.rows + other.rows, (self.total + other.total) % 2**64)

    def fingerprint(self) -> Fingerprint:
        digest = hashlib.blake2b(f"{self.schema}|{self.rows}|{self.total}".encode(), digest_size=16).hexdigest()
        return Fingerprint(rows=self.rows, digest=digest)


def row_sum(table: pa.Table, columns: Sequence[str] | None = None) -> RowSum:
    """The row sum of `columns` of `table` (default: every column, by sorted name), in any row order.

    Raises ValueError if a named column is missing.
    """
    names = list(columns) if columns is not None else sorted(table.column_names)
    if missing := [name for name in names if name not in table.column_names]:
        raise ValueError(f"fingerprint: no column {', '.join(map(repr, missing))} in the table")
    total = int(row_hashes(table, names).sum(dtype=np.uint64))  # the sum wraps mod 2**64: any row order
    return RowSum(";".join(f"{name}:{table.schema.field(name).type}" for name in names), table.num_rows, total)


def fingerprint(table: pa.Table, columns: Sequence[str] | None = None) -> Fingerprint:
    """The fingerprint of `columns` of `table` (default: every column, by sorted name), in any row order.

    Raises ValueError if a named column is missing.
    """
    return row_sum(table, columns).fingerprint()
