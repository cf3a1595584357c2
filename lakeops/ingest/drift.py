"""Schema drift: how a batch's header and values differ from its source's contract, one change per column.

A drifted batch is quarantined whole and its owner alerted; nothing is evolved into Silver. Only
additive drift may go into Bronze, and only where the dataset's contract says so.

Type change or malformed value? (`observed` says what type a column's values parse to.) A column
whose values are mostly not of the contract's type has changed type; a few bad values in a column
that still parses leave its type alone and are malformed rows, which ingest names by line. A
non-null column with any null is a nullability change: its rows could not be identified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from typing import Any

import pyarrow as pa

from lakeops.datasets.declaration import Source
from lakeops.ingest.observed import HEADER_LINE, ObservedColumn, ObservedSchema, fits, type_name

ADDITIVE, REMOVED, TYPE_CHANGE = "additive", "removed", "type_change"
RENAME_SUSPECTED, NULLABILITY_CHANGE = "rename_suspected", "nullability_change"
SIMILAR_NAME_RATIO = 0.8


@dataclass(frozen=True)
class ExpectedSchema:
    """The columns a source must deliver, in order, the type each parses to, and those never null."""

    columns: Mapping[str, str]
    non_null: frozenset[str]

    def __post_init__(self) -> None:
        if unknown := self.non_null - set(self.columns):
            raise ValueError(f"non-null columns not in the schema: {sorted(unknown)}")

    @classmethod
    def from_arrow(cls, columns: Mapping[str, pa.DataType], non_null: Iterable[str]) -> ExpectedSchema:
        return cls({name: type_name(typ) for name, typ in columns.items()}, frozenset(non_null))


def expected(source: Source) -> ExpectedSchema:
    """What a source's contract expects: its columns, and the natural key and non-null columns never null."""
    return ExpectedSchema.from_arrow(source.columns, source.required)


