"""Velocity: lead time from commit to production and the other DORA keys, for code and transform versions.

- A code change is a code version (the git commit recorded on every deployment, with its commit time,
  recorded when it is deployed: a worker may have no git). It reaches production with the first
  completed run of a deployment carrying it. Its lead time is that run's end minus the commit time.
- A transform change is a release of a dataset's version. It reaches production when the release is
  promoted (`ops.releases`); its lead time is the promotion minus the commit time of the code version
  the release ran.
- Change failure: a code version whose first production runs failed (the first run of each
  deployment carrying it did not complete at its first attempt), or a promotion later rolled back.
- Time to restore: a failed unit (a deployment's window) to its next success; a promotion to its rollback.
- Deployment frequency: changes reaching production per week over the period.
"""

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lakeops.metrics.facts import Outcome, RunFact
from lakeops.release.release_log import Event, Release

LEAD_TIME_OBJECTIVE = timedelta(hours=1)


@dataclass(frozen=True)
class Promotion:
    """A release from the release log: when it was promoted and, if so, rolled back."""

    release_id: str
    dataset: str
    version: str
    code_version: str | None
    promoted_at: datetime
    rolled_back_at: datetime | None = None


@dataclass(frozen=True)
class Change:
    kind: str  # "code" or "transform"
    name: str  # the code version, or <dataset>@<transform version>
    committed_at: datetime | None
    production_at: datetime | None  # None: never reached production
    failed: bool

    @property
    def lead_time(self) -> timedelta | None:
        if self.committed_at is None or self.production_at is None:
            return None
        return self.production_at - self.committed_at


def committed_times(facts: Iterable[RunFact], deployed: Mapping[str, datetime] | None = None) -> dict[str, datetime]:
    """The commit time of each code version the runs carried (as recorded when deployed), and of `deployed` ones."""
    found = {f.code_version: f.code_committed_at for f in facts if f.code_version and f.code_committed_at}
    return {**found, **(deployed or {})}


def code_changes(facts: Iterable[RunFact], committed: Mapping[str, datetime]) -> list[Change]:
    """One change per deployed code version (those `committed` knows), in order of commit."""
    carrying: dict[str, list[RunFact]] = defaultdict(list)
    for run in facts:
        version = run.code_version
        if version is not None and version in committed and run.outcome is not Outcome.CANCELLED:
            carrying[version].append(run)
    changes = []
    for version, at in sorted(committed.items(), key=lambda kv: kv[1]):
        runs = sorted(carrying.get(version, []), key=lambda r: (r.expected_start, r.flow_run_id))
        done = [r.ended or r.expected_start for r in runs if r.outcome is Outcome.COMPLETED]
        firsts: dict[str, RunFact] = {}
        for run in runs:
            firsts.setdefault(run.deployment, run)
        failed = any(r.outcome is not Outcome.COMPLETED or r.attempts > 1 for r in firsts.values())
        changes.append(Change("code", version, at, min(done) if done else None, failed))
    return changes


def promotions(releases: Iterable[Release], code_versions: Mapping[str, str]) -> list[Promotion]:
    """The promoted releases of the log, each with the code version its release run carried (by flow run id)."""
    return [p for p in (_promotion(r, code_versions) for r in releases) if p is not None]


def _promotion(release: Release, code_versions: Mapping[str, str]) -> Promotion | None:
    promoted = release.last(Event.PROMOTED)
    if promoted is None:
        return None
    back = release.last(Event.ROLLED_BACK)
    return Promotion(
        release.release_id,
        release.dataset,
        release.first.green_version,
        code_versions.get(release.first.flow_run_id),
        promoted.at,
        back.at if back is not None and back.at >= promoted.at else None,
    )


def transform_changes(promotions: Iterable[Promotion], committed: Mapping[str, datetime]) -> list[Change]:
    """One change per promoted release; failed when it was rolled back."""
    return [
        Change(
            "transform",
            f"{p.dataset}@{p.version}",
            committed.get(p.code_version) if p.code_version else None,
            p.promoted_at,
            p.rolled_back_at is not None,
        )
        for p in sorted(promotions, key=lambda p: p.promoted_at)
    ]


def restore_times(facts: Iterable[RunFact], promotions: Iterable[Promotion] = ()) -> list[timedelta]:
    """Each failed unit's time from its first failure to its next success, and each promotion's to its rollback."""
    listed = [f for f in facts if f.outcome is not Outcome.CANCELLED]
    failed = {(f.deployment, f.unit) for f in listed if f.outcome is not Outcome.COMPLETED}
    by_unit: dict[tuple[str, str], list[RunFact]] = defaultdict(list)
    for fact in listed:
        if (fact.deployment, fact.unit) in failed:  # only a unit that failed can be restored
            by_unit[(fact.deployment, fact.unit)].append(fact)
    times = []
    for runs in by_unit.values():
        runs.sort(key=lambda r: (r.expected_start, r.flow_run_id))
        failed_at: datetime | None = None
        for run in runs:
            if run.outcome is not Outcome.COMPLETED and failed_at is None:
                failed_at = run.ended or run.expected_start
            elif run.outcome is Outcome.COMPLETED and failed_at is not None:
                times.append((run.ended or run.expected_start) - failed_at)
                failed_at = None
    times += [p.rolled_back_at - p.promoted_at for p in promotions if p.rolled_back_at is not None]
    return times


@dataclass(frozen=True)
class Velocity:
    changes: int
    in_production: int
    lead_p50: timedelta | None
    lead_p90: timedelta | None
    per_week: float
    change_failure_rate: float | None
    restore_p50: timedelta | None
    objective: timedelta = LEAD_TIME_OBJECTIVE

    @property
    def meets_objective(self) -> bool | None:
        return None if self.lead_p50 is None else self.lead_p50 <= self.objective


def velocity(changes: Iterable[Change], restores: Iterable[timedelta], now: datetime, period: timedelta) -> Velocity:
    """The DORA keys of the changes committed in (now - period, now]."""
    chosen = [c for c in changes if c.committed_at is not None and now - period < c.committed_at <= now]
    live = [c for c in chosen if c.production_at is not None]
    leads = sorted(c.lead_time for c in live if c.lead_time is not None)
    restored = sorted(restores)
    return Velocity(
        len(chosen),
        len(live),
        quantile(leads, 0.5),
        quantile(leads, 0.9),
        len(live) / (period / timedelta(weeks=1)),
        sum(c.failed for c in live) / len(live) if live else None,
        quantile(restored, 0.5),
    )


def quantile(values: list[timedelta], q: float) -> timedelta | None:
    """The q-quantile by linear interpolation between closest ranks (the median of two is their mean)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    seconds = statistics.quantiles([v.total_seconds() for v in values], n=100, method="inclusive")
    return timedelta(seconds=seconds[round(q * 100) - 1])
