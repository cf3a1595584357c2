"""Transforms on any Arrow engine: a layer's transform takes one Arrow table per input layer, in the
layer's `inputs` order, and returns the window's rows as an Arrow table.

So a team writes it in the engine it likes over Arrow without copies (DuckDB's `sql` on an Arrow
table, Polars' `from_arrow`, pyarrow.compute), and the core reads and writes Arrow end to end. A
transform written in pandas is declared through `on_pandas`: its inputs are converted to frames
and its frame back to Arrow, which costs a copy (a decimal column becomes Python objects: keep
large windows off pandas).
"""

from collections.abc import Callable
from functools import wraps

import pandas as pd
import pyarrow as pa

Transform = Callable[..., pa.Table]  # one Arrow table per input layer -> the window's rows
PandasTransform = Callable[..., pd.DataFrame]


def on_pandas(transform: PandasTransform) -> Transform:
    """An Arrow transform made of a pandas one (`__wrapped__` is the pandas function)."""

    @wraps(transform)
    def arrow(*tables: pa.Table) -> pa.Table:
        return pa.Table.from_pandas(transform(*(t.to_pandas() for t in tables)), preserve_index=False)

    return arrow
