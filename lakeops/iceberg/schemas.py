"""Arrow schemas of the platform's own tables: quarantine, SLA facts, the release log, run facts and daily metrics."""

import pyarrow as pa

from lakeops.datasets import names

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

# Platform metrics (lakeops/metrics/history.py): one row per finished flow run, placed in the day (UTC) of its
# expected start and priced when recorded; and the figures of each day per scope (all, dataset:, deployment:).
RUN_FACTS = pa.schema(
    [
        pa.field("day", _STR, nullable=False),
        pa.field("flow_run_id", _STR, nullable=False),
        pa.field("deployment", _STR, nullable=False),
        pa.field("dataset", _STR),
        pa.field("unit", _STR, nullable=False),
        pa.field("outcome", _STR, nullable=False),
        pa.field("expected_start", _TS, nullable=False),
        pa.field("started", _TS),
        pa.field("ended", _TS),
        pa.field("attempts", _INT, nullable=False),
        pa.field("code_version", _STR),
        pa.field("code_committed_at", _TS),
        pa.field("stale", pa.bool_(), nullable=False),
        pa.field("work_pool_type", _STR, nullable=False),
        pa.field("requested_cpu", _FLOAT),
        pa.field("requested_memory_mb", _FLOAT),
        pa.field("cpu_seconds", _FLOAT),
        pa.field("peak_memory_mb", _FLOAT),
        pa.field("cost_requested", _FLOAT),
        pa.field("cost_used", _FLOAT),
        pa.field("recorded_at", _TS, nullable=False),
    ]
)

METRICS_DAILY = pa.schema(
    [
        pa.field("day", _STR, nullable=False),
        pa.field("scope", _STR, nullable=False),
        pa.field("units", _INT, nullable=False),
        pa.field("succeeded", _INT, nullable=False),
        pa.field("first_attempt", _INT, nullable=False),
        pa.field("recovered", _INT, nullable=False),
        pa.field("stale", _INT, nullable=False),
        pa.field("failed", _INT, nullable=False),
        pa.field("success_rate", _FLOAT),
        pa.field("first_attempt_rate", _FLOAT),
        pa.field("burn_rate", _FLOAT, nullable=False),
        pa.field("run_hours", _FLOAT, nullable=False),
        pa.field("cost_requested", _FLOAT, nullable=False),
        pa.field("cost_used", _FLOAT, nullable=False),
        pa.field("cost_per_pipeline_hour", _FLOAT),
        pa.field("changes", _INT),  # velocity: the scope "all" only (a code version spans deployments)
        pa.field("changes_in_production", _INT),
        pa.field("change_failures", _INT),
        pa.field("lead_p50_s", _FLOAT),
        pa.field("computed_at", _TS, nullable=False),
    ]
)

# The metrics tables, partitioned by day: a day's rows are replaced whole (lake.table_specs lists them).
METRICS_TABLES = ((names.RUN_FACTS, RUN_FACTS, ("day",)), (names.METRICS_DAILY, METRICS_DAILY, ("day",)))
