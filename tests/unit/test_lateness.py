"""lakeops.lateness and the source's policy behind it: a day file's rows split by how late each is."""

import math
import statistics
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from declarations.flights import landing
from lakeops.datasets.declaration import LatePolicy, Source
from lakeops.datasets.windows import Window
from lakeops.ingest import batches, lateness
from lakeops.ingest.lateness import MIN_OBSERVATIONS

from .flights import BRONZE_FLIGHTS, REGISTRY, SOURCE, land, parse
from .versioning_helpers import RUN

EVENT_TIME = SOURCE.event_time  # flights: the year, month and day columns
FILE_DAY = date(2013, 1, 10)
WINDOW = Window(FILE_DAY)
LATE = {date(2013, 1, 9): 2, date(2013, 1, 8): 3, date(2013, 1, 7): 2, date(2013, 1, 1): 4}  # day -> rows carried


def jan(day: int) -> date:
    return date(2013, 1, day)


def file_of(day: date, late: dict[date, int]) -> pd.DataFrame:
    """The day's real rows with `late[d]` real rows of each earlier day d spread among them."""
    own = landing.day_rows(day)
    parts, start = [], 0
    for i, (late_day, count) in enumerate(sorted(late.items())):
        cut = (i + 1) * len(own) // (len(late) + 1)
        parts += [own.iloc[start:cut], landing.day_rows(late_day).iloc[10 : 10 + count]]
        start = cut
    return pd.concat([*parts, own.iloc[start:]], ignore_index=True)


def typed(frame: pd.DataFrame, day: date = FILE_DAY) -> pd.DataFrame:
    """The file's rows as ingest types them (indexed by line number)."""
    return parse(batches.RawBatch(f"{day}.csv", Window(day), frame.to_csv(index=False).encode()))


def lines_of(frame: pd.DataFrame, day: date) -> list[int]:
    """Line numbers (header is line 1) of the rows dated `day`, computed straight from the frame."""
    days = [date(y, m, d) for y, m, d in zip(frame.year, frame.month, frame.day, strict=True)]
    return [i + 2 for i, d in enumerate(days) if d == day]


@pytest.fixture(scope="module")
def delivered() -> pd.DataFrame:
    return file_of(FILE_DAY, LATE)


# --- split ------------------------------------------------------------------------------------


def test_split_sorts_own_late_per_window_and_too_late_rows_by_line(delivered):
    arrival = lateness.split(typed(delivered), WINDOW, 3, EVENT_TIME)

    assert list(arrival.own.index) == lines_of(delivered, FILE_DAY)
    assert len(arrival.own) == len(landing.day_rows(FILE_DAY))
    assert sorted(arrival.late) == [Window(jan(7)), Window(jan(8)), Window(jan(9))]
    for window, rows in arrival.late.items():
        assert list(rows.index) == lines_of(delivered, window.day), window
        assert len(rows) == LATE[window.day]
    assert list(arrival.too_late.index) == lines_of(delivered, jan(1))
    assert arrival.too_late_lag_days == 9
    assert arrival.counts() == {"own": len(arrival.own), "late": 7, "too_late": 4}
    assert arrival.allowed_days == 3
    assert len(arrival.accepted) == len(delivered) - 4
    assert sorted(arrival.accepted.index) == sorted(
        set(range(2, len(delivered) + 2)) - set(lines_of(delivered, jan(1)))
    )


@pytest.mark.parametrize(("allowed", "accepted"), [(2, False), (3, True), (4, True)], ids=["lag+1", "lag", "lag-1"])
def test_a_row_exactly_as_late_as_allowed_is_accepted_one_day_more_is_not(allowed, accepted):
    """A row three days late against an allowance of two, three and four days."""
    frame = file_of(FILE_DAY, {jan(7): 1})

    arrival = lateness.split(typed(frame), WINDOW, allowed, EVENT_TIME)

    assert (Window(jan(7)) in arrival.late) is accepted
    assert len(arrival.too_late) == (0 if accepted else 1)
    assert arrival.too_late_lag_days == (0 if accepted else 3)


