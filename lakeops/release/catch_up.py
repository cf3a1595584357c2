"""Catching up: a release whose base moved builds what main gained on both colours, then switches.

While a release builds, compares and waits for a decision, the live pipeline keeps committing to
main of the released tables (a new day's Silver and Gold, a window rebuilt from corrected Bronze).
The switch is compare-and-swap on each table's base, so it would fail. Instead the release catches
up, one round at a time:

1. every window main committed since the base is pinned at the inputs main recorded for it, as
   `blue_green.plan` pins (Silver's lineage column, else the commit's provenance);
2. the windows new to the release, or whose input changed, are built on both colours and compared
   with the release's thresholds; the gate decides on those windows (a human is asked again only
   when they are outside thresholds: no window reaches consumers that no gate saw);
3. the base moves to main's heads, and the switch is tried again.

At most `max_rounds` rounds: a base that moves again after the last one fails the release with
BaseKeptMoving, nothing switched. Green thus holds every window main holds, rebuilt with green's
version, so the promotion never drops a window main gained. Main moved in any other way (by hand,
a rollback, another release's switch) cannot be caught up: CannotCatchUp.
"""

from dataclasses import dataclass, replace
from typing import NoReturn, Protocol

from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from lakeops.build.pipeline import Target
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.errors import BaseKeptMoving, BaseMoved, CannotCatchUp
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance
from lakeops.release import promotion, release_log
from lakeops.release.blue_green import ReleasePlan
from lakeops.release.comparison import Comparison
from lakeops.release.release_log import Event
from lakeops.versioning import replay
from lakeops.versioning.maintenance import COMPACTION

MAX_ROUNDS = 3
# What main may gain while a release runs: windows built on main, and compactions (same rows).
CATCHABLE = frozenset({Target().operation, COMPACTION})


@dataclass(frozen=True)
class Lag:
    """What main of a release's tables gained since its base."""

    base: dict[str, int]  # each table's main head now: the release's next base
    commits: dict[str, int]  # table -> commits on main since the base
    sources: tuple[replay.WindowSource, ...]  # windows to build on both colours, pinned as main recorded them

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(s.window for s in self.sources)

    def describe(self) -> str:
        moved = ", ".join(f"{table} {n}" for table, n in self.commits.items() if n)
        built = ", ".join(str(w) for w in self.windows) or "none (no input changed)"
        return f"main moved (commits since the base: {moved}); windows to build on both colours: {built}"


def behind(catalog: Catalog, registry: Registry, release: ReleasePlan) -> Lag | None:
    """What main gained since the release's base, or None when every table's main is still there.

    Raises CannotCatchUp when a main no longer descends from the base, or holds a commit since it
    that is not a window built on main or a compaction.
    """
    # Downstream first: upstream is then at least as new as what downstream's commits read.
    loaded = {ref: lake.load(catalog, ref) for ref in reversed(release.tables)}
    heads = {ref.identifier: _next_base(table, ref, release) for ref, table in loaded.items()}
    if heads == release.base:
        return None
    touched: set[Window] = set()
    commits = {}
    for ref in release.tables:
        made = _since(loaded[ref], ref, release)
        commits[ref.identifier] = len(made)
        grain = registry.by_table(ref)[1].window.grain
        touched |= {Window.parse(m.window, grain) for m in made if m.window}
    first = registry.layer(release.layers[0])
    recorded = replay.recorded_sources(registry, first, loaded[first.table])
    sources = []
    for window in sorted(touched):
        if window not in recorded:
            raise CannotCatchUp(
                f"release {release.release_id}: window {window} was committed on main, but {first.table} main "
                "records no input for it"
            )
        if release.pinned.get(window.key) != recorded[window]:  # new to the release, or its input changed
            sources.append(replay.WindowSource(window, recorded[window], True))
    return Lag({ref.identifier: heads[ref.identifier] for ref in release.tables}, commits, tuple(sources))


def rebase(release: ReleasePlan, lag: Lag) -> ReleasePlan:
    """The release with the lag's windows pinned (added or re-pinned) and main's heads as its base."""
    by_window = {s.window: s for s in release.sources} | {s.window: s for s in lag.sources}
    return replace(release, sources=tuple(by_window[w] for w in sorted(by_window)), base=dict(lag.base))


class Steps(Protocol):
    """The work of a release as its caller runs it (the flow: Prefect tasks, a pause for a human)."""

    def build(self, release: ReleasePlan) -> None:
        """Build both colours of every window of the release not built yet (a build resumes)."""

    def compare(self, release: ReleasePlan, windows: tuple[Window, ...] | None = None) -> Comparison:
        """Compare the colours over `windows`; over every window of the release when None (logged)."""

    def gate(self, release: ReleasePlan, comparison: Comparison, actor: str) -> str | None:
        """Who promotes: `actor` when the comparison is promotable, else whoever approves; None: rejected."""

    def promote(self, release: ReleasePlan, comparison: Comparison, actor: str) -> dict[str, int]:
        """Seal green and switch every table (`promotion.promote`)."""


