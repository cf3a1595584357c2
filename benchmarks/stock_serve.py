"""The baseline: the flights dataset's three deployments of prefect.yaml (same names, parameters and
triggers), run by stock `serve()` instead of a work pool and process worker."""

from pathlib import Path

import yaml
from prefect import serve
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from flows.build_layer import build_layer
from flows.ingest import ingest

SERVED = {"bronze.flights": ingest, "silver.flights": build_layer, "gold.daily_delays": build_layer}


def deployments_from_prefect_yaml() -> list:
    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    found = []
    for deployment in spec["deployments"]:
        flow = SERVED.get(deployment["name"])
        entrypoint = f"{flow.__module__.replace('.', '/')}.py:{flow.fn.__name__}" if flow else None
        if flow is None or deployment["entrypoint"] != entrypoint:
            continue
        triggers = [DeploymentEventTrigger(**t) for t in deployment.get("triggers", [])]
        found.append(flow.to_deployment(deployment["name"], parameters=deployment.get("parameters"), triggers=triggers))
    if len(found) != len(SERVED):
        raise KeyError(f"prefect.yaml lacks some of {sorted(SERVED)}")
    return found


if __name__ == "__main__":
    serve(*deployments_from_prefect_yaml())
