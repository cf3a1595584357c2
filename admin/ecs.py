"""Flow runs on ECS: prefect.ecs.yaml (the deployments of prefect.yaml on an ECS pool) and that pool's template.

`lakeops deployments` writes prefect.ecs.yaml beside prefect.yaml, from the same registry: the same
deployments, triggers, schedules and tags, each on the ECS work pool with its own `cpu` and `memory` (a
Fargate task size) and the image the code is baked into (the Dockerfile at the repository root; the
pull step only enters its working directory). The pool's base job template is prefect-aws's ECS worker's
own, with lakeops' additions: `cpu` and `memory` defaults the healer can read, `memory_cap` (where the
healer stops doubling) and the heartbeat every run sends. `python -m admin.ecs pool-template` prints it
for `prefect work-pool create --type ecs --base-job-template`.
"""

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from prefect_aws.workers.ecs_worker import ECS_DEFAULT_CPU, ECS_DEFAULT_MEMORY, ECSWorker

from admin import deployments
from admin.deployments import ENTRYPOINTS
from admin.setup import heartbeating
from lakeops.datasets.names import (
    BACKFILL_FLOW,
    BUILD_FLOW,
    DEADLINE_MISSED_FLOW,
    DRILL_FLOW,
    HEALER_FLOW,
    INGEST_FLOW,
    MAINTAIN_FLOW,
    METRICS_FLOW,
    OPEN_WINDOW_FLOW,
    RELEASE_FLOW,
    REPLAY_FLOW,
    ROLLBACK_FLOW,
)
from lakeops.datasets.registry import Registry
from lakeops.healing.oom import DEFAULT_CAP_MB

DEPLOYMENT_FILE = "prefect.ecs.yaml"
ECS_WORK_POOL = "lakeops-ecs"
IMAGE = "{{ $LAKEOPS_IMAGE }}"  # e.g. <account>.dkr.ecr.<region>.amazonaws.com/lakeops:<commit>, set when deploying
IMAGE_WORKDIR = "/opt/lakeops"  # the Dockerfile's WORKDIR: the project, with datasets.yaml and flows/
CODE_VERSION_ENV = {"LAKEOPS_CODE_VERSION": "{{ $LAKEOPS_CODE_VERSION }}"}  # provenance names the deployed version
# (cpu units, memory MB) per flow, each a Fargate task size. A layer's window is small (a day of one dataset):
# builds and ingests need pandas, pyarrow and pyiceberg in memory; a release holds blue, green and their diff.
SIZES: dict[str, tuple[int, int]] = {
    INGEST_FLOW: (512, 2048),
    BUILD_FLOW: (512, 2048),
    REPLAY_FLOW: (1024, 4096),
    BACKFILL_FLOW: (2048, 4096),
    RELEASE_FLOW: (1024, 4096),
    ROLLBACK_FLOW: (256, 1024),
    OPEN_WINDOW_FLOW: (256, 1024),
    DEADLINE_MISSED_FLOW: (512, 2048),
    MAINTAIN_FLOW: (1024, 4096),
    HEALER_FLOW: (256, 1024),
    METRICS_FLOW: (512, 2048),
    DRILL_FLOW: (256, 512),  # small on purpose: the drill checks the limit and the healer
}
FLOW_OF = {entrypoint: flow for flow, entrypoint in ENTRYPOINTS.items()}

HEADER = """\
# lakeops deployments on an ECS work pool: written by `lakeops deployments` from the dataset declarations
# (datasets.yaml), beside prefect.yaml; edit the declarations, not this file (a unit test fails when it is
# out of step). The same deployments and triggers as prefect.yaml, each run as an ECS task (Fargate unless
# the pool says otherwise) with its own `cpu` and `memory`. The code is baked into the image (the
# Dockerfile at the repository root); the pull step only enters its working directory. Apply it instead of
# prefect.yaml, with LAKEOPS_IMAGE (the pushed image) and LAKEOPS_CODE_VERSION set:
#   prefect --no-prompt deploy --all --prefect-file prefect.ecs.yaml
# then `python -m admin.remembered_memory`, which gives back the sizes the healer learned (a deploy resets
# job variables to this file's). The pool's template: `python -m admin.ecs pool-template` (admin/ecs.py).
"""


def document(registry: Registry) -> dict[str, Any]:
    """prefect.yaml's content with every deployment on the ECS pool and the code in the image."""
    body = deployments.document(registry)
    pull = [{"prefect.deployments.steps.set_working_directory": {"directory": IMAGE_WORKDIR}}]
    return {**body, "pull": pull, "deployments": [on_ecs(d) for d in body["deployments"]]}


def on_ecs(deployment: dict[str, Any]) -> dict[str, Any]:
    """A deployment of prefect.yaml moved onto the ECS pool, with its flow's size."""
    cpu, memory = SIZES[FLOW_OF[deployment["entrypoint"]]]
    job_variables = {"image": IMAGE, "cpu": cpu, "memory": memory, "env": dict(CODE_VERSION_ENV)}
    pool = {"name": ECS_WORK_POOL, "work_queue_name": "default", "job_variables": job_variables}
    return {**deployment, "work_pool": pool}


def render(registry: Registry) -> str:
    """The whole prefect.ecs.yaml for a registry."""
    return deployments.dump(HEADER, document(registry))


def write(registry: Registry, path: Path) -> bool:
    """Write prefect.ecs.yaml; True when it changed."""
    return deployments.write_text(path, render(registry))


def pool_template(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ECS pool's base job template: prefect-aws's ECS worker's (or `base`), with lakeops' additions.

    `cpu` and `memory` default to what the worker uses when they are empty (so the healer reads the size a
    run had), `memory_cap` is where the healer stops doubling, and every run heartbeats. Idempotent.
    """
    wanted = copy.deepcopy(base if base is not None else ECSWorker.get_default_base_job_template())
    properties = wanted["variables"]["properties"]
    properties["cpu"]["default"] = ECS_DEFAULT_CPU
    properties["memory"]["default"] = ECS_DEFAULT_MEMORY
    properties["memory"]["description"] = (
        "Memory of the ECS task in MB (on Fargate, a valid size for its cpu). A task over it is stopped "
        "(OutOfMemoryError, exit 137); the healer re-runs it with double, the next Fargate size, up to memory_cap."
    )
    properties["memory_cap"] = {
        "title": "Memory cap (MB)",
        "description": "The most memory the healer gives a re-run; a run killed at the cap is not re-run.",
        "type": "integer",
        "minimum": 512,
        "default": DEFAULT_CAP_MB,
    }
    return heartbeating(wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin.ecs", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["pool-template"], help="print the ECS pool's base job template (JSON)")
    parser.parse_args(argv)
    print(json.dumps(pool_template(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
