"""Cost: each run's cost from a price model per work pool type, per pipeline-hour per dataset and week, its trend.

A run costs what it requested (job variables `cpu`, `memory`, for its wall time) and what it used
(CPU seconds and peak memory over its wall time, from the memory supervisor). A pipeline-hour is one
hour of flow-run wall time; cost per pipeline-hour is a week's cost over its run hours, so it falls
when runs get cheaper per hour, not when there are fewer of them.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from lakeops.metrics.facts import RunFact

HOUR = 3600.0
FLAT_SLOPE = 0.02  # a weekly slope within 2% of the mean is flat


@dataclass(frozen=True)
class Prices:
    """USD per vCPU-hour and per GB-hour. Default: Fargate on-demand, us-east-1, Linux x86."""

    cpu_hour: float = 0.04048
    gb_hour: float = 0.004445
    default_cpu: float = 1.0  # a run that requested no cpu is priced as one vCPU
    default_memory_mb: float = 2048.0  # and memory as 2 GB

    def __post_init__(self) -> None:
        if min(self.cpu_hour, self.gb_hour, self.default_cpu, self.default_memory_mb) < 0:
            raise ValueError(f"prices and defaults are not negative: {self}")


FARGATE = Prices()  # on-demand, us-east-1, Linux x86: the default of every work pool type
# Work pool types whose `cpu` job variable counts CPU units (1024 to a vCPU); others count vCPUs.
CPU_UNITS = {"ecs": 1024.0, "ecs:push": 1024.0}


def vcpus(work_pool_type: str, cpu: float) -> float:
    """The vCPUs a `cpu` job variable asks for on a work pool of this type."""
    return cpu / CPU_UNITS.get(work_pool_type, 1.0)


@dataclass(frozen=True)
class RunCost:
    requested: float
    used: float | None  # None: the run's usage was not recorded
    hours: float


def run_cost(fact: RunFact, prices: Prices) -> RunCost:
    hours = fact.duration_s / HOUR
    cpu = fact.requested_cpu if fact.requested_cpu is not None else prices.default_cpu
    memory = fact.requested_memory_mb if fact.requested_memory_mb is not None else prices.default_memory_mb
    requested = hours * (cpu * prices.cpu_hour + memory / 1024 * prices.gb_hour)
    used = None
    if fact.cpu_seconds is not None and fact.peak_memory_mb is not None:
        used = fact.cpu_seconds / HOUR * prices.cpu_hour + fact.peak_memory_mb / 1024 * hours * prices.gb_hour
    return RunCost(requested, used, hours)


@dataclass(frozen=True)
class Week:
    """One ISO week of one scope: run hours, cost requested and used, and cost per pipeline-hour."""

    scope: str
    start: date  # the week's Monday
    hours: float
    requested: float
    used: float

    @property
    def per_pipeline_hour(self) -> float | None:
        return self.requested / self.hours if self.hours else None


def weekly(facts: Iterable[RunFact], prices: Mapping[str, Prices], default: Prices = FARGATE) -> list[Week]:
    """Per scope ("all" and each dataset) and ISO week: hours and cost, priced by each run's work pool type."""
    sums: dict[tuple[str, date], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    mondays: dict[date, date] = {}
    for fact in facts:
        cost = run_cost(fact, prices.get(fact.work_pool_type, default))
        day = fact.expected_start.date()
        monday = mondays.get(day) or mondays.setdefault(day, day - timedelta(days=day.weekday()))
        used = cost.used if cost.used is not None else cost.requested
        for scope in ("all", f"dataset:{fact.dataset}") if fact.dataset else ("all",):
            acc = sums[(scope, monday)]
            acc[0] += cost.hours
            acc[1] += cost.requested
            acc[2] += used
    return [Week(scope, monday, *acc) for (scope, monday), acc in sorted(sums.items())]


@dataclass(frozen=True)
class Trend:
    scope: str
    weeks: int
    slope: float | None  # cost per pipeline-hour change per week (least squares), None under two weeks
    direction: str  # "down", "flat", "up" or "unknown"
    rising_two_weeks: bool  # the last two weeks each rose over the one before: alert


def trend(weeks: Iterable[Week], scope: str, last: int = 6) -> Trend:
    """The slope of cost per pipeline-hour over the scope's last `last` weeks with runs."""
    series = [w.per_pipeline_hour for w in sorted(weeks, key=lambda w: w.start) if w.scope == scope]
    values = [v for v in series if v is not None][-last:]
    if len(values) < 2:
        return Trend(scope, len(values), None, "unknown", False)
    slope = _slope(values)
    mean = sum(values) / len(values)
    direction = "flat" if abs(slope) <= FLAT_SLOPE * mean else ("up" if slope > 0 else "down")
    rising = len(values) >= 3 and values[-1] > values[-2] > values[-3]
    return Trend(scope, len(values), slope, direction, rising)


def _slope(values: list[float]) -> float:
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    return num / sum((x - mean_x) ** 2 for x in range(n))
