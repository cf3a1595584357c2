"""Telling humans: alerts through a notification block, and the failure hook every pipeline flow carries."""

from collections.abc import Callable

from prefect.blocks.core import Block
from prefect.client.schemas.objects import FlowRun
from prefect.logging.loggers import flow_run_logger
from prefect.states import State

from lakeops.healing import alerts
from lakeops.healing.failures import FailureClass, classify

DEFAULT_BLOCK = "custom-webhook/lakeops-alerts"
DEFAULT_OWNER = "data-platform"
DEPLOYMENT = "lakeops"  # every flow's deployment name in prefect.yaml


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
        alert = alerts.failed_run(
            name,
            flow_run.name,
            f"{name}/{DEPLOYMENT}",
            params,
            failure,
            str(error) if error else str(state.message),
            owner,
        )
        try:
            send(alert, block)
        except Exception as exc:  # the run has failed already; say so in its log
            flow_run_logger(flow_run).error("could not alert about the failure: %s", exc)

    return hook