@dataclass(frozen=True)
class Outcome:
    """How a switch ended: promoted (`switched` names each table's new main) or rejected in a catch-up."""

    release: ReleasePlan  # as finally pinned, after every catch-up round
    comparison: Comparison  # over all of its windows
    actor: str | None  # None: rejected
    switched: dict[str, int]
    rounds: int

    @property
    def promoted(self) -> bool:
        return self.actor is not None


def switch(
    catalog: Catalog,
    registry: Registry,
    release: ReleasePlan,
    comparison: Comparison,
    actor: str,
    steps: Steps,
    max_rounds: int = MAX_ROUNDS,
    flow_run_id: str = "",
) -> Outcome:
    """Switch a gated release, catching up first whenever main moved since its base, at most `max_rounds` times.

    Raises BaseKeptMoving when main moved again after the last round, and CannotCatchUp when main
    moved in a way no rebuild can follow; both logged as a failed release, nothing switched.
    """
    rounds = 0
    while True:
        lag = _look(catalog, registry, release, flow_run_id)
        if lag is None:
            try:
                return Outcome(release, comparison, actor, steps.promote(release, comparison, actor), rounds)
            except BaseMoved:  # a commit landed between the look and the switch
                lag = _look(catalog, registry, release, flow_run_id)
        if rounds == max_rounds:
            _give_up(catalog, release, lag, rounds, flow_run_id)
        rounds += 1
        if lag is None:
            continue
        release = rebase(release, lag)
        reason = f"catch-up {rounds} of at most {max_rounds}: {lag.describe()}"
        release_log.record(catalog, release.entry(Event.CAUGHT_UP, actor=actor, reason=reason, flow_run_id=flow_run_id))
        if not lag.sources:
            continue
        steps.build(release)
        decided = steps.gate(release, steps.compare(release, lag.windows), actor)
        if decided is None:
            return Outcome(release, comparison, None, {}, rounds)
        actor, comparison = decided, steps.compare(release)


def _look(catalog: Catalog, registry: Registry, release: ReleasePlan, flow_run_id: str) -> Lag | None:
    try:
        return behind(catalog, registry, release)
    except CannotCatchUp as exc:
        release_log.record(catalog, release.entry(Event.FAILED, reason=str(exc), flow_run_id=flow_run_id))
        raise


def _give_up(catalog: Catalog, release: ReleasePlan, lag: Lag | None, rounds: int, flow_run_id: str) -> NoReturn:
    moved = lag.describe() if lag else "a main moved under the switch"
    error = BaseKeptMoving(
        f"release {release.release_id}: the base kept moving: after {rounds} catch-up round(s), the most allowed, "
        f"{moved}; nothing was switched. Start the release again when the pipeline is quieter, or allow more "
        "rounds (max_catch_up_rounds)"
    )
    release_log.record(catalog, release.entry(Event.FAILED, reason=str(error), flow_run_id=flow_run_id))
    raise error


def _next_base(table: Table, ref: TableRef, release: ReleasePlan) -> int:
    """Main's head, unless it is this release's seal already (a switch that landed): then the base stays."""
    head = table.current_snapshot()
    if head is None:
        raise CannotCatchUp(f"release {release.release_id}: {ref} main has no snapshot")
    return release.base[ref.identifier] if promotion.sealed_by(head) == release.release_id else head.snapshot_id


def _since(table: Table, ref: TableRef, release: ReleasePlan) -> list[Provenance]:
    """The provenance of each commit on main since the release's base, newest first.

    A main already at this release's seal has nothing since (a switch that landed, retried).
    """
    base, head = release.base[ref.identifier], table.current_snapshot()
    assert head is not None, "a released table has a main head"
    if head.snapshot_id == base or promotion.sealed_by(head) == release.release_id:
        return []
    found: list[Provenance] = []
    for snapshot in ancestors_of(head, table.metadata):
        if snapshot.snapshot_id == base:
            return found
        made = lake.provenance_of(snapshot)
        if made is None or made.branch != lake.MAIN or made.operation not in CATCHABLE:
            raise CannotCatchUp(
                f"release {release.release_id}: {ref} main holds snapshot {snapshot.snapshot_id} "
                f"({made.operation if made else 'no provenance'}) since the release's base {base}; only windows "
                "built on main can be caught up: start the release again"
            )
        found.append(made)
    raise CannotCatchUp(
        f"release {release.release_id}: {ref} main (snapshot {head.snapshot_id}) no longer descends from the "
        f"release's base {base} (rolled back or moved by hand): start the release again"
    )
