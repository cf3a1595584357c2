"""The platform report over 10,000 and 100,000 seeded runs: time and the ratio for ten times the runs (target <= 12x).

The runs are made in memory and go through the one report function the flow and `lakeops metrics` use
(`lakeops.metrics.report.compute`: reliability per scope over 1, 7 and 28 days with the burn alerts, velocity,
cost per week and its trend). 24 deployments of 3 datasets over 28 days, in order of expected start (as the
server returns them); 3% of the units fail first and are re-run (a third of those stay failed), 1% are
cancelled; a code version a day, a release a week. The sizes are computed in turn, ROUNDS times each, with only
one size's runs in memory (the collector's work grows with that size alone); the best CPU time of each is
printed (process time: on a shared machine the wall clock also counts the time other processes held the cores).

    .venv/bin/python benchmarks/metrics.py [--small 10000] [--large 100000] [--rounds 5]
"""

import argparse
import gc
import random
import time
from datetime import UTC, datetime, timedelta

from lakeops.metrics import report
from lakeops.metrics.cost import Prices
from lakeops.metrics.facts import Outcome, RunFact
from lakeops.metrics.velocity import Promotion

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
DAYS = 28
DATASETS = ("flights", "weather", "flight_weather")
DEPLOYMENTS = [(f"build-layer/layer{i}.{d}", d) for d in DATASETS for i in range(8)]
PRICES = {"process": Prices(cpu_hour=0.05, gb_hour=0.005), "ecs": Prices()}
TARGET = 12.0


def seeded(runs: int, seed: int = 7) -> tuple[list[RunFact], list[Promotion], dict[str, datetime]]:
    """About `runs` facts spread evenly over the last DAYS days, in the order the server returns them (expected
    start), with their commit times and a promotion a week."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=DAYS)
    committed = {f"v{d}": start + timedelta(days=d, minutes=5) for d in range(DAYS)}
    dues = sorted(start + timedelta(seconds=rng.uniform(3600, DAYS * 86400)) for _ in range(runs))
    facts: list[RunFact] = []
    for n, due in enumerate(dues):
        deployment, dataset = DEPLOYMENTS[n % len(DEPLOYMENTS)]
        version = f"v{min(DAYS - 1, (due - start).days)}"
        unit = f"{due:%Y-%m-%dT%H%M%S}-{n}"
        draw = rng.random()
        first = Outcome.CANCELLED if draw < 0.01 else (Outcome.FAILED if draw < 0.04 else Outcome.COMPLETED)
        facts.append(_fact(len(facts), deployment, dataset, unit, first, due, version, rng))
        if first is Outcome.FAILED:
            again = Outcome.FAILED if rng.random() < 1 / 3 else Outcome.COMPLETED
            facts.append(_fact(len(facts), deployment, dataset, unit, again, due + timedelta(minutes=30), version, rng))
    promotions = [
        Promotion(f"r{w}", DATASETS[w % 3], f"v{w}.0", f"v{w * 7}", start + timedelta(days=w * 7 + 1))
        for w in range(DAYS // 7)
    ]
    return facts, promotions, committed


def _fact(
    n: int, deployment: str, dataset: str, unit: str, outcome: Outcome, due: datetime, version: str, rng: random.Random
) -> RunFact:
    started = due + timedelta(seconds=rng.uniform(1, 30))
    return RunFact(
        flow_run_id=f"run-{n}",
        deployment=deployment,
        dataset=dataset,
        unit=unit,
        outcome=outcome,
        expected_start=due,
        started=started,
        ended=started + timedelta(seconds=rng.uniform(30, 900)),
        attempts=1,
        code_version=version,
        work_pool_type="ecs" if dataset == "weather" else "process",
        requested_cpu=1.0,
        requested_memory_mb=2048.0,
        cpu_seconds=rng.uniform(5, 300),
        peak_memory_mb=rng.uniform(100, 1500),
    )


def timed(data: tuple[list[RunFact], list[Promotion], dict[str, datetime]]) -> tuple[float, report.Report]:
    facts, promotions, committed = data
    gc.collect()  # each round starts from the same heap, not from the previous round's garbage
    began = time.process_time()
    computed = report.compute(facts, promotions, committed, PRICES, NOW)
    return time.process_time() - began, computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = (args.small, args.large)
    best: dict[int, float] = dict.fromkeys(sizes, float("inf"))
    reports: dict[int, report.Report] = {}
    for _ in range(args.rounds):
        for runs in sizes:  # in turn, so both see the same load; one size's runs alive at a time
            seconds, reports[runs] = timed(seeded(runs))
            best[runs] = min(best[runs], seconds)
    for runs in sizes:
        overall = reports[runs].of("all", 28)
        print(f"{runs:>7} runs ({overall.units if overall else 0} units): report in {best[runs] * 1000:8.1f} ms of CPU")
    small, large = best[args.small], best[args.large]
    ratio = large / small
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"ratio {args.large // args.small}x the runs: {ratio:.2f}x the time ({verdict} the target of {TARGET:g}x)")


if __name__ == "__main__":
    main()
