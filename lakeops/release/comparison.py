"""A release's comparison: the thresholds that promote without a human, the verdict per table and overall."""

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from lakeops.build.validation import ValidationReport
from lakeops.datasets.declaration import Layer
from lakeops.datasets.windows import Window
from lakeops.release.diff import KeyedDiff
from lakeops.release.fingerprint import Fingerprint


class Thresholds(BaseModel):
    """How far green may stray from blue and still be promoted without a human."""

    float_tolerance: float = Field(default=1e-9, ge=0, description="Absolute tolerance on every float column.")
    column_tolerance: dict[str, float] = Field(
        default_factory=dict, description="Absolute tolerance per column; overrides float_tolerance."
    )
    max_changed_fraction: float = Field(
        default=0.0, ge=0, le=1, description="Rows present in both colours that may differ, as a fraction."
    )
    max_unmatched_fraction: float = Field(
        default=0.0, ge=0, le=1, description="Rows present in only one colour, as a fraction of the larger."
    )
    row_count_tolerance: float = Field(default=0.01, ge=0, description="Suite: green's rows within blue's +- this.")
    null_rate_tolerance: float = Field(
        default=0.01, ge=0, le=1, description="Suite: green's null rate above blue's by at most this."
    )
    mean_tolerance: float = Field(
        default=0.05, ge=0, description="Suite: numeric means and quartiles within blue's +- this fraction."
    )

    def breaches(self, diff: KeyedDiff) -> tuple[str, ...]:
        """What in the diff is outside these thresholds, in words."""
        found = []
        if diff.changed_fraction > self.max_changed_fraction:
            found.append(f"{diff.changed} rows changed ({diff.changed_fraction:.2%} > {self.max_changed_fraction:.2%})")
        if diff.unmatched_fraction > self.max_unmatched_fraction:
            found.append(
                f"{diff.only_blue} rows only in blue, {diff.only_green} only in green "
                f"({diff.unmatched_fraction:.2%} > {self.max_unmatched_fraction:.2%})"
            )
        if diff.columns_only_blue or diff.columns_only_green:
            found.append(
                f"columns differ: blue only {list(diff.columns_only_blue)}, green only {list(diff.columns_only_green)}"
            )
        return tuple(found)


class Verdict(enum.StrEnum):
    IDENTICAL = "identical"
    WITHIN = "within thresholds"
    OUTSIDE = "outside thresholds"


_RANK = {Verdict.IDENTICAL: 0, Verdict.WITHIN: 1, Verdict.OUTSIDE: 2}

# (table, blue rows, green rows, thresholds) -> the suite's report; great_expectations is imported lazily.
Suite = Callable[[Layer, pd.DataFrame, pd.DataFrame, Thresholds], ValidationReport]


@dataclass(frozen=True)
class TableComparison:
    table: str
    blue_snapshot_id: int
    green_snapshot_id: int
    blue: Fingerprint
    green: Fingerprint
    diff: KeyedDiff | None
    suite: ValidationReport | None
    breaches: tuple[str, ...]

    @property
    def verdict(self) -> Verdict:
        if self.blue == self.green:
            return Verdict.IDENTICAL
        return Verdict.OUTSIDE if self.breaches else Verdict.WITHIN

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "verdict": str(self.verdict),
            "rows_blue": self.blue.rows,
            "rows_green": self.green.rows,
            "blue_snapshot_id": self.blue_snapshot_id,
            "green_snapshot_id": self.green_snapshot_id,
            "breaches": list(self.breaches),
            "diff": {k: v for k, v in self.diff.to_dict().items() if k != "sample"} if self.diff else None,
            "suite": {"evaluated": self.suite.evaluated, "failures": list(self.suite.failures)} if self.suite else None,
        }


@dataclass(frozen=True)
class Comparison:
    tables: tuple[TableComparison, ...]
    windows: tuple[Window, ...] = ()  # the windows compared

    @property
    def verdict(self) -> Verdict:
        return max((t.verdict for t in self.tables), key=_RANK.__getitem__, default=Verdict.IDENTICAL)

    @property
    def promotable(self) -> bool:
        """The gate: identical or within thresholds promotes without a human."""
        return self.verdict is not Verdict.OUTSIDE

    def summary(self) -> dict[str, Any]:
        return {t.table: t.to_dict() for t in self.tables}

    def sample(self) -> list[dict[str, Any]]:
        return [{"table": t.table, **row} for t in self.tables if t.diff for row in t.diff.sample]

    def describe(self) -> str:
        """A plain-text report for alerts and logs."""
        lines = [f"verdict: {self.verdict}"]
        for t in self.tables:
            lines.append(f"{t.table}: {t.verdict}; rows blue {t.blue.rows}, green {t.green.rows}")
            if t.diff:
                d = t.diff
                lines.append(f"  only in blue {d.only_blue}, only in green {d.only_green}, changed {d.changed}")
                lines += [f"  {c.column}: match rate {c.match_rate:.4f}" for c in d.columns if c.match_rate < 1]
            lines += [f"  outside: {b}" for b in t.breaches]
        return "\n".join(lines)
