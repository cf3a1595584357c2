"""Backfill's window chains: run side by side they land every window exactly once through every layer, in
each window's order, and run again they change nothing (TPC-H lineitem at a small scale factor)."""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.compute as pc
import pytest
from pyiceberg.expressions import AlwaysTrue

from declarations import tpch
from declarations.tpch import generate, q1
from lakeops.build import backfill, pipeline, validation
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.iceberg import commits, lake
from lakeops.settings import LakeSettings
from tests.unit.test_tpch_pipeline import SCALE_FACTOR

MONTHS = ("1994-01", "1994-02", "1994-03", "1994-04", "1994-05", "1994-06")
REGISTRY = Registry((tpch.DATASET,))
RUN = pipeline.RunInfo("run-1", "test")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generated = generate.generate(SCALE_FACTOR, tmp_path_factory.mktemp("tpchgen"))
    landing = tmp_path_factory.mktemp("landing")
    for month in MONTHS:
        generate.land_month(generated, landing, month)
    return landing


@pytest.fixture
def catalog(tmp_path: Path):  # noqa: ANN201
    opened = lake.open_catalog("tpch", lake.embedded_properties(LakeSettings(home=tmp_path / "lake")))
    lake.ensure_tables(opened, REGISTRY)
    return opened


def chains_side_by_side(catalog, landing: Path, workers: int) -> list[backfill.Chain]:  # noqa: ANN001
    windows = backfill.landed_windows(landing, tpch.DATASET)

    def chain(window: Window) -> backfill.Chain:
        return backfill.run_window(catalog, REGISTRY, "tpch", landing, window, RUN, "v1", validation.validate)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(chain, windows))


def rows_of(catalog, layer: str):  # noqa: ANN001, ANN201
    return lake.read_arrow(lake.load(catalog, REGISTRY.layer(layer).table), AlwaysTrue())


def inputs_of(catalog, layer: str, snapshot_id: int) -> dict[str, int]:  # noqa: ANN001
    table = lake.load(catalog, REGISTRY.layer(layer).table)
    made = lake.provenance_of(table.snapshot_by_id(snapshot_id))
    assert made is not None
    return dict(made.inputs)


def test_landed_windows_are_the_source_files_in_order_within_a_range(landing):
    (landing / "lineitem" / "notes.txt").write_text("not a window")

    assert [w.key for w in backfill.landed_windows(landing, tpch.DATASET)] == list(MONTHS)
    assert [w.key for w in backfill.landed_windows(landing, tpch.DATASET, "1994-02", "1994-04")] == list(MONTHS[1:4])


def test_the_largest_landed_window_goes_first_and_the_rest_keep_their_order(landing):
    windows = backfill.landed_windows(landing, tpch.DATASET)
    sizes = {w.key: (landing / tpch.SOURCE.file(w.key)).stat().st_size for w in windows}
    largest = max(sizes, key=sizes.__getitem__)

    order = [w.key for w in backfill.largest_first(landing, tpch.DATASET, windows)]

    assert order == [largest, *(m for m in MONTHS if m != largest)]
    assert backfill.largest_first(landing, tpch.DATASET, []) == []


def test_the_build_order_puts_a_layer_after_the_layers_it_reads():
    assert backfill.build_order(tpch.DATASET) == ("tpch.silver", "tpch.gold")


def test_chains_side_by_side_build_every_window_once_and_q1_is_exact(catalog, landing):
    retries_before = commits.COUNTS.retries
    chains = chains_side_by_side(catalog, landing, workers=3)

    assert [c.window for c in chains] == list(MONTHS)
    for chain in chains:
        bronze, silver, gold = chain.signals
        # One window's order: Silver read the Bronze snapshot the chain committed, Gold the Silver one.
        assert inputs_of(catalog, "tpch.silver", silver.snapshot_id) == {"bronze.lineitem": bronze.snapshot_id}
        assert inputs_of(catalog, "tpch.gold", gold.snapshot_id) == {"silver.lineitem": silver.snapshot_id}
        assert bronze.row_count == silver.row_count
    silver = rows_of(catalog, "tpch.silver")
    assert len(silver) == sum(c.rows for c in chains)
    keys = pc.binary_join_element_wise(
        pc.cast(silver["l_orderkey"], "string"), pc.cast(silver["l_linenumber"], "string"), "/"
    )
    assert len(pc.unique(keys)) == len(silver)
    cutoff = Window.parse(MONTHS[-1], "month").end.date()
    assert (
        q1.same_q1(q1.q1_from_gold(rows_of(catalog, "tpch.gold"), cutoff), q1.duckdb_q1(landing / "lineitem", cutoff))
        == []
    )
    # Three writers of one table at once: some compare-and-swaps were lost and planned again, none was lost.
    print(f"commit retries: {commits.COUNTS.retries - retries_before}")