@dataclass(frozen=True)
class Change:
    """One column's difference from the contract; `count` rows are affected, `line` is the first."""

    kind: str
    column: str
    expected: str | None
    observed: str | None
    detail: str
    renamed_to: str | None = None
    count: int = 0
    line: int | None = None
    sample: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line of the human diff."""
        head = {
            ADDITIVE: f"+ column {self.column!r} ({self.observed}): additive",
            REMOVED: f"- column {self.column!r} ({self.expected}): removed",
            TYPE_CHANGE: f"~ column {self.column!r}: {self.expected} -> {self.observed} (type change)",
            RENAME_SUSPECTED: f"> column {self.column!r} -> {self.renamed_to!r} ({self.expected}): rename suspected",
            NULLABILITY_CHANGE: f"! column {self.column!r}: {self.expected} -> {self.observed} (nullability change)",
        }[self.kind]
        return f"{head}; {self.detail}"


@dataclass(frozen=True)
class SchemaDrift:
    """Every change of one batch against its contract, in contract column order, new columns last."""

    changes: tuple[Change, ...] = ()

    @property
    def drifted(self) -> bool:
        return bool(self.changes)

    @property
    def additive_only(self) -> bool:
        return self.drifted and all(c.kind == ADDITIVE for c in self.changes)

    def accepted_into_bronze(self, source: Source) -> bool:
        """A batch without drift is; a drifted one only if all of it is additive and the source allows that."""
        return not self.drifted or (self.additive_only and source.accept_additive_drift)

    def describe(self) -> str:
        """The human diff: one line per change."""
        return "\n".join(c.describe() for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"additive_only": self.additive_only, "changes": [_change_dict(c) for c in self.changes]}


def _change_dict(change: Change) -> dict[str, Any]:
    return {**asdict(change), "sample": list(change.sample)}


def compare(expected: ExpectedSchema, observed: ObservedSchema) -> SchemaDrift:
    """Classify every difference between the contract's columns and the batch's."""
    seen: dict[str, ObservedColumn] = {}
    for column in observed.columns:
        seen.setdefault(column.name, column)  # a repeated header name: the first one is the column
    added = [c for c in seen.values() if c.name not in expected.columns]
    renames = _pair_renames(expected, [n for n in expected.columns if n not in seen], added)
    changes: list[Change] = []
    for name, type_ in expected.columns.items():
        if name in renames:
            changes.append(_renamed(name, type_, *renames[name], observed.rows))
        elif name not in seen:
            detail = "in the contract, missing from the header"
            changes.append(Change(REMOVED, name, type_, None, detail, count=observed.rows, line=HEADER_LINE))
        else:
            changes += _type_change(name, type_, seen[name]) + _nullability(expected, seen[name], observed.rows)
    paired = {c.name for c, _ in renames.values()}
    changes += [_additive(c, observed.rows) for c in added if c.name not in paired]
    return SchemaDrift(tuple(changes))


def _type_change(name: str, type_: str, column: ObservedColumn) -> list[Change]:
    if fits(column.type, type_):
        return []
    count, line, sample = column.not_of(type_)
    detail = f"{count} of {column.values} values are not {type_} (first at line {line}), e.g. {_quoted(sample)}"
    return [Change(TYPE_CHANGE, name, type_, column.type, detail, count=count, line=line, sample=sample)]


def _nullability(expected: ExpectedSchema, column: ObservedColumn, rows: int) -> list[Change]:
    if column.name not in expected.non_null or not column.nulls:
        return []
    detail = f"declared non-null; {column.nulls} of {rows} rows are null (first at line {column.first_null_line})"
    line = column.first_null_line
    return [Change(NULLABILITY_CHANGE, column.name, "non-null", "nullable", detail, count=column.nulls, line=line)]


def _additive(column: ObservedColumn, rows: int) -> Change:
    detail = f"not in the contract; {column.values} of {rows} rows hold a value, e.g. {_quoted(column.sample)}"
    return Change(ADDITIVE, column.name, None, column.type, detail, None, rows, HEADER_LINE, column.sample)


def _renamed(name: str, type_: str, new: ObservedColumn, why: str, rows: int) -> Change:
    detail = f"{name!r} is missing and {new.name!r} is new: {why}; e.g. {_quoted(new.sample)}"
    return Change(RENAME_SUSPECTED, name, type_, new.type, detail, new.name, rows, HEADER_LINE, new.sample)


def _pair_renames(
    expected: ExpectedSchema, removed: list[str], added: list[ObservedColumn]
) -> dict[str, tuple[ObservedColumn, str]]:
    """Removed column -> (added column, why) for the pairs that look like one renamed column.

    A pair needs a type the old column accepts and a similar name; failing that, when exactly one
    column left and one arrived, the same type and (for a non-null column) no nulls.
    """
    typed = [(r, a) for r in removed for a in added if fits(a.type, expected.columns[r])]
    ranked = sorted((p for p in typed if _similar(p[0], p[1].name)), key=lambda p: -_ratio(p[0], p[1].name))
    pairs: dict[str, tuple[ObservedColumn, str]] = {}
    for old, new in ranked:
        if old not in pairs and all(new is not taken for taken, _ in pairs.values()):
            pairs[old] = (new, "a similar name")
    rest_removed = [r for r in removed if r not in pairs]
    rest_added = [a for a in added if all(a is not taken for taken, _ in pairs.values())]
    if len(rest_removed) == 1 and len(rest_added) == 1:
        old, new = rest_removed[0], rest_added[0]
        if new.type == expected.columns[old] and not (old in expected.non_null and new.nulls):
            pairs[old] = (new, "the only column gone and the only one new, of the same type")
    return pairs


def _tokens(name: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())


def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a.lower(), b.lower()).ratio()


def _similar(a: str, b: str) -> bool:
    """Same words up to case and separators, words abbreviated (dep_delay, departure_delay), or close spelling."""
    ta, tb = _tokens(a), _tokens(b)
    if ta and len(ta) == len(tb) and all(x.startswith(y) or y.startswith(x) for x, y in zip(ta, tb, strict=True)):
        return True
    return _ratio(a, b) >= SIMILAR_NAME_RATIO


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values) or "no values"
