"""A memory cgroup of its own for one command: created below our own, limit and swap set, removed after.

cgroup v1's `memory` controller, or v2's where it is delegated (`lakeops.healing.memlimit` uses it;
the warm worker's slots move a waiting interpreter into one at its hand-off). Where none can be
written, `CgroupUnavailable` says why, and the caller falls back to an address-space limit.
"""

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from lakeops.errors import LakeopsError

CGROUP_ROOT = Path("/sys/fs/cgroup")


class CgroupUnavailable(LakeopsError):
    """No memory cgroup could be created for the command; the message says why."""


@dataclass(frozen=True)
class _Layout:
    """The files of one cgroup version's memory controller."""

    version: int
    limit: str
    swap: str
    oom_events: str
    peak: str
    usage: str  # what the cgroup holds now, page cache included
    inactive_file: str  # the key in memory.stat of the page cache the kernel reclaims first

    def swap_value(self, limit_bytes: int) -> int:
        return limit_bytes if self.version == 1 else 0  # v1 memsw counts memory + swap; v2 swap alone


_V1 = _Layout(
    1,
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.oom_control",
    "memory.max_usage_in_bytes",
    "memory.usage_in_bytes",
    "total_inactive_file",
)


_V2 = _Layout(2, "memory.max", "memory.swap.max", "memory.events", "memory.peak", "memory.current", "inactive_file")


@dataclass(frozen=True)
class MemoryCgroup:
    """A memory cgroup made for one command, below the cgroup of the process that made it."""

    path: Path
    layout: _Layout

    @classmethod
    def create(cls, megabytes: int, root: Path = CGROUP_ROOT, self_cgroup: str | None = None) -> "MemoryCgroup":
        """Make `lakeops/<pid>-<token>` below our own memory cgroup, limited to `megabytes` without swap.

        Raises CgroupUnavailable when there is no writable memory controller.
        """
        text = self_cgroup if self_cgroup is not None else Path("/proc/self/cgroup").read_text()
        parent, layout = _own_memory_cgroup(text, root)
        try:
            cgroup = cls(_make_own_dir(parent, layout), layout)
        except OSError as error:
            raise CgroupUnavailable(f"cannot create a cgroup below {parent}: {error}") from error
        path = cgroup.path
        limit = megabytes * 1024 * 1024
        try:
            (path / layout.limit).write_text(str(limit))
            if (path / layout.swap).exists():
                (path / layout.swap).write_text(str(layout.swap_value(limit)))
        except OSError as error:
            cgroup.remove()
            raise CgroupUnavailable(f"cannot set the memory limit of {path}: {error}") from error
        return cgroup

    def enter(self, pid: int | None = None) -> None:
        """Move a process (default: the calling one) into this cgroup; its later children follow.

        What the process already holds stays charged where it was (neither cgroup version moves it by
        default): the limit counts what it allocates from here on.
        """
        (self.path / "cgroup.procs").write_text(str(os.getpid() if pid is None else pid))

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup."""
        for line in _read(self.path / self.layout.oom_events).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_mb(self) -> int | None:
        """The most memory the cgroup held at once, in MB, where the kernel reports it."""
        raw = _read(self.path / self.layout.peak).strip()
        return int(raw) // (1024 * 1024) if raw.isdigit() else None

    def working_set_mb(self) -> float | None:
        """What the cgroup holds now less the page cache the kernel drops first (its inactive file pages), in
        MB: the working set, as cAdvisor and the kubelet measure a container. None where unreadable."""
        raw = _read(self.path / self.layout.usage).strip()
        if not raw.isdigit():
            return None
        inactive = 0
        for line in _read(self.path / "memory.stat").splitlines():
            key, _, value = line.partition(" ")
            if key == self.layout.inactive_file and value.strip().isdigit():
                inactive = int(value)
        return max(int(raw) - inactive, 0) / 2**20

    def remove(self) -> bool:
        """Remove the cgroup (and `lakeops/` when it is the last); False when processes still live in it."""
        try:
            self.path.rmdir()
        except OSError:
            return False
        with contextlib.suppress(OSError):  # another run's cgroup is still there
            self.path.parent.rmdir()
        return True


def sweep_stale(base: Path) -> list[Path]:
    """Remove the cgroups under `base` left by supervisors that died (their pid is gone); return them."""
    removed = []
    for path in base.iterdir():
        pid = path.name.partition("-")[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):  # still has processes in it: leave it
                path.rmdir()
                removed.append(path)
    return removed


def _own_memory_cgroup(text: str, root: Path) -> tuple[Path, _Layout]:
    """Our memory cgroup's directory and layout, from /proc/self/cgroup; raises CgroupUnavailable."""
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") and (root / "memory").is_dir():
            return root / "memory" / path.lstrip("/"), _V1
    for line in text.splitlines():
        if line.startswith("0::") and "memory" in _read(root / "cgroup.controllers").split():
            return root / line[3:].lstrip("/"), _V2
    raise CgroupUnavailable(f"no memory controller under {root}")


def _make_own_dir(parent: Path, layout: _Layout) -> Path:
    """`parent/lakeops/<pid>-<token>`, after sweeping stale siblings away."""

    def make() -> Path:
        base = parent / "lakeops"
        base.mkdir(exist_ok=True)
        if layout.version == 2:
            _delegate_memory(parent, base)
        sweep_stale(base)
        path = base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    try:
        return make()
    except FileNotFoundError:  # a finishing run removed the empty `lakeops/` between our two mkdirs
        return make()


def _delegate_memory(parent: Path, base: Path) -> None:
    """cgroup v2: the memory controller must be enabled for the children of `parent` and of `base`."""
    for directory in (parent, base):
        control = directory / "cgroup.subtree_control"
        if "memory" not in _read(control).split():
            control.write_text("+memory")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # someone else's live process
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
