"""What a human is told when data, not infrastructure, stops a pipeline: dataset, window, the rule
broken, counts, a sample, and the command that reprocesses once it is fixed."""

import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

from lakeops.datasets.declaration import Dataset
from lakeops.datasets.names import INGEST_FLOW, deployment
from lakeops.datasets.registry import bronze_of
from lakeops.errors import MalformedBatch
from lakeops.healing.failures import FailureClass
from lakeops.ingest.batches import RawBatch
from lakeops.ingest.drift import SchemaDrift

SAMPLE_LINES = 3


class Alert(NamedTuple):
    subject: str
    body: str


def reprocess_command(deployment: str, params: dict[str, Any]) -> str:
    """The command that runs the deployment again with these parameters."""
    return f"prefect deployment run {deployment} -p {shlex.quote('params=' + json.dumps(params, default=str))}"


def message(
    dataset: str, window: str, rule: str, counts: dict[str, int], sample: list[str], reprocess: str, owner: str
) -> Alert:
    """The alert for a data-logic failure."""
    listed = ", ".join(f"{name} {value}" for name, value in counts.items())
    shown = "\n".join(f"  {line}" for line in sample[:SAMPLE_LINES]) or "  (none)"
    body = (
        f"Dataset {dataset}, window {window}: {rule}\nCounts: {listed}.\nSample:\n{shown}\n"
        f"Owner: {owner}. After the fix, reprocess with: {reprocess}"
    )
    return Alert(f"[lakeops] {dataset} {window}: {rule.splitlines()[0][:120]}", body)


def _producer(dataset: Dataset) -> tuple[str, str]:
    """The Bronze table a dataset's source lands in, and the deployment that ingests it."""
    table = str(bronze_of(dataset).table)
    return table, deployment(INGEST_FLOW, table)


def _reprocess(dataset: Dataset, batch: RawBatch) -> str:
    return reprocess_command(_producer(dataset)[1], {"dataset": dataset.name, "window": batch.window.key})


def malformed(dataset: Dataset, batch: RawBatch, error: MalformedBatch, kept: int) -> Alert:
    """A batch quarantined whole: the reason, where, the offending line."""
    lines = batch.lines
    sample = [f"line {error.row}: {batch.line(error.row)}"] if error.row and 0 < error.row <= len(lines) else []
    where = ", ".join(
        p for p in (f"column {error.column!r}" if error.column else "", f"row {error.row}" if error.row else "") if p
    )
    return message(
        _producer(dataset)[0],
        batch.window.key,
        f"{Path(batch.source).name} rejected ({where or 'whole file'}): {error.reason}",
        {"lines in file": len(lines), "quarantined": kept, "committed": 0},
        sample,
        _reprocess(dataset, batch),
        dataset.owner,
    )


def too_late(dataset: Dataset, batch: RawBatch, quarantined: list[str], late: int, allowed: int) -> Alert:
    """Records older than the allowed lateness: quarantined by line, the rest of the file landed."""
    rule = f"{len(quarantined)} record(s) in {Path(batch.source).name} are more than {allowed} day(s) late"
    return message(
        _producer(dataset)[0],
        batch.window.key,
        rule,
        {"late records accepted": late, "too late, quarantined": len(quarantined)},
        quarantined,
        f"raise the source's allowed lateness in the declaration of {dataset.name}, run `lakeops setup`, then "
        f"{_reprocess(dataset, batch)}",
        dataset.owner,
    )


def failed_run(
    flow_name: str,
    run_name: str,
    deployment: str,
    params: dict[str, Any],
    failure: FailureClass,
    error: str,
    owner: str,
) -> Alert:
    """A run that failed for a reason retries will not fix (or whose retries ran out)."""
    what = {
        FailureClass.DATA_LOGIC: "failed on its data (never retried)",
        FailureClass.UNKNOWN: "failed for an unknown reason (treated as data: not retried)",
        FailureClass.TRANSIENT: "failed after its retries on an infrastructure error",
        FailureClass.RESOURCE: "ran out of resources",
    }[failure]
    window = str(params.get("window") or params.get("start") or "-")
    subject = f"[lakeops] {flow_name} {window}: {what}"
    body = (
        f"Flow run {run_name} of {deployment} {what}.\nError: {error[:2000]}\nParameters: "
        f"{json.dumps(params, default=str)}\nOwner: {owner}. After the fix, reprocess with: "
        f"{reprocess_command(deployment, params)}"
    )
    return Alert(subject, body)


def schema_drift(dataset: Dataset, batch: RawBatch, drift: SchemaDrift) -> Alert:
    """The drift alert to the dataset's owner: what changed, what happened to the batch, how to rerun."""
    assert dataset.source is not None, "only a dataset with a source receives files"
    table, producer = _producer(dataset)
    if drift.accepted_into_bronze(dataset.source):
        outcome = (
            "Accepted into Bronze (the source allows additive drift): the new columns are not in Bronze's "
            "typed rows, only in the raw file its _batch_id and _source name. Silver is not evolved."
        )
    else:
        outcome = (
            f"The batch is quarantined whole: {len(batch.lines)} raw lines in {dataset.quarantine} under "
            f"batch_id {batch.batch_id}. Nothing reached Bronze or Silver; other datasets keep running."
        )
    body = (
        f"Dataset {table}, window {batch.window.key}, file {batch.source}: the batch breaks the "
        f"schema contract (columns, types, non-null columns) with {len(drift.changes)} change(s):\n"
        f"{drift.describe()}\n{outcome}\nOwner: {dataset.owner}. Producer: {producer}.\n"
        f"After fixing the file in the landing zone, reprocess with: {_reprocess(dataset, batch)}"
    )
    return Alert(f"[lakeops] {table} {batch.window.key}: schema drift", body)
