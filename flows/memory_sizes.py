"""The memory sizes the healer raises deployments to, and keeps in Prefect variables past a redeploy.

Shared by the healer (flows/heal_crashed_run.py) and the deploy path (admin/remembered_memory.py), so both
raise by the same rules: never lower, Fargate sizes on Fargate, per deployment and work pool.
"""

from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.exceptions import ObjectAlreadyExists
from prefect.variables import Variable

from lakeops.healing import oom, sizes


def raise_deployment(
    client: SyncPrefectClient, deployment_id: UUID, worked: sizes.Size, remember: bool = False
) -> sizes.Size | None:
    """Raise a deployment's `memory` (and Fargate `cpu`) to `worked`, never lower; the new size, or None.

    With `remember`, the size is also kept in a Prefect variable per deployment and pool, which `prefect deploy`
    leaves alone (admin/remembered_memory.py raises the redeployed deployment to it again).
    """
    deployment = client.read_deployment(deployment_id)
    pool = client.read_work_pool(deployment.work_pool_name) if deployment.work_pool_name else None
    variables = deployment.job_variables or {}
    ran = oom.in_effect(pool.base_job_template if pool else {}, variables)
    fargate = sizes.on_fargate(pool.type if pool else None, ran.get("launch_type"))
    new = oom.raised(ran.get("memory"), ran.get("cpu"), worked, fargate)
    if new is not None:
        client.update_deployment(deployment_id, DeploymentUpdate(job_variables={**variables, **new.job_variables()}))
    if remember and pool is not None:
        name = f"{client.read_flow(deployment.flow_id).name}/{deployment.name}"
        _keep(oom.Remembered(name, pool.name, worked), fargate)
    return new


def _keep(remembered: oom.Remembered, fargate: bool) -> None:
    """Write the remembered size to its variable unless the variable already holds a larger one."""
    for _ in range(2):  # once more when another healer of the deployment created the variable in between
        wanted = remembered.merged(oom.Remembered.parse(Variable.get(remembered.variable)), fargate)
        try:
            if wanted is not None:
                Variable.set(wanted.variable, wanted.value(), tags=[oom.REMEMBERED_TAG], overwrite=True)
            return
        except ObjectAlreadyExists:
            continue
