"""One error root for the project; leaf names say what happened."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeops.ingest.drift import SchemaDrift


class LakeopsError(Exception):
    """Root of every error lakeops raises on purpose."""


class TransientError(LakeopsError):
    """A failure that is expected to pass if the same work is tried again."""


class SignalNotDelivered(TransientError):
    """The orchestrator did not acknowledge a readiness event."""


class MalformedBatch(LakeopsError):
    """An incoming batch cannot be parsed; names the file, the column and the row."""

    def __init__(self, source: str, reason: str, column: str | None = None, row: int | None = None):
        self.source, self.reason, self.column, self.row = source, reason, column, row
        where = ", ".join(
            part for part in (f"column {column!r}" if column else "", f"row {row}" if row else "") if part
        )
        super().__init__(f"{source}: {where + ': ' if where else ''}{reason}")


class SchemaDrifted(MalformedBatch):
    """A batch's columns differ from its source's contract; names every change, carries the SchemaDrift."""

    def __init__(self, source: str, drift: "SchemaDrift"):
        self.drift = drift
        first = drift.changes[0]
        reason = f"schema drift, {len(drift.changes)} change(s): " + " | ".join(drift.describe().splitlines())
        super().__init__(source, reason, first.column, first.line)

    def __reduce__(self) -> tuple[type, tuple[str, "SchemaDrift"]]:
        """Pickled as source and drift (the formatted message alone cannot rebuild it)."""
        return type(self), (self.source, self.drift)


class SnapshotNotFound(LakeopsError):
    """A table has no snapshot with the requested id."""


class TableNotFound(LakeopsError):
    """A table the pipeline needs does not exist in the catalog."""


class EmptyWindow(LakeopsError):
    """An input snapshot holds no rows for the window a consumer was asked to build."""


class RefNotFound(LakeopsError):
    """A table has no tag or branch with the requested name."""


class ValidationFailed(LakeopsError):
    """A window's output broke its validation suite; nothing was committed."""

    def __init__(self, message: str, failures: tuple[str, ...] = ()):
        self.failures = failures
        super().__init__(message)


class UnsafeRollback(LakeopsError):
    """A rollback target was built from input that has since been corrected."""


class MainMoved(LakeopsError):
    """A table's main branch is not at the snapshot a release or rollback expected."""


class SwitchFailed(LakeopsError):
    """A multi-table switch failed part way; the tables already switched were switched back."""


class BaseMoved(SwitchFailed):
    """A switch found a table's main moved; every table already switched was switched back."""


class CannotCatchUp(MainMoved):
    """A released table's main moved in a way no rebuild can follow (by hand, a rollback, another release)."""


class BaseKeptMoving(SwitchFailed):
    """A release's base moved again after the last catch-up round it was allowed; nothing was switched."""


class NoConsistentCut(TransientError):
    """The released tables kept changing, or named different releases, on every read of a cut."""


class NothingToRollBack(LakeopsError):
    """A dataset has no live release to roll back."""
