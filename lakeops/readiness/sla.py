"""SLA bookkeeping: facts about each contracted window, the state they add up to, and the decisions.

Facts are appended to `ops.sla_facts` (append-only, so concurrent writers never lose one); a
window's state is a fold over its facts. Decisions are pure: the flows carry them out.
"""

import enum
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression

from lakeops.datasets.filters import equal_to
from lakeops.datasets.names import SLA_FACTS
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake, schemas
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness.contracts import ReadinessContract


class Fact(enum.StrEnum):
    OPENED = "opened"  # the window-opening run started the deadline clock
    SIGNAL = "signal"  # the producer's real (fresh) ready signal
    DEADLINE_MISSED = "deadline_missed"  # the proactive automation fired
    FALLBACK = "fallback"  # the consumer was started on the last good data, marked stale
    NO_FALLBACK = "no_fallback"  # nothing within max age: the consumer was not run
    ALERT_SENT = "alert_sent"
    ALERT_FAILED = "alert_failed"
    RESOLVED = "resolved"  # fresh output replaced the stale one; the resolution was sent


class State(enum.StrEnum):
    OPEN = "open"  # waiting, deadline not reached
    ON_TIME = "on time"
    LATE = "late"  # the signal came after the deadline, no fallback was run
    STALE = "stale fallback used"
    CAUGHT_UP = "caught up"
    MISSED = "missed"
    OVERDUE = "overdue"  # deadline passed and the automation has not acted: the watcher failed
    UNWATCHED = "unwatched"  # a signal exists but the window was never opened: the opening run did not run


@dataclass(frozen=True)
class SlaFact:
    dataset: str
    window: str
    kind: Fact
    at: datetime
    expected_at: datetime | None = None
    deadline: datetime | None = None
    snapshot_id: int | None = None
    source_window: str | None = None
    lateness_s: float | None = None
    detail: str = ""
    flow_run_id: str = ""


@dataclass(frozen=True)
class WindowState:
    dataset: str
    window: str
    state: State
    expected_at: datetime | None
    deadline: datetime | None
    signal_at: datetime | None
    lateness_s: float | None
    fallback_snapshot: int | None
    alerts: int
    facts: tuple[Fact, ...] = field(default=())


def window_state(contract: ReadinessContract, window: str, facts: list[SlaFact], now: datetime) -> WindowState:
    """Fold one window's facts (any order) into its state as of `now`."""
    kinds = {f.kind for f in facts}
    opened = next((f for f in facts if f.kind == Fact.OPENED), None)
    signal = min((f for f in facts if f.kind == Fact.SIGNAL), key=lambda f: f.at, default=None)
    fallback = next((f for f in facts if f.kind == Fact.FALLBACK), None)
    expected = opened.expected_at if opened else None
    deadline = opened.deadline if opened else None
    if signal and opened is None:
        state = State.UNWATCHED
    elif signal:
        late = Fact.DEADLINE_MISSED in kinds or (deadline is not None and signal.at > deadline)
        state = State.CAUGHT_UP if fallback else State.LATE if late else State.ON_TIME
    elif Fact.NO_FALLBACK in kinds:
        state = State.MISSED
    elif fallback:
        gave_up = deadline is not None and now > deadline + contract.give_up_after
        state = State.MISSED if gave_up else State.STALE
    elif Fact.DEADLINE_MISSED in kinds:
        state = State.LATE
    elif deadline is not None:
        state = State.OPEN if now <= deadline else State.OVERDUE
    else:
        state = State.OPEN
    lateness = (signal.at - expected).total_seconds() if signal and expected else None
    return WindowState(
        contract.dataset,
        window,
        state,
        expected,
        deadline,
        signal.at if signal else None,
        lateness,
        fallback.snapshot_id if fallback else None,
        sum(f.kind == Fact.ALERT_SENT for f in facts),
        tuple(sorted({f.kind for f in facts})),
    )


def states(contract: ReadinessContract, facts: list[SlaFact], now: datetime) -> list[WindowState]:
    """Every window of the contract's dataset that has a fact, oldest window first."""
    by_window: dict[str, list[SlaFact]] = {}
    for fact in facts:
        if fact.dataset == contract.dataset:
            by_window.setdefault(fact.window, []).append(fact)
    return [window_state(contract, w, by_window[w], now) for w in sorted(by_window)]


def opening(contract: ReadinessContract, window: Window, now: datetime, scheduled: bool) -> SlaFact:
    """The OPENED fact: on schedule the clock is the contract's; opened by hand it starts now."""
    expected = contract.expected_time(window) if scheduled else now
    return SlaFact(contract.dataset, window.key, Fact.OPENED, now, expected, expected + contract.buffer)


