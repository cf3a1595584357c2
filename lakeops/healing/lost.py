"""Lost runs: a run whose process or worker died without a word, marked Crashed when its heartbeats stopped.

Such a run has no exit code to judge: it is started again once, as it was (same parameters, job
variables and queue); a re-run that is lost as well is given up and alerted, as infrastructure.
"""

from dataclasses import dataclass

from lakeops.datasets.names import SILENT_RUNS_AUTOMATION
from lakeops.healing import oom
from lakeops.healing.oom import GiveUp

LOST_TAG = "lakeops-heal-lost"  # on the re-run of a lost run (kept along its chain): lost again, it is given up


@dataclass(frozen=True)
class Restart:
    """Start a lost run again as it was: same parameters, job variables and queue."""

    tags: frozenset[str]
    idempotency_key: str


def was_lost(crash: oom.Crash) -> bool:
    """Marked Crashed by the silent-runs automation: no heartbeat came, so its process or worker died."""
    return (crash.message or "").startswith(SILENT_RUNS_AUTOMATION)


def decide_lost(crash: oom.Crash) -> Restart | GiveUp:
    """A lost run is re-run once (one re-run per crash); a chain already re-run after a loss is given up."""
    if LOST_TAG in crash.tags:
        return GiveUp(
            f"lost again: its chain (first run {crash.root}) was already re-run once after a lost run",
            classification="infrastructure",
        )
    return Restart(oom.rerun_tags(crash) | {LOST_TAG}, oom.idempotency_key(crash.run_id))
