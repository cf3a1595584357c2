"""admin.ecs: the ECS pool's template is prefect-aws's, and each ECS deployment renders to the task it declares.

Rendering is prefect-aws's own path, with no server and no AWS: the deployment's job variables (its file's
`{{ $ENV }}` placeholders resolved as `prefect deploy` does) over the pool's template through
`ECSJobConfiguration.from_template_and_values`, `prepare_for_flow_run`, and the worker's task definition and
run request. Only the worker's VPC lookup (an EC2 call) is replaced by a fixed subnet.
"""

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.schemas.objects import FlowRun
from prefect.utilities.templating import apply_values
from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker

from admin import ecs
from admin.automations import HEARTBEAT_SECONDS
from admin.setup import HEARTBEAT_ENV
from lakeops.healing import oom, sizes

PROJECT = Path(__file__).resolve().parents[2]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lakeops:0123456789ab"
VERSION = "git:0123456789ab"
TASK_DEFINITION_ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/lakeops:1"


class NoServer:
    """The client the worker resolves block and variable references with: the template must need none."""

    async def __aenter__(self) -> "NoServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"rendering asked the Prefect server for {name}")


def ecs_deployments() -> list[dict[str, Any]]:
    return yaml.safe_load((PROJECT / ecs.DEPLOYMENT_FILE).read_text())["deployments"]


def deployed(job_variables: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The job variables as `prefect deploy` stores them: the `{{ $ENV }}` placeholders resolved."""
    monkeypatch.setenv("LAKEOPS_IMAGE", IMAGE)
    monkeypatch.setenv("LAKEOPS_CODE_VERSION", VERSION)
    return apply_values(copy.deepcopy(job_variables), {}, remove_notset=False)


def render(job_variables: dict[str, Any]) -> tuple[FlowRun, dict[str, Any], dict[str, Any]]:
    """The flow run, the task definition and the run-task request the ECS worker would send for these variables."""
    template = ecs.pool_template()
    configuration = asyncio.run(
        ECSJobConfiguration.from_template_and_values(template, job_variables, client=NoServer())
    )
    run = FlowRun(id=uuid.uuid4(), name="brave-fox", flow_id=uuid.uuid4(), deployment_id=uuid.uuid4())
    configuration.prepare_for_flow_run(run)
    worker = ECSWorker(work_pool_name=ecs.ECS_WORK_POOL)
    worker._load_network_configuration = lambda vpc_id, configuration: {  # the one AWS call: a VPC's subnets
        "awsvpcConfiguration": {"subnets": ["subnet-0abc"], "assignPublicIp": "DISABLED"}
    }
    task_definition = worker._prepare_task_definition(configuration, region="eu-west-1", flow_run=run)
    request = worker._prepare_task_run_request(configuration, task_definition, TASK_DEFINITION_ARN, False)
    return run, task_definition, request


def test_the_pool_template_is_the_ecs_workers_with_lakeops_additions() -> None:
    stock = ECSWorker.get_default_base_job_template()
    template = ecs.pool_template()

    assert template["job_configuration"] == stock["job_configuration"]
    properties = template["variables"]["properties"]
    assert set(properties) == set(stock["variables"]["properties"]) | {"memory_cap"}
    assert (properties["cpu"]["default"], properties["memory"]["default"]) == (1024, 2048)  # the worker's own
    assert sizes.is_fargate_size(sizes.Size(2048, 1024))
    assert properties["memory_cap"]["default"] == oom.DEFAULT_CAP_MB
    assert properties["env"]["default"] == {HEARTBEAT_ENV: str(HEARTBEAT_SECONDS)}  # what the silent-runs rule expects
    assert properties["launch_type"]["default"] == "FARGATE"
    assert ecs.pool_template(template) == template  # idempotent: applying it to the pool's own changes nothing


@pytest.mark.parametrize("deployment", ecs_deployments(), ids=lambda d: d["name"])
def test_each_ecs_deployment_renders_to_a_task_of_its_size_image_command_and_env(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = deployed(deployment["work_pool"]["job_variables"], monkeypatch)
    cpu, memory = variables["cpu"], variables["memory"]

    run, task_definition, request = render(variables)

    assert (task_definition["cpu"], task_definition["memory"]) == (str(cpu), str(memory))
    assert task_definition["requiresCompatibilities"] == ["FARGATE"] and task_definition["networkMode"] == "awsvpc"
    (container,) = task_definition["containerDefinitions"]
    assert container == {"image": IMAGE, "name": "prefect"}
    assert request["launchType"] == "FARGATE" and request["taskDefinition"] == TASK_DEFINITION_ARN
    assert (request["overrides"]["cpu"], request["overrides"]["memory"]) == (str(cpu), str(memory))
    (override,) = request["overrides"]["containerOverrides"]
    assert override["name"] == "prefect" and override["memory"] == memory  # the container's hard limit
    assert override["command"] == ["prefect", "flow-run", "execute"]
    env = {item["name"]: item["value"] for item in override["environment"]}
    assert env["PREFECT__FLOW_RUN_ID"] == str(run.id)
    assert env["LAKEOPS_CODE_VERSION"] == VERSION  # the deployment's own env
    assert env[HEARTBEAT_ENV] == str(HEARTBEAT_SECONDS)  # the pool's env default, merged under the deployment's
    assert {"key": "prefect.io/flow-run-id", "value": str(run.id)} in request["tags"]


def test_healed_reruns_render_to_the_next_fargate_sizes_with_more_cpu_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (build,) = [d for d in ecs_deployments() if d["name"] == "silver.flights"]
    variables = deployed(build["work_pool"]["job_variables"], monkeypatch)
    assert (variables["cpu"], variables["memory"]) == (512, 2048)
    message = "The following containers stopped with a non-zero exit code: ['prefect']"
    evidence = ("Essential container exited: Container 'prefect' exited with code 137. Resolution: ...",)
    first = oom.Crash("run-1", message, 2048, 16384, cpu=512, fargate=True, evidence=evidence)

    rerun = oom.decide(first)
    _, task_definition, request = render({**variables, **rerun.size.job_variables()})

    assert (task_definition["cpu"], task_definition["memory"]) == ("512", "4096")  # 512 cpu goes up to 4096
    assert request["overrides"]["containerOverrides"][0]["memory"] == 4096
    second = oom.Crash("run-2", message, 4096, 16384, rerun.tags, cpu=512, fargate=True, evidence=evidence)
    _, task_definition, _ = render({**variables, **oom.decide(second).size.job_variables()})
    assert (task_definition["cpu"], task_definition["memory"]) == ("1024", "8192")  # 8192 needs 1024 cpu


def test_the_pool_template_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert ecs.main(["pool-template"]) == 0
    assert json.loads(capsys.readouterr().out) == ecs.pool_template()
