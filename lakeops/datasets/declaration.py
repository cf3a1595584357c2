"""The Dataset declaration: one team's dataset, declared once; every capability of lakeops reads it.

A dataset has an owner, optionally a source (the files a source system lands, with their contract),
and layers: Bronze (the source's rows as delivered), then layers built from other layers, its own or
another team's. Each layer names its table, schema, window column, key, partitioning, validation
suite, transforms by version and the lineage column that records its input's snapshot. Table
creation, deployments and their triggers, SLA automations, replay, releases, rollback, maintenance,
drift, lateness, quarantine and alerts all derive from these records.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lakeops.datasets.checks import DATE_PARTS, Check, Timestamp
from lakeops.datasets.engines import Transform
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import WindowColumn

BRONZE = "bronze"
LINEAGE_COLUMNS = ("_batch_id", "_source", "_ingested_at")  # what ingest adds to every Bronze row
_TS = pa.timestamp("us", tz="UTC")

Suite = Callable[[Any], list[Any]]  # great_expectations (imported lazily) -> the layer's expectations


@dataclass(frozen=True)
class LatePolicy:
    """How late a record may be, in days after its window, and whether to learn that from the data."""

    allowed_days: int = 0
    adaptive: bool = False
    quantile: float = 0.99

    def __post_init__(self) -> None:
        if isinstance(self.allowed_days, bool) or not isinstance(self.allowed_days, int):
            raise ValueError(f"allowed lateness is a whole number of days, got {self.allowed_days!r}")
        if not isinstance(self.adaptive, bool) or isinstance(self.quantile, bool):
            raise ValueError(f"adaptive is true or false and the quantile a number; got {self}")
        if self.allowed_days < 0 or not 0 < self.quantile <= 1:
            raise ValueError(f"allowed lateness must be >= 0 days and the quantile in (0, 1]; got {self}")


def _from_text(typ: pa.DataType) -> bool:
    """A type a CSV value is typed to: integer, number or string (a Parquet file carries the others)."""
    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_string(typ))


@dataclass(frozen=True)
class Source:
    """What a source system delivers: where its files land, their format and their schema contract.

    `path` is relative to the landing zone and holds `{window}` (the window's key): one file per
    window. `event_time` places each row in the window it belongs to; a row dated before its file's
    window is a late record (`lateness`), one dated after it is malformed. `checks` say what a
    column's values must be beyond their type (a range, an enumeration, a timestamp); the event
    time's columns are checked as dates without being declared. A file larger than `max_bytes`, or
    a value longer than `max_value_chars`, is refused whole.
    """

    path: str
    columns: Mapping[str, pa.DataType]
    natural_key: tuple[str, ...]
    event_time: WindowColumn
    format: Literal["csv", "parquet"] = "csv"
    non_null: tuple[str, ...] = ()  # besides the natural key, which is never null
    accept_additive_drift: bool = False  # a batch whose only drift is new columns may enter Bronze (never Silver)
    lateness: LatePolicy = LatePolicy()
    checks: Mapping[str, Check] = field(default_factory=dict)
    max_bytes: int = 256 * 2**20
    max_value_chars: int = 64 * 2**10

    def __post_init__(self) -> None:
        if not isinstance(self.accept_additive_drift, bool):
            raise ValueError(f"accept_additive_drift is true or false, got {self.accept_additive_drift!r}")
        if self.format not in ("csv", "parquet"):
            raise ValueError(f"source format is csv or parquet, got {self.format!r}")
        if self.format == "csv" and (typed := [n for n, t in self.columns.items() if not _from_text(t)]):
            raise ValueError(f"a CSV source's columns are integers, numbers or strings; {typed} need a Parquet source")
        if "{window}" not in self.path:
            raise ValueError(f"source path {self.path!r} must hold {{window}}: one file per window")
        if unknown := [c for c in (*self.natural_key, *self.non_null) if c not in self.columns]:
            raise ValueError(f"source key or non-null columns not in its columns: {unknown}")
        if unknown := [c for c in self.checks if c not in self.columns]:
            raise ValueError(f"source checks name columns not in its columns: {unknown}")
        for limit in ("max_bytes", "max_value_chars"):
            value = getattr(self, limit)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"source {limit} is a positive whole number, got {value!r}")

    @property
    def value_checks(self) -> dict[str, tuple[Check, ...]]:
        """Every check per column: the declared ones, and the event time's columns checked as dates."""
        implicit: dict[str, Check] = (
            dict(zip(self.event_time.parts, DATE_PARTS.values(), strict=False))
            if self.event_time.parts
            else {c: Timestamp() for c in self.event_time.columns}
        )
        names = [*implicit, *(c for c in self.checks if c not in implicit)]
        return {c: tuple(x for x in (implicit.get(c), self.checks.get(c)) if x is not None) for c in names}

    @property
    def required(self) -> frozenset[str]:
        """Columns never null: the natural key and the declared non-null ones."""
        return frozenset((*self.natural_key, *self.non_null))

    def file(self, window_key: str) -> str:
        return self.path.format(window=window_key)

    def bronze_schema(self) -> pa.Schema:
        """Bronze rows: the source's columns as typed, plus batch id, source file and ingestion time."""
        return pa.schema(
            [pa.field(name, typ) for name, typ in self.columns.items()]
            + [
                pa.field(name, typ, nullable=False)
                for name, typ in zip(LINEAGE_COLUMNS, (pa.string(), pa.string(), _TS), strict=True)
            ]
        )


@dataclass(frozen=True)
class Layer:
    """One table of a dataset and how it is built: from the source (Bronze) or from input layers."""

    name: str
    table: TableRef
    schema: pa.Schema
    window: WindowColumn
    key: tuple[str, ...]
    partition: tuple[str, ...] = ()  # identity partition columns: one partition per window
    inputs: tuple[str, ...] = ()  # layers read, as "<dataset>.<layer>" (another team's too)
    transforms: Mapping[str, Transform] = field(default_factory=dict)  # version -> Arrow transform (`engines`)
    suite: Suite | None = None
    lineage: str | None = None  # a column recording the input snapshot each row was built from (replay reads it)
    description: str = ""

    @property
    def built(self) -> bool:
        """Built from input layers (not ingested from the source)."""
        return bool(self.inputs)

    def transform(self, version: str) -> Transform:
        """The transform of `version`; ValueError for a version this layer does not have."""
        try:
            return self.transforms[version]
        except KeyError:
            raise ValueError(
                f"{self.table}: unknown transform version {version!r}; known: {sorted(self.transforms)}"
            ) from None


class Readiness(BaseModel):
    """The terms of a readiness contract: when a window's Bronze signal is due and what a miss may fall back on.

    Defaults and validation live here once: a dataset declares these terms, an environment's registry
    file overrides some of them, and the ReadinessContract block holds the contract built on them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    expected_at: time = Field(description="UTC time of day, on the day after the window, when the signal is due.")
    buffer: timedelta = Field(
        default=timedelta(minutes=30),
        ge=timedelta(seconds=10),
        description="Grace after expected_at (seconds); the deadline is their sum (Prefect's minimum: 10 s).",
    )
    max_fallback_age: timedelta = Field(
        default=timedelta(days=2), ge=timedelta(0), description="Oldest data a stale fallback may carry forward."
    )
    give_up_after: timedelta = Field(
        default=timedelta(hours=72), ge=timedelta(0), description="After this, a window with no signal is missed."
    )
    alert_block: str = Field(
        default="custom-webhook/lakeops-alerts",
        min_length=3,
        description="Notification block for alerts, as <block type slug>/<document name>.",
    )

    @field_validator("expected_at", mode="before")
    @classmethod
    def _time_of_day(cls, value: object) -> object:
        """YAML 1.1 reads an unquoted 16:40 as the base-60 integer 1000: undo that."""
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 24 * 60:
                raise ValueError("not a time of day")
            return time(value // 60, value % 60)
        return value


@dataclass(frozen=True)
class Dataset:
    """One team's dataset: owner, source, layers, versions, readiness contract, release scope."""

    name: str
    owner: str
    layers: tuple[Layer, ...]
    source: Source | None = None
    default_version: str = "v1"
    release: tuple[str, ...] = ()  # layers a release switches, in switch order (a reader after what it reads)
    readiness: Readiness | None = None  # the contract of the Bronze signal
    description: str = ""
    memory_mb: int | None = None  # the memory job variable of its deployments: each run's limit (None: the pool's)

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name}: layer names repeat: {names}")
        if self.source is not None and BRONZE not in names:
            raise ValueError(f"dataset {self.name}: a dataset with a source needs a {BRONZE!r} layer")
        if unknown := [n for n in self.release if n not in names]:
            raise ValueError(f"dataset {self.name}: release names unknown layers {unknown}")
        for name in self.release:
            if not self.layer(name).built:
                raise ValueError(f"dataset {self.name}: a release switches built layers only, not {name!r}")
            self.layer(name).transform(self.default_version)
        if self.memory_mb is not None and (isinstance(self.memory_mb, bool) or self.memory_mb < 1):
            raise ValueError(f"dataset {self.name}: memory_mb is a positive number of MB, got {self.memory_mb!r}")
        if self.readiness is not None and self.source is None:
            raise ValueError(f"dataset {self.name}: a readiness contract needs a source")

    def layer(self, name: str) -> Layer:
        """The layer called `name`; ValueError naming the known ones."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"dataset {self.name} has no layer {name!r}; it has {[x.name for x in self.layers]}")

    @property
    def bronze(self) -> Layer | None:
        return self.layer(BRONZE) if self.source is not None else None

    @property
    def versions(self) -> tuple[str, ...]:
        """Every transform version of the dataset's released layers (all of them must have it)."""
        layers = [self.layer(n) for n in self.release] or [x for x in self.layers if x.built]
        common = set.intersection(*(set(x.transforms) for x in layers)) if layers else set()
        return tuple(sorted(common))

    @property
    def quarantine(self) -> TableRef | None:
        """Where rejected batches of the source are kept, byte for byte with the reason."""
        return TableRef("quarantine", self.name) if self.source is not None else None
