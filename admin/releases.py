"""Operating releases on Prefect: start the release deployment, follow it, give it a decision."""

import time
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_UI_URL
from pyiceberg.catalog import Catalog

from lakeops.datasets import names
from lakeops.errors import LakeopsError
from lakeops.release import release_log
from lakeops.release.release_log import Event


def release_deployment(dataset: str) -> str:
    return names.release_deployment(dataset)


def rollback_deployment(dataset: str) -> str:
    return names.rollback_deployment(dataset)


def start(params: dict) -> FlowRun:
    """Create a run of the dataset's release deployment and return at once."""
    return run_deployment(release_deployment(params["dataset"]), parameters={"params": params}, timeout=0)


def ui_link(run: FlowRun) -> str:
    """The run's page in the Prefect UI."""
    return f"{PREFECT_UI_URL.value()}/runs/flow-run/{run.id}"


def wait_until_settled(run_id: UUID, timeout: float = 600) -> FlowRun:
    """The run once it is paused (held for a decision) or final."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state and (run.state.is_paused() or run.state.is_final()):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"release run {run.name} still {run.state and run.state.name} after {timeout:.0f} s")
            time.sleep(0.5)


def held(catalog: Catalog, dataset: str, release_id: str | None = None) -> release_log.Release:
    """The release waiting for a decision (the one named, or the dataset's only held one)."""
    waiting = [r for r in release_log.releases(catalog, dataset) if r.status == Event.HELD]
    if release_id:
        waiting = [r for r in waiting if r.release_id == release_id]
    if not waiting:
        raise LakeopsError(
            f"no release of {dataset} is waiting for a decision" + (f" with id {release_id}" if release_id else "")
        )
    if len(waiting) > 1:
        ids = ", ".join(r.release_id for r in waiting)
        raise LakeopsError(f"{len(waiting)} releases of {dataset} are held ({ids}): name one with --release")
    return waiting[0]


def decide(catalog: Catalog, dataset: str, approve: bool, reason: str, by: str, release_id: str | None = None) -> str:
    """Resume the held release's paused run with the decision; return the release id."""
    waiting = held(catalog, dataset, release_id)
    resume_flow_run(UUID(waiting.flow_run_id), run_input={"approve": approve, "reason": reason, "decided_by": by})
    return waiting.release_id
