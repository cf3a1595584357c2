"""Order-independent table hashing: one 64-bit hash per row of Arrow data, fast (vectorised, per batch)."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0x9E3779B97F4A7C15)
_ROW_SEED = 0x243F6A8885A308D3
_NULL = np.uint64(0x6E756C6C6E756C6C)  # a null's hash, unlike any value's but by a 2**-64 chance
_BYTES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
_BATCH_ROWS = 1 << 16


def is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (every input bit reaches every output bit), on a copy of `x`."""
    x = x ^ (x >> np.uint64(30))
    shifted = np.empty_like(x)
    x *= _M1
    x ^= np.right_shift(x, np.uint64(27), out=shifted)
    x *= _M2
    x ^= np.right_shift(x, np.uint64(31), out=shifted)
    return x


def row_hashes(table: pa.Table, names: Sequence[str]) -> np.ndarray:
    """A 64-bit hash per row of the named columns, in that order (so swapped values change it)."""
    batches = table.select(list(names)).to_batches(max_chunksize=_BATCH_ROWS)  # cache-sized pieces
    return np.concatenate([_batch_hashes(batch) for batch in batches] or [np.zeros(0, np.uint64)])


def _batch_hashes(batch: pa.RecordBatch) -> np.ndarray:
    hashes = np.full(batch.num_rows, _ROW_SEED, dtype=np.uint64)
    for column in batch.columns:
        hashes = hashes * _STEP + _array_hashes(column)
    return _mix(hashes)  # the column hashes are mixed already; this makes the row's hash non-linear in them


def _array_hashes(array: pa.Array) -> np.ndarray:
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _array_hashes(array.dictionary_decode())
    if pa.types.is_boolean(kind):
        values = _mix(_bits(pc.cast(array, pa.uint8())))
    elif is_number(kind) or (pa.types.is_temporal(kind) and kind.bit_width <= 64):
        values = _mix(_bits(array))
    elif any(is_kind(kind) for is_kind in _BYTES):
        values = _string_hashes(array)
    elif pa.types.is_decimal(kind) or pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        values = _string_hashes(
            pc.cast(array, pa.large_binary() if pa.types.is_binary_view(kind) else pa.large_string())
        )
    else:  # nested and rare types: slow, but every value still counts
        values = _string_hashes(pa.array([repr(v) for v in array.to_pylist()], pa.string()))
    if array.null_count:
        values = np.where(array.is_valid().to_numpy(zero_copy_only=False), values, _NULL)
    return values


def _bits(array: pa.Array) -> np.ndarray:
    """The values' 64 bits, read from the data buffer (null slots hold whatever is there)."""
    kind, width = array.type, array.type.bit_width // 8
    code = "f" if pa.types.is_floating(kind) else "u" if pa.types.is_unsigned_integer(kind) else "i"
    data = np.frombuffer(array.buffers()[1], f"<{code}{width}", count=array.offset + len(array))[array.offset :]
    if code == "f":
        floats = data.astype(np.float64) + 0.0  # -0.0 becomes 0.0
        floats[np.isnan(floats)] = np.nan  # one NaN
        return floats.view(np.uint64)
    return data.astype(np.int64).view(np.uint64)


def _string_hashes(array: pa.Array) -> np.ndarray:
    """Hash each distinct value once (Arrow finds them fast, pandas hashes them), then spread to the rows."""
    encoded = pc.dictionary_encode(array)
    if not len(encoded.dictionary):
        return np.zeros(len(array), dtype=np.uint64)
    distinct = pd.util.hash_array(encoded.dictionary.to_numpy(zero_copy_only=False), categorize=False)
    hashes: np.ndarray = distinct[pc.fill_null(encoded.indices, 0).to_numpy()]
    return hashes
