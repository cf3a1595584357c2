"""30 daily windows through the SLA machinery on a simulated clock: ~20% late, one never arrives.

The recipe is the flows' (sla-open-window, the proactive automation, sla-deadline-missed, the
producer, the consumers' catch-up), driven by the core functions they call, on real tables.
"""

import random
from datetime import date, timedelta

import pytest
from pyiceberg.expressions import AlwaysTrue

from lakeops.build import pipeline
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake, tags
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness import contracts, sla

from .flights import (
    BRONZE,
    BRONZE_FLIGHTS,
    FLIGHTS,
    GOLD_DAILY_DELAYS,
    REGISTRY,
    SILVER_FLIGHTS,
    build_gold,
    build_silver,
    ingest_bronze,
)

# The flights declaration's contract, as the SLA flows derive it.
CONTRACT = contracts.of(REGISTRY, FLIGHTS)
RUN = pipeline.RunInfo("simulation", "git:test")
MADE_BY = Provenance("git:test", "simulation", "", "", operation="sla")
WINDOWS = [Window(date(2013, 1, 1) + timedelta(days=i)) for i in range(30)]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):  # noqa: ANN201
    from declarations.flights import landing
    from lakeops.settings import LakeSettings

    root = tmp_path_factory.mktemp("sla-sim")
    settings = LakeSettings(home=root / "lake")
    catalog = lake.open_catalog("sim", lake.embedded_properties(settings))
    lake.ensure_tables(catalog, REGISTRY)
    rng = random.Random(13)
    never = WINDOWS[17]
    late = set(rng.sample([w for w in WINDOWS[1:] if w != never], 6))  # 20% of 30
    alerts, resolutions = [], []

    def arrive(window: Window, at) -> None:  # noqa: ANN001 - the producer, then Silver (and Gold) on its signal
        from lakeops.ingest import batches

        batch = batches.read_raw(landing.drop_day_file(root / "landing", window.day), window)
        signal = ingest_bronze(catalog, batch, RUN)
        sla.record(
            catalog,
            [sla.SlaFact(CONTRACT.dataset, window.key, sla.Fact.SIGNAL, at, snapshot_id=signal.snapshot_id)],
            MADE_BY,
        )  # noqa: E501
        silver = build_silver(catalog, window, signal.snapshot_id, RUN)
        build_gold(catalog, window, silver.snapshot_id, RUN)
        facts = sla.read(catalog, CONTRACT.dataset, window.key)
        state = sla.window_state(CONTRACT, window.key, facts, at)
        if state.state == sla.State.CAUGHT_UP:  # flows.sla.resolve_if_caught_up
            resolutions.append(sla.resolution(CONTRACT, state, silver.snapshot_id, SILVER_FLIGHTS.identifier))
            sla.record(catalog, [sla.SlaFact(CONTRACT.dataset, window.key, sla.Fact.RESOLVED, at)], MADE_BY)

    def automation_fires(window: Window, at) -> None:  # noqa: ANN001 - flows.sla_deadline_missed
        facts = sla.read(catalog, CONTRACT.dataset, window.key)
        state = sla.window_state(CONTRACT, window.key, facts, at)
        bronze = lake.load(catalog, BRONZE_FLIGHTS)
        good = tags.last_known_good(bronze)
        decision = sla.decide_fallback(
            CONTRACT,
            window,
            good.snapshot_id if good else None,
            {w.day for w in lake.windows_in(bronze, BRONZE.window, good.snapshot_id)} if good else set(),
        )
        new = [
            sla.SlaFact(CONTRACT.dataset, window.key, sla.Fact.DEADLINE_MISSED, at, state.expected_at, state.deadline)
        ]
        if isinstance(decision, sla.Fallback):
            stale = build_silver(
                catalog, window, decision.snapshot_id, RUN, stale=True, carry_from=Window(decision.source_window)
            )
            build_gold(catalog, window, stale.snapshot_id, RUN, stale=True)
            new.append(
                sla.SlaFact(CONTRACT.dataset, window.key, sla.Fact.FALLBACK, at, snapshot_id=decision.snapshot_id)
            )
        else:
            new.append(sla.SlaFact(CONTRACT.dataset, window.key, sla.Fact.NO_FALLBACK, at, detail=decision.reason))
        alerts.append(sla.alert(CONTRACT, state, at, decision))
        new.append(sla.SlaFact(CONTRACT.dataset, window.key, sla.Fact.ALERT_SENT, at))
        sla.record(catalog, new, MADE_BY)

    # The timeline: each window opens on schedule; on-time signals land inside the buffer; the
    # automation acts on every window overdue at its tick; late data lands 1 to 10 hours late.
    timeline = []
    for window in WINDOWS:
        expected = CONTRACT.expected_time(window)
        timeline.append((expected, 0, "open", window))
        if window in late:
            timeline.append((expected + CONTRACT.buffer + timedelta(hours=rng.uniform(1, 10)), 2, "arrive", window))
        elif window != never:
            timeline.append((expected + timedelta(minutes=rng.uniform(-120, 25)), 2, "arrive", window))
    end = CONTRACT.expected_time(WINDOWS[-1]) + timedelta(days=4)
    # The proactive automation evaluates when each window's deadline has passed (Prefect: every 5 s).
    ticks = [CONTRACT.expected_time(w) + CONTRACT.buffer + timedelta(minutes=1) for w in WINDOWS]
    timeline += [(t, 1, "tick", None) for t in ticks]
    for at, _, what, window in sorted(timeline, key=lambda e: (e[0], e[1])):
        if what == "open":
            sla.record(catalog, [sla.opening(CONTRACT, window, at, scheduled=True)], MADE_BY)
        elif what == "arrive":
            arrive(window, at)
        else:
            for state in sla.states(CONTRACT, sla.read(catalog, CONTRACT.dataset), at):
                if state.state == sla.State.OVERDUE:
                    automation_fires(Window.parse(state.window), at)
    final = {s.window: s for s in sla.states(CONTRACT, sla.read(catalog, CONTRACT.dataset), end)}
    return catalog, final, late, never, alerts, resolutions


