"""Versioned business logic. A version is a module with `to_silver` and `to_gold`."""

from types import ModuleType

from lakeops.transforms import flights_v1, flights_v1_1, flights_v2

VERSIONS: dict[str, ModuleType] = {"v1": flights_v1, "v1.1": flights_v1_1, "v2": flights_v2}
CURRENT = "v1"


def flights(version: str = CURRENT) -> ModuleType:
    """The flights transforms of `version`; raises ValueError for an unknown version."""
    try:
        return VERSIONS[version]
    except KeyError:
        raise ValueError(f"unknown transform version {version!r}; known: {sorted(VERSIONS)}") from None
