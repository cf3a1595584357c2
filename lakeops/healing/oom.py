"""Out-of-memory healing: re-run a crashed run with its memory doubled, up to a cap; remember what worked.

The decisions only; the `heal-crashed-run` flow reads the crashed run and carries them out. A chain of
re-runs is marked by tags (its root run and the attempt number), every re-run of a crash has the same
idempotency key (a second healer for the same crash gets the same run back), and memory only grows
until the cap, so a chain always ends: healed, or given up as data-dependent at the cap.
"""

import re
from dataclasses import dataclass

from lakeops.datasets.names import HEAL_GAVE_UP_EVENT
from lakeops.healing.failures import FailureClass, classify_exit

GAVE_UP_EVENT = HEAL_GAVE_UP_EVENT
DEFAULT_CAP_MB = 8192  # when neither the run, its deployment nor its work pool names a `memory_cap`
MAX_ATTEMPTS = 8  # a backstop only: doubling reaches any sane cap sooner
ROOT_TAG = "lakeops-heal-root:"  # + the id of the run that crashed first
ATTEMPT_TAG = "lakeops-heal-attempt:"  # + 1, 2, ... on each re-run
HEALS_TAG = "lakeops-heals:"  # + the id of the crashed run this one re-runs
_HEAL_TAGS = (ROOT_TAG, ATTEMPT_TAG, HEALS_TAG)
_STATUS_CODE = re.compile(r"status code:? (-?\d+)")  # the process and base workers' Crashed messages


def exit_code(message: str | None) -> int | None:
    """The infrastructure's exit code named in a Crashed state's message, if it names one."""
    found = _STATUS_CODE.search(message or "")
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class Crash:
    """What the healer knows of a crashed run."""

    run_id: str
    message: str | None  # the Crashed state's message
    memory_mb: int | None  # the `memory` it ran with: its own, else its deployment's, else the pool's
    cap_mb: int
    tags: frozenset[str] = frozenset()

    @property
    def exit_code(self) -> int | None:
        return exit_code(self.message)

    @property
    def attempt(self) -> int:
        """0 for a run nobody started to heal another; n for the n-th re-run of a chain."""
        return int(_tag_value(self.tags, ATTEMPT_TAG) or 0)

    @property
    def root(self) -> str:
        return _tag_value(self.tags, ROOT_TAG) or self.run_id


@dataclass(frozen=True)
class Rerun:
    """Run it again with `memory_mb`."""

    memory_mb: int
    tags: frozenset[str]
    idempotency_key: str


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
    if classify_exit(code) is not FailureClass.RESOURCE:
        return NotOurs(f"exit code {code}: not an out-of-memory kill" if code is not None else "no exit code")
    if crash.memory_mb is None:
        return NotOurs("it ran without a memory limit, so the host ran out, not the run: nothing to double")
    if crash.memory_mb >= crash.cap_mb:
        return GiveUp(f"killed out of memory at {crash.memory_mb} MB, the cap ({crash.cap_mb} MB)")
    if crash.attempt >= MAX_ATTEMPTS:
        return GiveUp(f"still out of memory after {crash.attempt} re-runs")
    return Rerun(min(crash.memory_mb * 2, crash.cap_mb), rerun_tags(crash), idempotency_key(crash.run_id))


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


def gave_up_alert(
    deployment: str, run_name: str, run_id: str, crash: Crash, give_up: GiveUp, run_url: str | None = None
) -> tuple[str, str]:
    """The owner's alert: what ran out, at which size, what was tried, and what to do."""
    subject = f"[lakeops] {deployment} out of memory at the cap ({crash.memory_mb} MB): {give_up.classification}"
    lines = [
        f"Deployment {deployment}, flow run {run_name} ({run_id}) was killed out of memory (exit {crash.exit_code}).",
        f"Memory tried: {crash.memory_mb} MB; cap: {crash.cap_mb} MB; re-runs in this chain: {crash.attempt} "
        f"(first run {crash.root}).",
        f"Not re-run again: {give_up.reason}. Classified {give_up.classification}: this input needs more memory "
        "than the deployment may have (a bigger or skewed batch), so look at the data before adding memory.",
        f"To run it anyway with more memory: prefect deployment run '{deployment}' --job-variable "
        f"memory={crash.cap_mb * 2} --job-variable memory_cap={crash.cap_mb * 2} (and the same parameters).",
    ]
    if run_url:
        lines.append(f"Run: {run_url}")
    return subject, "\n".join(lines)


def _tag_value(tags: frozenset[str], prefix: str) -> str | None:
    return next((tag.removeprefix(prefix) for tag in sorted(tags) if tag.startswith(prefix)), None)
