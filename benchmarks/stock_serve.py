"""The baseline: the same three flows and the same prefect.yaml triggers, run by stock `serve()`."""

from pathlib import Path

import yaml
from prefect import serve
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from flows.build_gold import build_gold
from flows.build_silver import build_silver
from flows.ingest_bronze import ingest_bronze

NAME = "stock"


def triggers_from_prefect_yaml(entrypoint: str) -> list[DeploymentEventTrigger]:
    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        if deployment["entrypoint"] == entrypoint:
            return [DeploymentEventTrigger(**t) for t in deployment.get("triggers", [])]
    raise KeyError(entrypoint)


if __name__ == "__main__":
    serve(
        ingest_bronze.to_deployment(NAME),
        build_silver.to_deployment(NAME, triggers=triggers_from_prefect_yaml("flows/build_silver.py:build_silver")),
        build_gold.to_deployment(NAME, triggers=triggers_from_prefect_yaml("flows/build_gold.py:build_gold")),
    )