def test_no_allowance_quarantines_every_earlier_row(delivered):
    arrival = lateness.split(typed(delivered), WINDOW, 0, EVENT_TIME)

    assert arrival.late == {}
    assert len(arrival.too_late) == sum(LATE.values())
    assert {w.day for w in EVENT_TIME.windows(arrival.too_late)} == set(LATE)
    assert len(arrival.own) == len(landing.day_rows(FILE_DAY))


def test_a_file_of_its_own_day_only_has_nothing_late():
    arrival = lateness.split(typed(landing.day_rows(FILE_DAY)), WINDOW, 3, EVENT_TIME)

    assert (arrival.late, len(arrival.too_late), arrival.too_late_lag_days) == ({}, 0, 0)
    assert arrival.counts() == {"own": len(landing.day_rows(FILE_DAY)), "late": 0, "too_late": 0}


def test_a_late_row_lag_is_counted_in_calendar_days_across_a_month_end():
    day = date(2013, 2, 1)
    frame = file_of(day, {day - timedelta(days=2): 1})

    arrival = lateness.split(typed(frame, day), Window(day), 2, EVENT_TIME)

    assert list(arrival.late) == [Window(date(2013, 1, 30))]


# --- the policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "quantile"), [(-1, 0.99), (0, 0.0), (0, 1.5), (2, -0.5)], ids=["days<0", "q=0", "q=1.5", "q<0"]
)
def test_a_policy_out_of_range_is_refused(days, quantile):
    with pytest.raises(ValueError, match="allowed lateness"):
        LatePolicy(days, True, quantile)


def test_the_default_policy_allows_nothing_late():
    assert lateness.NO_LATE_RECORDS == LatePolicy(0, False, 0.99)
    assert LatePolicy(0, quantile=1.0).quantile == 1.0


def linear_quantile(values: list[int], q: float) -> float:
    """The quantile by linear interpolation between the two closest ranks, worked out by hand."""
    ranked = sorted(values)
    position = q * (len(ranked) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ranked) - 1)
    return ranked[low] + (position - low) * (ranked[high] - ranked[low])


def test_a_fixed_policy_ignores_what_was_observed():
    assert lateness.allowance(LatePolicy(2), np.arange(1, 100)) == 2


def test_an_adaptive_policy_uses_the_configured_days_until_enough_lags_are_seen():
    lags = np.full(MIN_OBSERVATIONS - 1, 7)

    assert MIN_OBSERVATIONS == 20
    assert lateness.allowance(LatePolicy(2, adaptive=True), lags) == 2
    assert lateness.allowance(LatePolicy(2, adaptive=True), np.array([], dtype="int64")) == 2


@pytest.mark.parametrize("quantile", [0.5, 0.9, 0.99, 1.0])
def test_an_adaptive_policy_with_enough_lags_allows_the_rounded_up_quantile(quantile):
    lags = [1] * 12 + [2] * 5 + [3, 4, 6, 9, 14]  # 22 late rows, a long tail

    allowance = lateness.allowance(LatePolicy(2, adaptive=True, quantile=quantile), np.array(lags))

    assert allowance == math.ceil(linear_quantile(lags, quantile))
    assert allowance == {0.5: 1, 0.9: 6, 0.99: 13, 1.0: 14}[quantile]


# --- lags observed in Bronze ------------------------------------------------------------------


def bronze_like(carried: dict[str, list[date]]) -> pd.DataFrame:
    """Bronze's lag columns: for each delivered batch (by its id), real rows of the given event days."""
    frames = []
    for batch_id, days in carried.items():
        for day in days:
            rows = landing.day_rows(day).iloc[:1][["year", "month", "day"]]
            frames.append(rows.assign(_batch_id=batch_id))
    frame = pd.concat(frames, ignore_index=True)
    assert tuple(frame.columns) == lateness.lag_columns(EVENT_TIME)
    return frame


def test_observed_lags_are_the_days_between_a_late_row_and_its_file():
    bronze = bronze_like(
        {"2013-01-04-0123456789ab": [jan(4), jan(4), jan(2), jan(3)], "2013-01-10-ba9876543210": [jan(10), jan(1)]}
    )

    assert sorted(lateness.observed_lags(bronze, EVENT_TIME).tolist()) == [1, 2, 9]
    assert lateness.observed_lags(bronze.iloc[:0], EVENT_TIME).tolist() == []