@dataclass(frozen=True)
class Fallback:
    """Run the consumer on `snapshot_id`, carrying forward `source_window`'s data, marked stale."""

    snapshot_id: int
    source_window: date


@dataclass(frozen=True)
class NoFallback:
    reason: str


def decide_fallback(
    contract: ReadinessContract, window: Window, good_snapshot: int | None, windows_in_good: set[date]
) -> Fallback | NoFallback:
    """The newest window within max age in the last known good snapshot, or why there is none."""
    if good_snapshot is None:
        return NoFallback(f"{contract.dataset} has no last-known-good snapshot")
    usable = sorted(d for d in windows_in_good if d == window.day or contract.usable_fallback(window, d))
    if not usable:
        days = contract.max_fallback_age.total_seconds() / 86400
        return NoFallback(
            f"last-known-good snapshot {good_snapshot} of {contract.dataset} holds no window within "
            f"{days:g} days before {window} (newest: {max(windows_in_good, default='none')})"
        )
    return Fallback(good_snapshot, usable[-1])


def alert(
    contract: ReadinessContract, window: WindowState, now: datetime, decision: Fallback | NoFallback
) -> tuple[str, str]:  # noqa: E501
    """Subject and body of the missed-deadline alert, as of `now` (prepared at the opening for the deadline)."""
    late = f"at least {(now - window.expected_at).total_seconds():.0f} s" if window.expected_at else "unknown"
    if isinstance(decision, Fallback):
        plan = (
            f"Fallback: {contract.consumer} runs on {contract.dataset} snapshot {decision.snapshot_id} "
            f"(last known good), carrying forward window {decision.source_window}, marked stale."
        )
    else:
        plan = f"No fallback: {decision.reason}. {contract.consumer} is not run; the window is missed."
    body = (
        f"Dataset {contract.dataset}, window {window.window}: no readiness signal by the deadline.\n"
        f"Producer: {contract.producer}. Owner: {contract.owner}.\n"
        f"Expected at {_iso(window.expected_at)}, deadline {_iso(window.deadline)}, late by {late}.\n{plan}"
    )
    return f"[lakeops] {contract.dataset} {window.window} missed its deadline", body


def resolution(
    contract: ReadinessContract, window: WindowState, fresh_snapshot: int, consumer_table: str
) -> tuple[str, str]:  # noqa: E501
    """Subject and body of the message sent when fresh output replaced the stale one."""
    late = f"{window.lateness_s:.0f} s" if window.lateness_s is not None else "unknown"
    body = (
        f"Dataset {contract.dataset}, window {window.window}: the signal arrived {late} after it was expected; "
        f"{consumer_table} snapshot {fresh_snapshot} (fresh) replaces the stale output built on snapshot "
        f"{window.fallback_snapshot}. Downstream is being refreshed by its triggers."
    )
    return f"[lakeops] {contract.dataset} {window.window} caught up", body


def lateness(facts: list[SlaFact], contract: ReadinessContract, now: datetime) -> tuple[int, float, float] | None:
    """(windows, p50, p95) of signal time minus expected time, seconds, over watched windows."""
    values = [s.lateness_s for s in states(contract, facts, now) if s.lateness_s is not None]
    if not values:
        return None
    if len(values) == 1:
        return 1, values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return len(values), cuts[49], cuts[94]


def record(catalog: Catalog, facts: list[SlaFact], made_by: Provenance) -> None:
    """Append facts to ops.sla_facts in one commit."""
    if not facts:
        return
    rows = pa.Table.from_pylist([{**vars(f), "kind": str(f.kind)} for f in facts], schema=schemas.SLA_FACTS)
    lake.append_rows(lake.load(catalog, SLA_FACTS), rows, made_by)


def read(catalog: Catalog, dataset: str | None = None, window: str | None = None) -> list[SlaFact]:
    """Recorded facts, optionally of one dataset and window."""
    table = lake.load(catalog, SLA_FACTS)
    if table.current_snapshot() is None:
        return []
    where: BooleanExpression = AlwaysTrue()
    if dataset:
        where = equal_to("dataset", dataset)
    if window:
        where = And(where, equal_to("window", window))
    # Arrow, not pandas: a snapshot id column with nulls would become float64 and lose digits.
    rows = table.scan(row_filter=where).to_arrow().to_pylist()
    return [
        SlaFact(
            **{**row, "kind": Fact(row["kind"]), "detail": row["detail"] or "", "flow_run_id": row["flow_run_id"] or ""}
        )
        for row in rows
    ]


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "unknown"
