"""The registry: every dataset on the platform, looked up by name, by layer or by table.

A platform's datasets are listed in a registry file (`datasets.yaml` at the project root): the
Python modules that hold one `Dataset` each (as the module attribute `DATASET`), folders to import
them from, and per-environment overrides of their readiness contracts.
"""

import importlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import MappingProxyType

import yaml

from lakeops.datasets.declaration import BRONZE, Dataset, Layer, Readiness
from lakeops.datasets.names import TableRef


@dataclass(frozen=True)
class Registry:
    """The datasets of one platform, checked together: unique names and tables, inputs that exist, no cycle."""

    datasets: tuple[Dataset, ...]
    _by_name: Mapping[str, Dataset] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names repeat in the registry: {sorted(names)}")
        object.__setattr__(self, "_by_name", MappingProxyType({d.name: d for d in self.datasets}))
        tables = [str(layer.table) for _, layer in self.layers()]
        if len(set(tables)) != len(tables):
            raise ValueError(f"two layers write one table: {sorted(tables)}")
        for _, layer in self.layers():
            for qualified in layer.inputs:
                self.layer(qualified)  # raises for an input that does not exist
        self.build_order()  # raises on a cycle

    def dataset(self, name: str) -> Dataset:
        """The dataset called `name`; ValueError naming the known ones."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"unknown dataset {name!r}; the registry has {sorted(self._by_name)}") from None

    def layer(self, qualified: str) -> Layer:
        """A layer by its qualified name, `<dataset>.<layer>` (orders.silver)."""
        dataset, _, name = qualified.partition(".")
        if not name:
            raise ValueError(f"a layer is named <dataset>.<layer>, got {qualified!r}")
        return self.dataset(dataset).layer(name)

    def layers(self) -> Iterator[tuple[Dataset, Layer]]:
        for dataset in self.datasets:
            for layer in dataset.layers:
                yield dataset, layer

    def qualified(self, layer: Layer) -> str:
        """`<dataset>.<layer>` of a layer of this registry."""
        for dataset, candidate in self.layers():
            if candidate is layer:
                return f"{dataset.name}.{layer.name}"
        raise ValueError(f"{layer.table} is not a layer of this registry")

    def by_table(self, table: TableRef | str) -> tuple[Dataset, Layer]:
        """The dataset and layer that write `table`; ValueError for a table no layer writes."""
        for dataset, layer in self.layers():
            if str(layer.table) == str(table):
                return dataset, layer
        raise ValueError(
            f"no dataset writes table {table}; layers write {sorted(str(x.table) for _, x in self.layers())}"
        )

    def consumers(self, qualified: str) -> list[tuple[Dataset, Layer]]:
        """Layers that read `qualified` as an input."""
        return [(d, x) for d, x in self.layers() if qualified in x.inputs]

    def sources_of(self, qualified: str) -> list[str]:
        """The Bronze layers a layer derives from, transitively (itself, for a Bronze layer)."""
        layer = self.layer(qualified)
        if not layer.built:
            return [qualified]
        found: list[str] = []
        for upstream in layer.inputs:
            found += [s for s in self.sources_of(upstream) if s not in found]
        return found

    def build_order(self) -> list[str]:
        """Every layer after the layers it reads; ValueError on a cycle."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(qualified: str) -> None:
            if qualified in order:
                return
            if qualified in visiting:
                raise ValueError(f"layers read each other in a cycle through {qualified}")
            visiting.add(qualified)
            for upstream in self.layer(qualified).inputs:
                visit(upstream)
            visiting.discard(qualified)
            order.append(qualified)

        for dataset, layer in self.layers():
            visit(f"{dataset.name}.{layer.name}")
        return order

    def with_readiness(self, overrides: Mapping[str, Mapping[str, object]]) -> "Registry":
        """The registry with some datasets' readiness contracts changed (an environment's overrides)."""
        changed = []
        for dataset in self.datasets:
            fields = overrides.get(dataset.name)
            if fields and dataset.readiness is None:
                raise ValueError(f"dataset {dataset.name} declares no readiness contract to override")
            if fields and dataset.readiness is not None:
                try:
                    terms = Readiness.model_validate({**dataset.readiness.model_dump(), **fields})
                except ValueError as exc:
                    raise ValueError(f"readiness override of dataset {dataset.name}: {exc}") from None
                dataset = replace(dataset, readiness=terms)
            changed.append(dataset)
        unknown = set(overrides) - {d.name for d in self.datasets}
        if unknown:
            raise ValueError(f"readiness overrides name unknown datasets: {sorted(unknown)}")
        return Registry(tuple(changed))


def contracted(registry: Registry) -> list[tuple[Dataset, Readiness]]:
    """Datasets with a readiness contract on their Bronze signal."""
    return [(d, d.readiness) for d in registry.datasets if d.readiness is not None and d.source is not None]


def bronze_of(dataset: Dataset) -> Layer:
    """The Bronze layer of a dataset with a source; ValueError for a derived dataset."""
    if dataset.source is None:
        raise ValueError(f"dataset {dataset.name} has no source, hence no {BRONZE} layer")
    return dataset.layer(BRONZE)


@cache
def load(path: Path) -> Registry:
    """The registry a registry file describes (read once per process)."""
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"registry file {path} does not exist")
    body = yaml.safe_load(path.read_text()) or {}
    for folder in body.get("paths", []):
        entry = str((path.parent / folder).resolve())
        if entry not in sys.path:
            sys.path.insert(0, entry)
    datasets = []
    for module_name in body.get("datasets", []):
        module = importlib.import_module(module_name)
        declared = getattr(module, "DATASET", None)
        if not isinstance(declared, Dataset):
            raise ValueError(f"{path}: module {module_name} has no DATASET = Dataset(...)")
        datasets.append(declared)
    return Registry(tuple(datasets)).with_readiness(body.get("readiness", {}) or {})
