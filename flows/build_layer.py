"""Consumer: rebuild one window of a layer from exactly the input snapshots its event names.

One flow for every built layer of every dataset; each layer is its own deployment (named after the
table it writes), started by its inputs' ready event, or by `inputs-ready` when it reads several.
"""

from prefect import flow
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure
from flows.common import audit, materializing, open_lakehouse, platform, publish_ready, run_info
from flows.params import BuildParams
from flows.sla import resolve_if_caught_up
from lakeops.build import pipeline
from lakeops.datasets.names import BUILD_FLOW
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.readiness.ready import ReadySignal
from lakeops.release import release_log


def inputs_of(registry: Registry, params: BuildParams) -> dict[str, int]:
    """The snapshot of each input: from `inputs`, or `snapshot_id` for a layer that reads one input."""
    layer = registry.layer(params.layer)
    if params.inputs is not None:
        return dict(params.inputs)
    if params.snapshot_id is None or len(layer.inputs) != 1:
        raise ValueError(f"{params.layer} reads {list(layer.inputs)}: give `inputs` (<dataset>.<layer> -> snapshot)")
    return {layer.inputs[0]: params.snapshot_id}


def build(catalog: Catalog, registry: Registry, params: BuildParams, inputs: dict[str, int]) -> ReadySignal:
    """Build the window, audit it with the layer's suite, and only then commit it (write-audit-publish)."""
    dataset = registry.dataset(params.layer.split(".", 1)[0])
    layer = registry.layer(params.layer)
    version = release_log.build_version(catalog, dataset.name, params.transform_version, dataset.default_version)
    return pipeline.build(
        catalog,
        registry,
        params.layer,
        Window.parse(params.window, layer.window.grain),
        inputs,
        run_info(),
        stale=params.stale,
        version=version,
        carry_from=Window.parse(params.fallback_window) if params.fallback_window else None,
        # A layer that declares no suite is not audited, and earns no last-known-good.
        target=pipeline.Target(validate=audit) if layer.suite is not None else pipeline.Target(),
    )


@flow(name=BUILD_FLOW, flow_run_name="{params.layer} {params.window}", on_failure=[alert_on_failure()])
def build_layer(params: BuildParams) -> ReadySignal:
    """Read each input at exactly its snapshot, audit the window's new rows, commit them, signal readiness."""
    lakehouse, catalog = open_lakehouse(params.lakehouse)
    registry = platform()
    layer = registry.layer(params.layer)
    inputs = inputs_of(registry, params)
    built = materializing(registry, layer, lakehouse.catalog_name, build)(catalog, registry, params, inputs)
    signal = publish_ready(catalog, layer.table, built)
    for name in layer.inputs:
        resolve_if_caught_up(catalog, str(registry.layer(name).table), signal)
    return signal
