"""The sizes the healer learned, given back to the deployments after `prefect deploy`.

When a re-run at double the memory completes, the healer raises its deployment's `memory` (and, on Fargate,
`cpu`) and remembers the size in a Prefect variable per deployment and work pool (flows/heal_crashed_run.py).
`prefect deploy` sets a deployment's job variables back to its file's, so the deploy path calls
`apply_remembered_memory()` right after it: each remembered size raises its deployment again, never lowers
it (a larger size in the file stands), and only on the pool it was learned on (a process pool's megabytes
are not an ECS task's). `python -m admin.remembered_memory` does the same from a shell.
"""

from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound

from flows.memory_sizes import raise_deployment
from lakeops.healing import oom, sizes

PAGE = 200


@dataclass(frozen=True)
class Applied:
    """A deployment raised to the size its healed runs needed."""

    deployment: str
    work_pool: str
    size: sizes.Size

    def __str__(self) -> str:
        return f"{self.deployment} on {self.work_pool}: {self.size}"


def apply_remembered_memory() -> list[Applied]:
    """Raise every redeployed deployment to the size the healer remembered for it on its pool; what changed."""
    applied: list[Applied] = []
    with get_client(sync_client=True) as client:
        for remembered in remembered_sizes(client):
            try:
                deployment = client.read_deployment_by_name(remembered.deployment)
            except ObjectNotFound:
                continue  # deleted or renamed since: its variable stays until someone removes it
            if deployment.work_pool_name != remembered.work_pool:
                continue
            new = raise_deployment(client, deployment.id, remembered.size)
            if new is not None:
                applied.append(Applied(remembered.deployment, remembered.work_pool, new))
    return applied


def remembered_sizes(client: SyncPrefectClient) -> list[oom.Remembered]:
    """Every size the healer remembered (the variables tagged lakeops-remembered-memory), page by page."""
    found: list[oom.Remembered] = []
    offset = 0
    while True:
        body: dict[str, Any] = {
            "variables": {"tags": {"all_": [oom.REMEMBERED_TAG]}},
            "sort": "NAME_ASC",
            "offset": offset,
            "limit": PAGE,
        }
        page = client.request("POST", "/variables/filter", json=body).json()
        found += [r for r in (oom.Remembered.parse(v.get("value")) for v in page) if r is not None]
        if len(page) < PAGE:
            return found
        offset += PAGE


def main() -> int:
    applied = apply_remembered_memory()
    for line in applied:
        print(f"raised {line}")
    print(f"{len(applied)} deployments raised to the memory the healer remembered")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