def test_a_backfill_run_again_lands_nothing_new_and_leaves_every_row(catalog, landing):
    chains_side_by_side(catalog, landing, workers=2)
    bronze = lake.load(catalog, REGISTRY.layer("tpch.bronze").table)
    before = bronze.current_snapshot().snapshot_id
    gold_before = rows_of(catalog, "tpch.gold").sort_by(
        [("l_shipdate", "ascending"), ("l_returnflag", "ascending"), ("l_linestatus", "ascending")]
    )

    again = chains_side_by_side(catalog, landing, workers=2)

    bronze.refresh()
    assert bronze.current_snapshot().snapshot_id == before  # every file had landed: nothing committed
    assert all(c.signals[0].snapshot_id == before for c in again)
    gold_after = rows_of(catalog, "tpch.gold").sort_by(
        [("l_shipdate", "ascending"), ("l_returnflag", "ascending"), ("l_linestatus", "ascending")]
    )
    assert gold_after.equals(gold_before)


def test_a_task_of_windows_reports_a_malformed_file_quarantined_and_builds_the_others(catalog, landing, tmp_path):
    own = tmp_path / "landing"
    shutil.copytree(landing, own)
    broken = generate.month_file(own, MONTHS[1])
    broken.write_bytes(broken.read_bytes()[:100])  # a truncated delivery
    windows = backfill.landed_windows(own, tpch.DATASET)[:3]

    done = backfill.run_windows(catalog, REGISTRY, "tpch", own, windows, RUN, "v1", validation.validate)

    assert [type(d).__name__ for d in done] == ["Chain", "Failed", "Chain"]
    assert done[1].window == MONTHS[1] and "quarantined" in done[1].reason and broken.name in done[1].reason
    quarantined = lake.read_arrow(lake.load(catalog, tpch.DATASET.quarantine), AlwaysTrue())
    assert len(quarantined) > 0 and set(quarantined["source"].to_pylist()) == {broken.name}
    gold = rows_of(catalog, "tpch.gold")
    assert sorted({d.isoformat()[:7] for d in gold["l_shipdate"].to_pylist()}) == [MONTHS[0], MONTHS[2]]


def test_a_transient_failure_in_a_task_of_windows_is_raised_for_the_task_to_retry(catalog, landing, monkeypatch):
    windows = backfill.landed_windows(landing, tpch.DATASET)[:2]
    built = pipeline.build

    def flaky(catalog, registry, layer, window, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if window.key == MONTHS[1]:
            raise ConnectionResetError("the catalog's connection was reset")
        return built(catalog, registry, layer, window, *args, **kwargs)

    monkeypatch.setattr(pipeline, "build", flaky)
    with pytest.raises(ConnectionResetError):
        backfill.run_windows(catalog, REGISTRY, "tpch", landing, windows, RUN, "v1", validation.validate)


@pytest.mark.parametrize(
    ("windows", "workers", "sizes"),
    [(84, 2, [1, *[6] * 13, 5]), (4, 2, [1, 1, 1, 1]), (17, 1, [1, *[2] * 8])],
)
def test_windows_go_to_tasks_the_first_alone_the_rest_in_consecutive_runs(windows, workers, sizes):
    months = [Window.parse(f"{1992 + i // 12}-{i % 12 + 1:02d}", "month") for i in range(windows)]

    tasks = backfill.in_tasks(months, workers)

    assert [len(t) for t in tasks] == sizes
    assert [w for t in tasks for w in t] == months  # every window once, in order
    assert backfill.in_tasks([], workers) == []
