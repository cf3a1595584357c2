"""Out-of-memory healing: re-run a crashed run with its memory doubled, up to a cap; remember what worked.

The decisions only; the `heal-crashed-run` flow reads the crashed run and carries them out. A chain of
re-runs is marked by tags (its root run and the attempt number), every re-run of a crash has the same
idempotency key (a second healer for the same crash gets the same run back), and memory only grows
until the cap, so a chain always ends: healed, or given up as data-dependent at the cap.

On ECS (prefect-aws's worker) the Crashed state names the stopped containers, not their exit codes:
"The following containers stopped with a non-zero exit code: ['prefect']". The exit code is in what the
worker's ECS observer logs on the flow run just before ("Essential container exited: Container 'prefect'
exited with code 137. Resolution: ..."), which the healer passes in as `evidence`; ECS's own
out-of-memory stop reason (`OutOfMemoryError: Container killed due to memory usage`) counts wherever it
appears. On Fargate the doubled memory is the next valid task size, with more cpu when it needs it.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from lakeops.datasets.names import HEAL_GAVE_UP_EVENT
from lakeops.healing.failures import FailureClass, classify_exit
from lakeops.healing.sizes import Size, fargate_fit, fargate_sizes

GAVE_UP_EVENT = HEAL_GAVE_UP_EVENT
DEFAULT_CAP_MB = 8192  # when neither the run, its deployment nor its work pool names a `memory_cap`
MAX_ATTEMPTS = 8  # a backstop only: doubling reaches any sane cap sooner
ROOT_TAG = "lakeops-heal-root:"  # + the id of the run that crashed first
ATTEMPT_TAG = "lakeops-heal-attempt:"  # + 1, 2, ... on each re-run
HEALS_TAG = "lakeops-heals:"  # + the id of the crashed run this one re-runs
_HEAL_TAGS = (ROOT_TAG, ATTEMPT_TAG, HEALS_TAG)
_STATUS_CODE = re.compile(r"status code:? (-?\d+)")  # the process and base workers' Crashed messages
ECS_CRASH = "The following containers stopped with a non-zero exit code"  # prefect-aws's Crashed message
ECS_OBSERVER_LOGGER = "prefect.flow_runs.observer"  # its diagnosis of the stopped task, on the flow run's log
_CONTAINER_EXIT = re.compile(r"Container '([^']*)' exited with code (-?\d+)")
ECS_OOM_REASON = "OutOfMemoryError"  # ECS's stop reason of a container killed over its memory


def exit_code(message: str | None, evidence: tuple[str, ...] = ()) -> int | None:
    """The infrastructure's exit code named in a Crashed state's message, or (ECS) in the observer's diagnosis."""
    found = _STATUS_CODE.search(message or "")
    if found:
        return int(found.group(1))
    named = set(re.findall(r"'([^']*)'", message)) if message and message.startswith(ECS_CRASH) else set()
    codes = [(name, int(code)) for line in evidence for name, code in _CONTAINER_EXIT.findall(line)]
    return next((code for name, code in codes if not named or name in named), None)


@dataclass(frozen=True)
class Crash:
    """What the healer knows of a crashed run."""

    run_id: str
    message: str | None  # the Crashed state's message
    memory_mb: int | None  # the `memory` it ran with: its own, else its deployment's, else the pool's
    cap_mb: int
    tags: frozenset[str] = frozenset()
    cpu: int | None = None  # the `cpu` it ran with, the same way (ECS)
    fargate: bool = False  # a Fargate task: memory moves only between Fargate's task sizes
    evidence: tuple[str, ...] = ()  # what the infrastructure reported besides the message (the ECS observer's log)
    started: bool = True  # whether the flow ever reached Running (no code of it ran otherwise)

    @property
    def exit_code(self) -> int | None:
        return exit_code(self.message, self.evidence)

    @property
    def out_of_memory(self) -> bool:
        said = any(ECS_OOM_REASON in text for text in (self.message or "", *self.evidence))
        return said or classify_exit(self.exit_code) is FailureClass.RESOURCE

    @property
    def killed(self) -> str:
        """How it was killed, for people: its exit code, or ECS's stop reason."""
        return f"exit {self.exit_code}" if self.exit_code is not None else ECS_OOM_REASON

    @property
    def attempt(self) -> int:
        """0 for a run nobody started to heal another; n for the n-th re-run of a chain."""
        return int(_tag_value(self.tags, ATTEMPT_TAG) or 0)

    @property
    def root(self) -> str:
        return _tag_value(self.tags, ROOT_TAG) or self.run_id


