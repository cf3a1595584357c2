"""Arrow schemas of the platform's own tables: quarantine, SLA facts, the release log."""

import pyarrow as pa

_INT = pa.int64()
_FLOAT = pa.float64()
_STR = pa.string()
_TS = pa.timestamp("us", tz="UTC")

QUARANTINE = pa.schema(
    [
        pa.field("batch_id", _STR, nullable=False),
        pa.field("source", _STR, nullable=False),
        pa.field("window", _STR),
        pa.field("line_number", _INT),
        pa.field("raw_line", _STR),
        pa.field("reason", _STR, nullable=False),
        pa.field("error_column", _STR),
        pa.field("error_row", _INT),
        pa.field("quarantined_at", _TS, nullable=False),
        pa.field("raw_bytes", pa.binary()),  # the line's exact bytes, newline included: joined, the file
    ]
)

SLA_FACTS = pa.schema(
    [
        pa.field("dataset", _STR, nullable=False),
        pa.field("window", _STR, nullable=False),
        pa.field("kind", _STR, nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("expected_at", _TS),
        pa.field("deadline", _TS),
        pa.field("snapshot_id", pa.int64()),
        pa.field("source_window", _STR),
        pa.field("lateness_s", _FLOAT),
        pa.field("detail", _STR),
        pa.field("flow_run_id", _STR),
    ]
)

# One row per event in a release's life (started, compared, held, approved, rejected, promoted, failed,
# rolled_back); JSON columns hold per-table and per-window maps.
RELEASES = pa.schema(
    [
        pa.field("release_id", _STR, nullable=False),
        pa.field("dataset", _STR, nullable=False),
        pa.field("event", _STR, nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("actor", _STR),
        pa.field("blue_version", _STR),
        pa.field("green_version", _STR),
        pa.field("windows", _STR),  # JSON {window: pinned Bronze snapshot id}
        pa.field("base", _STR),  # JSON {table: main snapshot id when the release was pinned}
        pa.field("target", _STR),  # JSON {table: snapshot id main moves to}
        pa.field("verdict", _STR),
        pa.field("summary", _STR),  # JSON: per-table counts, column match rates, suite failures
        pa.field("sample", _STR),  # JSON: mismatching rows
        pa.field("reason", _STR),
        pa.field("flow_run_id", _STR),
    ]
)