def test_observed_lags_skip_a_batch_not_named_by_its_day():
    """A Bronze row whose batch id carries no date (one not named by its window) says nothing about lateness.

    The code means to count it as on time (`isinstance(d, date) else 0`), but a coerced NaT is a
    `date` instance, so `NaT - date` raises and every adaptive landing fails.
    """
    bronze = bronze_like({"2013-01-04-0123456789ab": [jan(2)], "resent-january": [jan(3)]})

    assert lateness.observed_lags(bronze, EVENT_TIME).tolist() == [2]


def test_an_adaptive_landing_learns_its_allowance_from_the_late_rows_already_in_bronze(catalog, drop_day):
    seeded = file_of(jan(4), {jan(3): 12, jan(2): 10})
    land(catalog, drop_day(jan(4), seeded.to_csv(index=False)), RUN, LatePolicy(2))
    seen = catalog.load_table(BRONZE_FLIGHTS.identifier).scan().to_pandas()
    lags = [
        (date.fromisoformat(s[:10]) - date(y, m, d)).days
        for s, y, m, d in zip(seen._source, seen.year, seen.month, seen.day, strict=True)
    ]
    late = [lag for lag in lags if lag > 0]  # 12 rows one day late, 10 rows two days: the median is 1
    later = file_of(jan(6), {jan(5): 2, jan(4): 4})

    landed = land(catalog, drop_day(jan(6), later.to_csv(index=False)), RUN, LatePolicy(5, adaptive=True, quantile=0.5))

    assert len(late) == 22 and landed.allowed_days == max(1, math.ceil(statistics.median(late))) == 1
    assert [s.window for s in landed.extended] == ["2013-01-05"]
    assert landed.too_late_lines == tuple(lines_of(later, jan(4)))  # the configured 5 days would take them


# --- the source's policy ---------------------------------------------------------------------


def test_the_source_declares_its_lateness_policy():
    declared = replace(SOURCE, lateness=LatePolicy(3, True, 0.9))

    policy = declared.lateness
    assert (policy.allowed_days, policy.adaptive, policy.quantile) == (3, True, 0.9)
    assert policy == LatePolicy(3, True, 0.9)
    assert SOURCE.lateness == LatePolicy(allowed_days=3)  # the flights team allows three days


def test_a_source_allows_nothing_late_by_default():
    declared = Source(SOURCE.path, SOURCE.columns, SOURCE.natural_key, SOURCE.event_time)

    policy = declared.lateness
    assert (policy.allowed_days, policy.adaptive, policy.quantile) == (0, False, 0.99)
    assert policy == lateness.NO_LATE_RECORDS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_lateness_days", -1),
        ("allowed_lateness_days", 1.5),
        ("allowed_lateness_days", "3"),
        ("allowed_lateness_days", True),
        ("adaptive_lateness", "yes"),
        ("adaptive_lateness", 1),
        ("lateness_quantile", 0),
        ("lateness_quantile", 1.5),
        ("lateness_quantile", "p99"),
        ("lateness_quantile", True),  # YAML 1.1 reads `yes` as true; it must not become the quantile 1.0
    ],
)
def test_a_lateness_field_in_an_environments_overrides_is_refused_naming_the_dataset_and_the_field(field, value):
    """Lateness is the source's, declared in code: a registry file's `readiness:` section cannot set it."""
    with pytest.raises(ValueError) as caught:
        REGISTRY.with_readiness({"flights": {field: value}})

    assert "dataset flights" in str(caught.value)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [{"allowed_days": 1.5}, {"allowed_days": True}, {"adaptive": "yes"}, {"quantile": True}, {"allowed_days": -1}],
)
def test_a_late_policy_of_the_wrong_type_is_refused_when_declared(fields):
    with pytest.raises(ValueError):
        LatePolicy(**fields)


def test_a_source_whose_drift_flag_is_not_a_boolean_is_refused_when_declared():
    with pytest.raises(ValueError, match="accept_additive_drift is true or false"):
        replace(SOURCE, accept_additive_drift="yes")
