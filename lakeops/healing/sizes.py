"""What a run may use (memory, and cpu on ECS) and the task sizes Fargate offers.

Doubling on Fargate moves between these sizes only: a memory Fargate does not offer for the cpu is
refused by ECS, so the healer takes the smallest size with at least the doubled memory, and more cpu
when that memory needs it.
"""

from dataclasses import dataclass

FARGATE_LAUNCH_TYPES = frozenset({"FARGATE", "FARGATE_SPOT"})

# Fargate task sizes (Linux): cpu units -> the memory (MB) a task of that cpu may have.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


@dataclass(frozen=True)
class Size:
    """What a run may use: memory in MB and, on ECS, cpu units (None: the work pool's own)."""

    memory_mb: int
    cpu: int | None = None

    def job_variables(self) -> dict[str, int]:
        return {"memory": self.memory_mb} | ({"cpu": self.cpu} if self.cpu is not None else {})

    def __str__(self) -> str:
        return f"{self.memory_mb} MB" + (f" (cpu {self.cpu})" if self.cpu is not None else "")


def is_fargate_size(size: Size) -> bool:
    return size.memory_mb in FARGATE_SIZES.get(size.cpu or 0, ())


def fargate_sizes(min_cpu: int | None = None) -> list[Size]:
    """Every memory Fargate offers with at least `min_cpu`, each with the least cpu it needs, smallest first."""
    least: dict[int, int] = {}
    for cpu, memories in sorted(FARGATE_SIZES.items()):
        for memory in memories:
            if cpu >= (min_cpu or 0):
                least.setdefault(memory, cpu)
    return [Size(memory, cpu) for memory, cpu in sorted(least.items())]


def fargate_fit(memory_mb: int, min_cpu: int | None = None) -> Size | None:
    """The smallest Fargate size with at least `memory_mb` and `min_cpu`, or None beyond the largest."""
    return next((size for size in fargate_sizes(min_cpu) if size.memory_mb >= memory_mb), None)


def on_fargate(pool_type: str | None, launch_type: str | None) -> bool:
    """Whether a work pool's runs are Fargate tasks (prefect-aws launches FARGATE when none is named)."""
    return pool_type == "ecs" and (launch_type or "FARGATE") in FARGATE_LAUNCH_TYPES
