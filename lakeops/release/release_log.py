"""The release log (`ops.releases`): one row per event in a release's life, and the state they fold to.

Nothing about a release lives only in the orchestrator: who started, approved or rolled it back,
which versions, which pinned input, the verdict and the diff are rows here, readable with plain
pyiceberg long after the flow runs are gone.
"""

import enum
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lakeops.datasets.filters import equal_to
from lakeops.datasets.names import RELEASES
from lakeops.iceberg import lake, schemas
from lakeops.iceberg.provenance import Provenance


class Event(enum.StrEnum):
    STARTED = "started"
    COMPARED = "compared"
    HELD = "held"
    APPROVED = "approved"
    REJECTED = "rejected"
    CAUGHT_UP = "caught_up"  # main moved during the release: its new windows were pinned, base moved on
    PROMOTED = "promoted"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Entry:
    """One row of the log; the JSON columns are decoded into dicts."""

    release_id: str
    dataset: str
    event: Event
    at: datetime
    actor: str = ""
    blue_version: str = ""
    green_version: str = ""
    windows: dict[str, dict[str, int]] = field(default_factory=dict)  # window -> pinned inputs
    base: dict[str, int] = field(default_factory=dict)
    target: dict[str, int] = field(default_factory=dict)
    verdict: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    flow_run_id: str = ""


@dataclass(frozen=True)
class Release:
    """A release as its log entries describe it; `status` is the last event."""

    release_id: str
    dataset: str
    entries: tuple[Entry, ...]

    @property
    def first(self) -> Entry:
        return self.entries[0]

    @property
    def status(self) -> Event:
        return self.entries[-1].event

    def last(self, event: Event) -> Entry | None:
        return next((e for e in reversed(self.entries) if e.event == event), None)

    @property
    def live(self) -> bool:
        """Promoted and not rolled back: what consumers read now."""
        return self.status == Event.PROMOTED

    @property
    def verdict(self) -> str:
        compared = self.last(Event.COMPARED)
        return compared.verdict if compared else ""

    @property
    def flow_run_id(self) -> str:
        return next((e.flow_run_id for e in reversed(self.entries) if e.flow_run_id), "")


_JSON_FIELDS = ("windows", "base", "target", "summary", "sample")


def record(catalog: Catalog, entry: Entry) -> None:
    """Append one event in one commit."""
    row = {k: (json.dumps(v, default=str) if k in _JSON_FIELDS else v) for k, v in asdict(entry).items()}
    row["event"] = str(entry.event)
    table = lake.load(catalog, RELEASES)
    made_by = Provenance("", entry.flow_run_id, "", entry.release_id, operation=f"release-{entry.event}")
    lake.append_rows(table, pa.Table.from_pylist([row], schema=schemas.RELEASES), made_by)


def entries(catalog: Catalog, dataset: str | None = None) -> list[Entry]:
    """Every logged event (of one dataset), oldest first."""
    table = lake.load(catalog, RELEASES)
    if table.current_snapshot() is None:
        return []
    scan = table.scan(row_filter=equal_to("dataset", dataset)) if dataset else table.scan()
    rows = sorted(scan.to_arrow().to_pylist(), key=lambda r: r["at"])
    return [_entry(row) for row in rows]


def releases(catalog: Catalog, dataset: str | None = None) -> list[Release]:
    """Releases in the order they started."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries(catalog, dataset):
        grouped.setdefault(entry.release_id, []).append(entry)
    return [Release(rid, group[0].dataset, tuple(group)) for rid, group in grouped.items()]


def find(catalog: Catalog, release_id: str) -> Release | None:
    return next((r for r in releases(catalog) if r.release_id == release_id), None)


def live(catalog: Catalog, dataset: str) -> Release | None:
    """The release consumers read now (the newest promoted one not rolled back), or None."""
    return next((r for r in reversed(releases(catalog, dataset)) if r.live), None)


def live_version(catalog: Catalog, dataset: str) -> str | None:
    """The transform version of the live release: what builds of new windows must use."""
    current = live(catalog, dataset)
    return current.first.green_version if current else None


def build_version(catalog: Catalog, dataset: str, requested: str | None, default: str) -> str:
    """The transform version a build uses: the one asked for, else the live release's, else the default."""
    return requested or live_version(catalog, dataset) or default


def now() -> datetime:
    return datetime.now(UTC)


def _entry(row: dict[str, Any]) -> Entry:
    decoded = {k: (json.loads(v) if k in _JSON_FIELDS and v else v) for k, v in row.items()}
    decoded = {k: v for k, v in decoded.items() if v is not None}
    decoded["windows"] = {k: {i: int(s) for i, s in v.items()} for k, v in decoded.get("windows", {}).items()}
    decoded["base"] = {k: int(v) for k, v in decoded.get("base", {}).items()}
    decoded["target"] = {k: int(v) for k, v in decoded.get("target", {}).items()}
    return Entry(**{**decoded, "event": Event(row["event"])})