@dataclass(frozen=True)
class Rerun:
    """Run it again with `memory_mb` (and, on Fargate, `cpu`)."""

    memory_mb: int
    tags: frozenset[str]
    idempotency_key: str
    cpu: int | None = None

    @property
    def size(self) -> Size:
        return Size(self.memory_mb, self.cpu)


@dataclass(frozen=True)
class GiveUp:
    """Stop and alert: it needs more memory than it may have, so the cause is in the data."""

    reason: str
    classification: str = "data-dependent"


@dataclass(frozen=True)
class NotOurs:
    """Not an out-of-memory kill that more memory can heal; the usual failure alerting applies."""

    reason: str


def decide(crash: Crash) -> Rerun | GiveUp | NotOurs:
    """Double the memory of an out-of-memory kill (at most to the cap); at the cap, give up."""
    code = crash.exit_code
    if not crash.out_of_memory:
        return NotOurs(f"exit code {code}: not an out-of-memory kill" if code is not None else "no exit code")
    if crash.memory_mb is None:
        return NotOurs("it ran without a memory limit, so the host ran out, not the run: nothing to double")
    if crash.memory_mb >= crash.cap_mb:
        return GiveUp(f"killed out of memory at {crash.memory_mb} MB, the cap ({crash.cap_mb} MB)")
    if crash.attempt >= MAX_ATTEMPTS:
        return GiveUp(f"still out of memory after {crash.attempt} re-runs")
    if not crash.fargate:
        size = Size(min(crash.memory_mb * 2, crash.cap_mb))
    elif (fargate := _fargate_doubled(crash)) is not None:
        size = fargate
    else:
        return GiveUp(f"killed out of memory at {crash.memory_mb} MB: no Fargate size above it within the cap")
    return Rerun(size.memory_mb, rerun_tags(crash), idempotency_key(crash.run_id), size.cpu)


def _fargate_doubled(crash: Crash) -> Size | None:
    """The smallest Fargate size with double the memory, else the largest within the cap; never less cpu."""
    assert crash.memory_mb is not None
    larger = [s for s in fargate_sizes(crash.cpu) if crash.memory_mb < s.memory_mb <= crash.cap_mb]
    return next((s for s in larger if s.memory_mb >= 2 * crash.memory_mb), larger[-1] if larger else None)


def rerun_tags(crash: Crash) -> frozenset[str]:
    """The crashed run's own tags, with the chain's marks moved one attempt on."""
    kept = {tag for tag in crash.tags if not tag.startswith(_HEAL_TAGS)}
    return frozenset(kept | {ROOT_TAG + crash.root, f"{ATTEMPT_TAG}{crash.attempt + 1}", HEALS_TAG + crash.run_id})


def idempotency_key(run_id: str) -> str:
    """One re-run per crash, however often the healer is started for it."""
    return f"lakeops-heal-{run_id}"


def remember(current_mb: int | None, worked_mb: int) -> int | None:
    """The deployment's new `memory` once a re-run at `worked_mb` completed, or None to leave it.

    Only ever upward: a size that worked replaces a smaller (or no) default, never a larger one, so two
    chains finishing in any order leave the larger, and a human's larger choice stands.
    """
    return worked_mb if current_mb is None or worked_mb > current_mb else None


def raised(current_mb: int | None, current_cpu: int | None, worked: Size, fargate: bool) -> Size | None:
    """The size a deployment now running with `current_*` gets once `worked` completed, or None to leave it.

    Memory only upward (`remember`); on Fargate the cpu is never lowered either, and the pair is a valid task
    size (a larger cpu chosen by a human may need more memory than what worked).
    """
    memory = remember(current_mb, worked.memory_mb)
    if memory is None:
        return None
    if not fargate:
        return Size(memory)
    cpu = max(current_cpu or 0, worked.cpu or 0) or None
    return fargate_fit(memory, cpu) or Size(memory, cpu)


