"""A source declared as Parquet lands exactly as its CSV twin: same typed rows, same drift check, same quarantine."""

from dataclasses import replace
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.settings import LakeSettings

from .flights import FLIGHTS, SOURCE

DAY = date(2013, 1, 2)
PARQUET = replace(FLIGHTS, source=replace(SOURCE, format="parquet", path="flights/{window}.parquet"))
RUN = pipeline.RunInfo("run-1", "test")


def write_parquet(path, rows) -> batches.RawBatch:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path)
    return batches.read_raw(path, Window(DAY), "parquet")


@pytest.fixture
def catalogs(tmp_path):  # noqa: ANN201
    opened = []
    for name, dataset in (("csv", FLIGHTS), ("parquet", PARQUET)):
        catalog = lake.open_catalog(name, lake.embedded_properties(LakeSettings(home=tmp_path / name)))
        lake.ensure_tables(catalog, Registry((dataset,)))
        opened.append(catalog)
    return opened


def test_a_parquet_day_file_lands_the_same_rows_as_the_csv_one(tmp_path, catalogs):
    as_csv, as_parquet = catalogs
    csv_batch = batches.read_raw(landing.drop_day_file(tmp_path / "csv-landing", DAY), Window(DAY))
    parquet_batch = write_parquet(tmp_path / "landing" / "flights" / f"{DAY}.parquet", landing.day_rows(DAY))

    from_csv = pipeline.land(as_csv, FLIGHTS, csv_batch, RUN).own
    from_parquet = pipeline.land(as_parquet, PARQUET, parquet_batch, RUN).own

    assert from_parquet.row_count == from_csv.row_count == len(landing.day_rows(DAY))
    columns = list(SOURCE.columns)
    bronze = FLIGHTS.layer("bronze")
    rows = [lake.read(lake.load(c, bronze.table), bronze.window.filter(Window(DAY)))[columns] for c in catalogs]
    key = list(SOURCE.natural_key)
    left, right = (r.sort_values(key).reset_index(drop=True) for r in rows)
    assert left.equals(right)


def test_a_parquet_file_with_a_renamed_column_is_drift_and_quarantined_line_by_row(tmp_path, catalogs):
    rows = landing.day_rows(DAY).rename(columns={"dep_delay": "departure_delay"})
    batch = write_parquet(tmp_path / "landing" / "drifted.parquet", rows)
    with pytest.raises(SchemaDrifted, match="departure_delay") as caught:
        pipeline.land(catalogs[1], PARQUET, batch, RUN)
    kept = pipeline.quarantine(catalogs[1], PARQUET, batch, caught.value, RUN)
    assert kept == len(rows) + 1  # the header line of its CSV text, then one line per row


def test_bytes_that_are_not_parquet_are_a_malformed_batch_naming_the_file(tmp_path, catalogs):
    path = tmp_path / "landing" / "broken.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1 not really")
    batch = batches.read_raw(path, Window(DAY), "parquet")
    with pytest.raises(MalformedBatch, match="broken.parquet: not a readable Parquet file") as caught:
        pipeline.land(catalogs[1], PARQUET, batch, RUN)
    assert pipeline.quarantine(catalogs[1], PARQUET, batch, caught.value, RUN) == 1  # its bytes are kept
