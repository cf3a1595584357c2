"""Readiness signals: what a producer publishes after a commit, and the marker file beside a table."""

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from lakeops.datasets.names import READY_EVENT, TableRef


@dataclass(frozen=True)
class ReadySignal:
    """A dataset's window is committed and readable at `snapshot_id`."""

    dataset: str
    snapshot_id: int
    window: str
    row_count: int
    schema_fingerprint: str
    code_version: str
    stale: bool
    committed_at: datetime

    @property
    def event(self) -> str:
        return READY_EVENT

    @property
    def resource_id(self) -> str:
        namespace, name = self.dataset.split(".", 1)
        return TableRef(namespace, name).resource_id

    def payload(self) -> dict[str, object]:
        """The event payload; consumers template `snapshot_id` and `window` from it."""
        body = asdict(self)
        body["committed_at"] = self.committed_at.isoformat()
        return body

    def to_json(self) -> str:
        return json.dumps(self.payload(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ReadySignal":
        body = json.loads(text)
        body["committed_at"] = datetime.fromisoformat(body["committed_at"])
        return cls(**body)


def marker_paths(table_location: str, window: str) -> tuple[str, str]:
    """Where the marker files live: one per window and one `_READY` naming the latest signal."""
    base = table_location.rstrip("/")
    return f"{base}/_ready/{window}.json", f"{base}/_READY"
