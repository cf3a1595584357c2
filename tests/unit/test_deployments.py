"""admin.deployments: prefect.yaml is written from the registry, and the committed file is in step with it."""

from dataclasses import replace
from pathlib import Path

import yaml

from admin import deployments, ecs
from lakeops.datasets import registry as registry_file
from lakeops.datasets.names import INPUTS_READY_EVENT, READY_EVENT
from lakeops.healing import sizes

from .flights import FLIGHTS, REGISTRY

PROJECT = Path(__file__).resolve().parents[2]


def platform_registry():  # noqa: ANN201
    return registry_file.load(PROJECT / "datasets.yaml")


def by_name(text: str) -> dict[str, dict]:
    return {f"{d['entrypoint'].split(':')[1]}/{d['name']}": d for d in yaml.safe_load(text)["deployments"]}


def test_the_committed_prefect_yaml_is_the_one_the_declarations_give():
    committed = (PROJECT / "prefect.yaml").read_text()
    assert committed == deployments.render(platform_registry()), "run `lakeops deployments` and commit prefect.yaml"


def test_a_declaration_change_shows_as_out_of_step(tmp_path):
    changed = registry_file.Registry((replace(FLIGHTS, owner="another-team"),))
    assert deployments.render(changed) != deployments.render(REGISTRY)
    path = tmp_path / "prefect.yaml"
    assert deployments.write(REGISTRY, path) is True
    assert deployments.write(REGISTRY, path) is False  # in step: nothing written
    assert deployments.write(changed, path) is True


def test_every_layer_is_its_own_deployment_named_after_its_table_with_its_trigger():
    found = by_name(deployments.render(platform_registry()))
    names = [d["name"] for d in yaml.safe_load(deployments.render(platform_registry()))["deployments"]]
    assert "lakeops" not in names
    silver = found["build_layer/silver.flights"]
    assert silver["parameters"] == {"params": {"layer": "flights.silver"}}
    assert "team:flights-data-team" in silver["tags"] and "lakeops" in silver["tags"]
    (trigger,) = silver["triggers"]
    assert trigger["match"] == {"prefect.resource.id": "lakeops.dataset.bronze.flights"}
    assert trigger["expect"] == [READY_EVENT]
    assert trigger["parameters"]["params"]["snapshot_id"] == "{{ event.payload.snapshot_id }}"
    assert trigger["parameters"]["params"]["layer"] == "flights.silver"
    gold = found["build_layer/gold.daily_delays"]
    assert gold["triggers"][0]["match"] == {"prefect.resource.id": "lakeops.dataset.silver.flights"}


def test_a_layer_of_two_inputs_is_started_by_its_own_inputs_ready_event():
    joined = by_name(deployments.render(platform_registry()))["build_layer/gold.flight_weather"]
    (trigger,) = joined["triggers"]
    assert trigger["match"] == {"prefect.resource.id": "lakeops.dataset.gold.flight_weather"}
    assert trigger["expect"] == [INPUTS_READY_EVENT]
    assert trigger["parameters"]["params"]["inputs"] == "{{ event.payload.inputs }}"
    assert "team:analytics-team" in joined["tags"]


def test_each_contract_has_its_own_clock_at_its_expected_time_and_the_platform_flows_are_deployed_once():
    found = by_name(deployments.render(platform_registry()))
    assert found["open_window/open-window-bronze.flights"]["schedules"][0]["cron"] == "0 6 * * *"
    assert found["open_window/open-window-bronze.weather"]["schedules"][0]["cron"] == "0 7 * * *"
    assert found["open_window/open-window-bronze.weather"]["schedules"][0]["parameters"] == {
        "params": {"dataset": "bronze.weather"}
    }
    own = ("heal_crashed_run/crashed-runs", "deadline_missed/missed-deadlines", "maintain_tables/all-tables")
    assert set(own) | {"memory_drill/capacity-drill"} <= set(found)
    assert found["release_dataset/release-flights"]["parameters"] == {"params": {"dataset": "flights"}}
    assert "ingest/bronze.weather" in found and "replay_dataset/replay-weather" in found


def test_the_platform_metrics_run_daily_and_every_deployment_records_its_code_versions_commit_time():
    body = yaml.safe_load(deployments.render(platform_registry()))
    (step,) = body["build"]
    script = step["prefect.deployments.steps.run_shell_script"]
    assert script["id"] == "commit-time" and script["script"].startswith("git log -1 --format=%cI")
    tag = "code-committed:{{ $LAKEOPS_CODE_VERSION }}@{{ commit-time.stdout }}"
    assert all(tag in d["tags"] and d["version"] == "{{ $LAKEOPS_CODE_VERSION }}" for d in body["deployments"])
    metrics = by_name(deployments.render(platform_registry()))["platform_metrics/daily"]
    assert metrics["entrypoint"] == "flows/platform_metrics.py:platform_metrics"
    assert metrics["schedules"] == [{"cron": "30 0 * * *", "timezone": "UTC", "active": True}]


def test_the_committed_prefect_ecs_yaml_is_the_one_the_declarations_give():
    committed = (PROJECT / ecs.DEPLOYMENT_FILE).read_text()
    assert committed == ecs.render(platform_registry()), "run `lakeops deployments` and commit prefect.ecs.yaml"
    changed = registry_file.Registry((replace(FLIGHTS, owner="another-team"),))
    assert ecs.render(changed) != ecs.render(REGISTRY)


def test_the_ecs_file_holds_the_same_deployments_each_on_the_ecs_pool_with_a_fargate_size_and_the_image():
    local = by_name(deployments.render(platform_registry()))
    body = yaml.safe_load(ecs.render(platform_registry()))
    on_ecs = by_name(ecs.render(platform_registry()))
    assert on_ecs.keys() == local.keys()
    assert body["build"] == deployments.BUILD
    assert body["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/lakeops"}}]
    for name, deployment in on_ecs.items():
        pool = deployment["work_pool"]
        assert {**deployment, "work_pool": None} == {**local[name], "work_pool": None}, name  # triggers, tags, ...
        assert pool["name"] == "lakeops-ecs" and pool["work_queue_name"] == "default"
        variables = pool["job_variables"]
        assert variables["image"] == "{{ $LAKEOPS_IMAGE }}"
        assert variables["env"] == {"LAKEOPS_CODE_VERSION": "{{ $LAKEOPS_CODE_VERSION }}"}
        assert sizes.is_fargate_size(sizes.Size(variables["memory"], variables["cpu"])), (name, variables)
    assert on_ecs["build_layer/silver.flights"]["triggers"] == local["build_layer/silver.flights"]["triggers"]
    release = on_ecs["release_dataset/release-flights"]["work_pool"]["job_variables"]
    assert (release["cpu"], release["memory"]) == (1024, 4096)


def test_the_dockerfile_installs_the_project_where_the_ecs_pull_step_enters():
    dockerfile = (PROJECT / "Dockerfile").read_text().splitlines()
    assert f"WORKDIR {ecs.IMAGE_WORKDIR}" in dockerfile
    assert any(line.startswith("RUN pip install .") for line in dockerfile)
    copied = {line.split()[1] for line in dockerfile if line.startswith("COPY ")}
    packages = {"lakeops", "declarations", "flows", "blocks", "admin"}  # pyproject's packages
    assert packages <= copied and "pyproject.toml" in copied and "datasets.yaml" in " ".join(dockerfile)
    assert (PROJECT / "datasets.yaml").exists() and all((PROJECT / p).is_dir() for p in packages)