def test_every_window_ends_fresh_or_explicitly_missed(simulated) -> None:
    _, final, late, never, _, _ = simulated
    assert sorted(final) == [w.key for w in WINDOWS]  # none silently skipped
    for window in WINDOWS:
        expected = sla.State.MISSED if window == never else sla.State.CAUGHT_UP if window in late else sla.State.ON_TIME
        assert final[window.key].state == expected, window


def test_one_alert_per_late_window_plus_the_missing_one(simulated) -> None:
    _, final, late, never, alerts, resolutions = simulated
    assert len(alerts) == len(late) + 1
    assert {subject.split()[2] for subject, _ in alerts} == {w.key for w in late} | {never.key}
    assert sum(state.alerts for state in final.values()) == len(late) + 1
    assert len(resolutions) == len(late)  # every late window was caught up and said so


def test_the_lake_ends_with_real_data_for_every_window_that_arrived(simulated) -> None:
    catalog, _, _, never, _, _ = simulated
    silver = lake.read(lake.load(catalog, SILVER_FLIGHTS), AlwaysTrue())
    bronze = lake.read(lake.load(catalog, BRONZE_FLIGHTS), AlwaysTrue(), columns=("year", "month", "day", "_batch_id"))
    bronze["window"] = [
        date(int(y), int(m), int(d)) for y, m, d in zip(bronze.year, bronze.month, bronze.day, strict=True)
    ]
    for window in WINDOWS:
        in_silver = silver[silver["flight_date"] == window.day]
        if window == never:
            # The stale fallback stays, marked as such: an earlier window's rows carried forward.
            (batch,) = set(in_silver["_batch_id"])
            (source,) = set(bronze.loc[bronze["_batch_id"] == batch, "window"])
            assert timedelta(0) < window.day - source <= CONTRACT.max_fallback_age
            assert len(in_silver) == (bronze["window"] == source).sum()
        else:
            day = bronze[bronze["window"] == window.day]
            assert len(in_silver) == len(day) and set(in_silver["_batch_id"]) == set(day["_batch_id"])
    gold = lake.read(lake.load(catalog, GOLD_DAILY_DELAYS), AlwaysTrue())
    assert len(gold) == 3 * len(WINDOWS) and gold.groupby("flight_date").size().eq(3).all()


def test_lateness_is_recorded_per_window(simulated) -> None:
    _, final, late, never, _, _ = simulated
    for window in WINDOWS:
        lateness = final[window.key].lateness_s
        if window == never:
            assert lateness is None
        elif window in late:
            assert lateness > CONTRACT.buffer.total_seconds()
        else:
            assert lateness <= CONTRACT.buffer.total_seconds()
