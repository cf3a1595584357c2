"""Lost runs: a run whose process or worker died without a word, marked Crashed when its heartbeats stopped;
or one whose process crashed before its flow started (the API or the machine was down as it began).

Neither has an exit code to judge nor ran any code of the flow: it is started again once, as it was (same
parameters, job variables and queue); a re-run that is lost as well is given up and alerted, as
infrastructure. An out-of-memory kill before the flow started is the memory rule's, not this one.
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
    """Marked Crashed by the silent-runs automation (no heartbeat came, so its process or worker died), or
    crashed before its flow reached Running, not out of memory (its process could not begin the run)."""
    silent = (crash.message or "").startswith(SILENT_RUNS_AUTOMATION)
    return silent or (not crash.started and not crash.out_of_memory)


def decide_lost(crash: oom.Crash) -> Restart | GiveUp:
    """A lost run is re-run once (one re-run per crash); a chain already re-run after a loss is given up."""
    if LOST_TAG in crash.tags:
        return GiveUp(
            f"lost again: its chain (first run {crash.root}) was already re-run once after a lost run",
            classification="infrastructure",
        )
    return Restart(oom.rerun_tags(crash) | {LOST_TAG}, oom.idempotency_key(crash.run_id))
