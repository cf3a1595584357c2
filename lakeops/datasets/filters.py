"""Typed constructors of the Iceberg row filters lakeops builds: `equal_to("dataset", name)` and the like.

pyiceberg's documented call, `EqualTo("column", value)`, goes through hand-written `__init__`/`__new__`
methods that mypy does not see: it types the predicate classes by their pydantic fields
(`EqualTo(*, type=..., term: UnboundTerm, value: Literal)`). These helpers make exactly that keyword call,
with the column wrapped in a `Reference` and the value in a `literal`, which is what pyiceberg's own
`__init__` does with the positional form: the same expression, and no `# type: ignore`.
"""

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from uuid import UUID

from pyiceberg.expressions import BooleanExpression, EqualTo, GreaterThanOrEqual, In, LessThan, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.typedef import LiteralValue

# The Python values pyiceberg's `literal()` accepts (the constraints of its type variable `L`).
FilterValue = str | bool | int | float | bytes | UUID | Decimal | datetime | date | time


def _literal(value: FilterValue) -> LiteralValue:
    # literal() is typed with a TypeVar constrained to these types; the declared return type, Literal[Any],
    # is what lets mypy accept a union of them (it solves the TypeVar from the context).
    return literal(value)


def equal_to(column: str, value: FilterValue) -> BooleanExpression:
    """`column = value`."""
    return EqualTo(term=Reference(column), value=_literal(value))


def greater_than_or_equal(column: str, value: FilterValue) -> BooleanExpression:
    """`column >= value`."""
    return GreaterThanOrEqual(term=Reference(column), value=_literal(value))


def less_than(column: str, value: FilterValue) -> BooleanExpression:
    """`column < value`."""
    return LessThan(term=Reference(column), value=_literal(value))


def is_in(column: str, values: Iterable[FilterValue]) -> BooleanExpression:
    """`column IN values`; pyiceberg makes it AlwaysFalse when `values` is empty, an EqualTo for one value."""
    return In(term=Reference(column), values={_literal(v) for v in values})
