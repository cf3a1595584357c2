"""The gate of a layer with several inputs: it starts when every input is ready for the same window.

A consumer of one input is started by that input's ready event. A consumer of several (a Gold table
joining two teams' Silver tables) must wait for all of them, per window, and read exactly the
snapshots they name. Prefect's compound triggers do not correlate their children by a label (a
child's firing is kept per child, not per window), so the platform opens the gate itself: after an
input publishes a window, the markers of the other inputs are read; when all are there, one
`inputs-ready` event names every snapshot. Its id is derived from the consumer, the window and the
snapshots, so two inputs that publish at once post the same event, which the server evaluates once.
"""

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from pyiceberg.catalog import Catalog

from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.iceberg import lake
from lakeops.readiness import markers


@dataclass(frozen=True)
class InputsReady:
    """Every input of `layer` is ready for `window`, at these snapshots."""

    layer: str  # the consumer, qualified (<dataset>.<layer>)
    table: TableRef
    window: str
    inputs: dict[str, int]  # qualified input -> snapshot id its latest signal names
    stale: bool  # any input is a stale fallback

    @property
    def event_id(self) -> UUID:
        pinned = ",".join(f"{name}@{snapshot}" for name, snapshot in sorted(self.inputs.items()))
        return uuid5(NAMESPACE_URL, f"lakeops/{self.layer}/{self.window}/{pinned}/{self.stale}")

    def payload(self) -> dict[str, object]:
        return {"layer": self.layer, "window": self.window, "inputs": self.inputs, "stale": self.stale}


def opened(catalog: Catalog, registry: Registry, published: str, window: str) -> list[InputsReady]:
    """The multi-input consumers of `published` whose every input now has a signal for `window`."""
    found = []
    for dataset, consumer in registry.consumers(published):
        if len(consumer.inputs) < 2:
            continue
        signals = {
            name: markers.read_marker(lake.load(catalog, registry.layer(name).table), window)
            for name in consumer.inputs
        }
        if all(signal is not None for signal in signals.values()):
            found.append(
                InputsReady(
                    f"{dataset.name}.{consumer.name}",
                    consumer.table,
                    window,
                    {name: s.snapshot_id for name, s in signals.items() if s is not None},
                    any(s.stale for s in signals.values() if s is not None),
                )
            )
    return found