REMEMBERED_TAG = "lakeops-remembered-memory"  # on each Prefect variable that remembers a healed size


@dataclass(frozen=True)
class Remembered:
    """The largest size a deployment's healed runs needed on a work pool, kept in a Prefect variable.

    `prefect deploy` sets a deployment's job variables back to its file's; the variable outlives it, and
    the deploy path raises the deployment to it again (admin/remembered_memory.py).
    """

    deployment: str  # <flow>/<deployment>
    work_pool: str
    size: Size

    @property
    def variable(self) -> str:
        return memory_variable(self.work_pool, self.deployment)

    def value(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "work_pool": self.work_pool, **self.size.job_variables()}

    @classmethod
    def parse(cls, value: object) -> "Remembered | None":
        """The record a variable holds, or None when it is not one (edited by hand, say)."""
        if not isinstance(value, dict):
            return None
        deployment, pool, memory, cpu = (value.get(k) for k in ("deployment", "work_pool", "memory", "cpu"))
        if not (isinstance(deployment, str) and isinstance(pool, str) and isinstance(memory, int)):
            return None
        return cls(deployment, pool, Size(memory, cpu if isinstance(cpu, int) else None))

    def merged(self, known: "Remembered | None", fargate: bool) -> "Remembered | None":
        """What the variable should hold once this size worked, given what it holds; None to leave it."""
        if known is None:
            return self
        size = raised(known.size.memory_mb, known.size.cpu, self.size, fargate)
        return None if size is None else Remembered(self.deployment, self.work_pool, size)


def memory_variable(work_pool: str, deployment: str) -> str:
    """The Prefect variable remembering a deployment's size on a pool (lowercase, digits, - and _ only)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", f"{work_pool}--{deployment}".lower())[:180]
    digest = hashlib.sha256(f"{work_pool}\0{deployment}".encode()).hexdigest()[:10]
    return f"lakeops-memory--{slug}--{digest}"


def in_effect(base_job_template: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    """The job variables a run gets: the first layer (run, deployment) that sets each, else the pool's default."""
    properties = base_job_template.get("variables", {}).get("properties", {})
    defaults = {name: spec.get("default") for name, spec in properties.items()}
    return {k: v for layer in (defaults, *reversed(layers)) for k, v in layer.items() if v is not None}


def gave_up_alert(
    deployment: str, run_name: str, run_id: str, crash: Crash, give_up: GiveUp, run_url: str | None = None
) -> tuple[str, str]:
    """The owner's alert: what ran out, at which size, what was tried, and what to do."""
    subject = f"[lakeops] {deployment} out of memory at the cap ({crash.memory_mb} MB): {give_up.classification}"
    more = (fargate_fit(crash.cap_mb * 2, crash.cpu) if crash.fargate else None) or Size(crash.cap_mb * 2)
    cpu = f" --job-variable cpu={more.cpu}" if more.cpu is not None else ""
    lines = [
        f"Deployment {deployment}, flow run {run_name} ({run_id}) was killed out of memory ({crash.killed}).",
        f"Memory tried: {crash.memory_mb} MB; cap: {crash.cap_mb} MB; re-runs in this chain: {crash.attempt} "
        f"(first run {crash.root}).",
        f"Not re-run again: {give_up.reason}. Classified {give_up.classification}: this input needs more memory "
        "than the deployment may have (a bigger or skewed batch), so look at the data before adding memory.",
        f"To run it anyway with more memory: prefect deployment run '{deployment}' --job-variable "
        f"memory={more.memory_mb}{cpu} --job-variable memory_cap={more.memory_mb} (and the same parameters).",
    ]
    if run_url:
        lines.append(f"Run: {run_url}")
    return subject, "\n".join(lines)


def _tag_value(tags: frozenset[str], prefix: str) -> str | None:
    return next((tag.removeprefix(prefix) for tag in sorted(tags) if tag.startswith(prefix)), None)
