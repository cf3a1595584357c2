"""Telling humans: alerts through a notification block, and the failure hook every pipeline flow carries."""

from collections.abc import Callable

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.logging.loggers import flow_run_logger
from prefect.states import State

from lakeops.datasets import registry as registry_file
from lakeops.healing.failures import FailureClass, classify
from lakeops.readiness import alerts
from lakeops.settings import LakeSettings

DEFAULT_BLOCK = "custom-webhook/lakeops-alerts"
DEFAULT_OWNER = "data-platform"


def send(alert: alerts.Alert, block: str = DEFAULT_BLOCK) -> None:
    """Deliver through a notification block (slug/name); raises when the receiver refuses."""
    Block.load(block).notify(body=alert.body, subject=alert.subject)


def alert_on_failure(owner: str = DEFAULT_OWNER, block: str = DEFAULT_BLOCK) -> Callable:
    """A flow `on_failure` hook: a run that failed for any reason but lack of memory alerts a human.

    Data-logic and unknown failures were never retried; transient ones ran out of retries. Out of
    memory is the healer's. A failure the flow already alerted about (`error.alerted`) is not repeated.
    """

    def hook(flow: object, flow_run: FlowRun, state: State) -> None:
        error = state.result(raise_on_failure=False)
        failure = classify(error) if isinstance(error, BaseException) else FailureClass.UNKNOWN
        if failure is FailureClass.RESOURCE or getattr(error, "alerted", False):
            return
        params = dict(flow_run.parameters.get("params", flow_run.parameters))
        name = getattr(flow, "name", flow_run.name)
        try:
            deployment = f"{name}/{_deployment_name(flow_run)}"
            reason = str(error) if error else str(state.message)
            told = _owner_of(params) or owner
            send(alerts.failed_run(name, flow_run.name, deployment, params, failure, reason, told), block)
        except Exception as exc:  # the run has failed already; say so in its log
            flow_run_logger(flow_run).error("could not alert about the failure: %s", exc)

    return hook


def _deployment_name(flow_run: FlowRun) -> str:
    """The name of the run's deployment (reprocess commands name it), or `-` for a run outside one."""
    if flow_run.deployment_id is None:
        return "-"
    with get_client(sync_client=True) as client:
        return client.read_deployment(flow_run.deployment_id).name


def _owner_of(params: dict) -> str | None:
    """The team owning the dataset a run acted on (its `dataset` or `layer` parameter), if the registry knows it."""
    name = str(params.get("dataset") or params.get("layer") or "").split(".", 1)[0]
    if not name:
        return None
    registry = registry_file.load(LakeSettings().registry)
    known = {d.name: d.owner for d in registry.datasets}
    if name in known:
        return known[name]
    tables = {str(layer.table): dataset.owner for dataset, layer in registry.layers()}
    return tables.get(str(params.get("dataset")))
