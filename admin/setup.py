"""Setting up a Prefect server for lakeops: block types, the lakehouse block, pool, deployments."""

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectAlreadyExists
from prefect.workers.process import ProcessWorker

from admin.automations import (
    HEARTBEAT_SECONDS,
    ensure_healer_automation,
    ensure_silent_runs_automation,
    ensure_sla_automations,
)
from admin.lakehouse import lakehouse_from_settings, warehouse_block_name
from admin.remembered_memory import apply_remembered_memory
from admin.stack import PROJECT_DIR, WORK_POOL, WORKER_ENV, LocalStack, worker_type
from blocks.contract import ReadinessContractBlock
from blocks.cost_model import CostModel
from blocks.lakehouse import IcebergLakehouse
from lakeops.datasets import registry as registry_file
from lakeops.datasets.registry import Registry
from lakeops.healing.memlimit import MEMORY_ENV
from lakeops.healing.oom import DEFAULT_CAP_MB
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import code_version
from lakeops.readiness import contracts
from lakeops.readiness.contracts import ReadinessContract
from lakeops.settings import LakeSettings
from workers.warm import WarmWorker


def save_lakehouse(settings: LakeSettings, name: str = "default") -> IcebergLakehouse:
    """Register the block type, save the lakehouse document and create the tables (idempotent)."""
    IcebergLakehouse.register_type_and_schema()
    CostModel.register_type_and_schema()
    block = lakehouse_from_settings(settings)
    if block.s3_bucket is not None:
        block.s3_bucket.save(warehouse_block_name(name), overwrite=True)
    block.save(name, overwrite=True)
    lake.ensure_tables(block.catalog(), registry_file.load(settings.registry))
    return block


# `python` must be the project's interpreter on the worker's PATH (LocalStack puts it first).
MEMORY_LIMITED_COMMAND = "python -m lakeops.memlimit python -m prefect.engine"


def memory_limited(template: dict[str, Any], command: str | None = MEMORY_LIMITED_COMMAND) -> dict[str, Any]:
    """A process pool's base job template whose flow runs are held to the `memory` job variable.

    Adds `memory` (MB, default none: unlimited) and `memory_cap` (MB, where the healer stops doubling),
    passes `memory` to the flow run as LAKEOPS_MEMORY_MB and, on the process worker, starts it through
    `lakeops.memlimit` (the default of `command`: a deployment that sets its own command runs without the
    limit). The warm worker's slots apply the limit themselves (`command` None). Idempotent.
    """
    wanted = copy.deepcopy(template)
    properties = wanted["variables"]["properties"]
    properties["memory"] = {
        "title": "Memory (MB)",
        "description": "Memory limit of the flow run process in MB, enforced by a kernel memory cgroup "
        "(exceeding it kills the run: exit 137). Empty: no limit. The healer doubles it after an "
        "out-of-memory kill.",
        "anyOf": [{"type": "integer", "minimum": 16}, {"type": "null"}],
        "default": None,
    }
    properties["memory_cap"] = {
        "title": "Memory cap (MB)",
        "description": "The most memory the healer gives a re-run; a run killed at the cap is not re-run.",
        "type": "integer",
        "minimum": 16,
        "default": DEFAULT_CAP_MB,
    }
    properties["command"]["default"] = command
    env = wanted["job_configuration"].get("env")
    wanted["job_configuration"]["env"] = {**(env if isinstance(env, dict) else {}), MEMORY_ENV: "{{ memory }}"}
    return wanted


HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"


def heartbeating(template: dict[str, Any]) -> dict[str, Any]:
    """A pool's base job template whose flow runs send a heartbeat every HEARTBEAT_SECONDS.

    The default of the `env` job variable, which Prefect merges under a deployment's or a run's own `env`:
    every run on the pool heartbeats at the pace the silent-runs automation expects, whichever worker
    starts it, unless a deployment sets the variable itself. Idempotent.
    """
    wanted = copy.deepcopy(template)
    env = wanted["variables"]["properties"]["env"]
    env["default"] = {**env.get("default", {}), HEARTBEAT_ENV: str(HEARTBEAT_SECONDS)}
    return wanted


def lakeops_pool(template: dict[str, Any], kind: str = "process") -> dict[str, Any]:
    """The lakeops pool's template: memory-limited runs that heartbeat."""
    return heartbeating(memory_limited(template, MEMORY_LIMITED_COMMAND if kind == "process" else None))


WORKERS = {"process": ProcessWorker, WarmWorker.type: WarmWorker}


def ensure_work_pool(name: str = WORK_POOL, kind: str | None = None) -> None:
    """Create the local pool of the chosen worker type (LAKEOPS_WORKER) with the memory limit and heartbeats.

    An existing pool gets them added; a pool of the other worker type is replaced (`lakeops setup`
    redeploys onto it next).
    """
    kind = kind or worker_type()
    template = lakeops_pool(WORKERS[kind].get_default_base_job_template(), kind)
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template))
            return
        except ObjectAlreadyExists:
            pool = client.read_work_pool(name)
        if pool.type != kind:
            print(f"work pool {name}: {pool.type} -> {kind} ({WORKER_ENV}); recreated")
            client.delete_work_pool(name)
            client.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template))
        elif lakeops_pool(pool.base_job_template, kind) != pool.base_job_template:
            client.update_work_pool(name, WorkPoolUpdate(base_job_template=lakeops_pool(pool.base_job_template, kind)))


def deploy_all(stack: LocalStack, prefect_file: Path | None = None) -> None:
    """Apply every deployment in prefect.yaml (or `prefect_file`), with its triggers (`prefect deploy --all`)."""
    env = stack.env(LAKEOPS_CODE_VERSION=code_version())
    chosen = ["--prefect-file", str(prefect_file)] if prefect_file else []
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", *chosen],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    apply_remembered_memory()  # `prefect deploy` reset job variables to the file's: give back what the healer learned


def save_contracts(registry: Registry) -> list[ReadinessContract]:
    """One ReadinessContract block per declared contract (with the environment's overrides)."""
    ReadinessContractBlock.register_type_and_schema()
    found = contracts.all_of(registry)
    for contract in found:
        ReadinessContractBlock(contract=contract).save(contract.block_name, overwrite=True)
    return found


def save_alert_block(url: str, name: str = "lakeops-alerts") -> None:  # loaded as custom-webhook/lakeops-alerts
    alert_block(url, name).save(name, overwrite=True)


def alert_block(url: str, name: str = "lakeops-alerts") -> CustomWebhookNotificationBlock:
    """The default alert channel: Prefect's built-in webhook block, posting {subject, body} as JSON.

    The URL (a Slack or pager webhook carries its token in it) is a secret value the block substitutes into
    its `url` template when it sends, so the block document shows `{{url}}`, not the URL.
    """
    return CustomWebhookNotificationBlock(
        name=name,
        url="{{url}}",
        secrets={"url": url},
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
        timeout=10,
    )


def setup(stack: LocalStack, settings: LakeSettings) -> IcebergLakehouse:
    """Everything a fresh server needs before flows can run."""
    block = save_lakehouse(settings)
    declared = save_contracts(registry_file.load(settings.registry))
    if settings.alert_webhook_url:
        save_alert_block(settings.alert_webhook_url)
    ensure_work_pool()
    deploy_all(stack)
    ensure_sla_automations(declared)
    ensure_healer_automation()
    ensure_silent_runs_automation()
    return block
