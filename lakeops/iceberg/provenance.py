"""Provenance carried by every commit's snapshot summary: which code and which inputs made it."""

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lakeops import __version__

PREFIX = "lakeops."
_INPUT = f"{PREFIX}input."


@dataclass(frozen=True)
class Provenance:
    """What made a commit: code version, flow run, window, batch and each input's snapshot."""

    code_version: str
    flow_run_id: str
    window: str
    batch_id: str
    inputs: Mapping[str, int] = field(default_factory=dict)
    stale: bool = False
    transform_version: str | None = None
    operation: str = "build"  # build | replay | compaction | ...
    branch: str = "main"
    validated: bool = False
    carried_from: str | None = None  # a stale fallback: the earlier window whose data was carried forward
    extended_windows: tuple[str, ...] = ()  # earlier windows a file's late records were added to

    def to_properties(self) -> dict[str, str]:
        """Snapshot summary properties (Iceberg summaries hold strings only)."""
        props = {
            f"{PREFIX}code-version": self.code_version,
            f"{PREFIX}flow-run-id": self.flow_run_id,
            f"{PREFIX}window": self.window,
            f"{PREFIX}batch-id": self.batch_id,
            f"{PREFIX}stale": str(self.stale).lower(),
            f"{PREFIX}operation": self.operation,
            f"{PREFIX}branch": self.branch,
            f"{PREFIX}validated": str(self.validated).lower(),
        }
        if self.carried_from:
            props[f"{PREFIX}carried-from"] = self.carried_from
        if self.extended_windows:
            props[f"{PREFIX}extended-windows"] = ",".join(self.extended_windows)
        if self.transform_version:
            props[f"{PREFIX}transform-version"] = self.transform_version
        props.update({f"{_INPUT}{table}": str(snap) for table, snap in self.inputs.items()})
        return props

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> "Provenance | None":
        """Read provenance back from a snapshot summary; None when the commit has none."""
        if f"{PREFIX}window" not in props:
            return None
        return cls(
            code_version=props.get(f"{PREFIX}code-version", ""),
            flow_run_id=props.get(f"{PREFIX}flow-run-id", ""),
            window=props[f"{PREFIX}window"],
            batch_id=props.get(f"{PREFIX}batch-id", ""),
            inputs={k[len(_INPUT) :]: int(v) for k, v in props.items() if k.startswith(_INPUT)},
            stale=props.get(f"{PREFIX}stale") == "true",
            transform_version=props.get(f"{PREFIX}transform-version"),
            operation=props.get(f"{PREFIX}operation", "build"),
            branch=props.get(f"{PREFIX}branch", "main"),
            validated=props.get(f"{PREFIX}validated") == "true",
            carried_from=props.get(f"{PREFIX}carried-from"),
            extended_windows=tuple(w for w in props.get(f"{PREFIX}extended-windows", "").split(",") if w),
        )


@cache
def code_version() -> str:
    """The git commit of the running code (LAKEOPS_CODE_VERSION wins), else the package version."""
    if explicit := os.environ.get("LAKEOPS_CODE_VERSION"):
        return explicit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        return f"lakeops=={__version__}"
