"""A capacity drill: allocate and touch `megabytes` MB, to check a memory limit and the healer behind it."""

import os
import resource
import time

from prefect import flow, get_run_logger
from prefect.states import Completed
from pydantic import BaseModel, Field

from lakeops.datasets.names import DRILL_FLOW
from lakeops.healing.memlimit import ENFORCED_ENV

CHUNK_MB = 16
PAGE = 4096


class DrillParams(BaseModel):
    megabytes: int = Field(ge=1, le=65536, description="Memory to allocate and touch, in MB.")
    hold_seconds: float = Field(default=0, ge=0, le=3600, description="How long to hold it before letting go.")


@flow(name=DRILL_FLOW)
def memory_drill(params: DrillParams):  # noqa: ANN201 - returns a state
    """Allocate in chunks, touching every page so the memory is really resident, then hold it."""
    logger = get_run_logger()
    logger.info(
        "allocating %s MB in process %s; memory limit: %s",
        params.megabytes,
        os.getpid(),
        os.environ.get(ENFORCED_ENV, "none"),
    )
    held = []
    for _ in range(0, params.megabytes, CHUNK_MB):
        chunk = bytearray(CHUNK_MB * 1024 * 1024)
        chunk[::PAGE] = b"\x01" * len(range(0, len(chunk), PAGE))
        held.append(chunk)
    time.sleep(params.hold_seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return Completed(message=f"held {len(held) * CHUNK_MB} MB; peak resident {peak} MB")
