"""One real local Prefect server and process worker for the whole e2e session."""

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import BooleanExpression

from admin import runs
from admin.receiver import Receiver, start_receiver
from admin.setup import setup
from admin.stack import PROJECT_DIR, LocalStack, free_port
from lakeops.datasets import registry as registry_file
from lakeops.datasets.declaration import Dataset
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.settings import LakeSettings

BUFFER_SECONDS = 25  # the e2e deadline buffer: room for the opener's confirmed event (up to 5 s) and a run

# The declared tables (the session's registry file changes only readiness terms, not tables).
DECLARED = registry_file.load(PROJECT_DIR / "datasets.yaml")
FLIGHTS = DECLARED.dataset("flights")
BRONZE_FLIGHTS, SILVER_FLIGHTS, GOLD_DAILY_DELAYS = (
    DECLARED.layer(f"flights.{name}").table for name in ("bronze", "silver", "gold")
)
QUARANTINE_FLIGHTS = FLIGHTS.quarantine


def window_filter(ref: TableRef, window: Window) -> BooleanExpression:
    """The row filter selecting `window`'s rows of a layer's table, by the layer's own window column."""
    return DECLARED.by_table(ref)[1].window.filter(window)


def e2e_registry(home: Path) -> Path:
    """The project's registry, importable from the session's home, with the e2e deadline buffer for flights."""
    text = (PROJECT_DIR / "datasets.yaml").read_text()
    assert "paths: []" in text and "readiness: {}" in text, "datasets.yaml changed shape"
    text = text.replace("paths: []", f"paths: [{PROJECT_DIR}]")
    text = text.replace("readiness: {}", f"readiness: {{flights: {{buffer: {BUFFER_SECONDS}}}}}")
    path = home / "datasets.yaml"
    path.write_text(text)
    return path


@dataclass
class E2E:
    stack: LocalStack
    settings: LakeSettings
    catalog: Catalog
    receiver: Receiver
    registry: Registry
    port: int = 0  # the server's: a restarted server answers on the same port, from the same database
    server: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        self.server = self.stack.start_server(self.port, ui=False)

    def start_worker(self) -> None:
        self.worker = self.stack.start_worker(LAKEOPS_REGISTRY=str(self.settings.registry))

    def kill_server(self) -> None:
        """kill -9 the server's process group; start_server() brings it back on the same database."""
        assert self.server is not None
        self.stack.kill(self.server)
        self.server = None

    def kill_worker(self) -> None:
        """SIGKILL the worker's process group: the worker and every flow run process it started die at once."""
        assert self.worker is not None
        self.stack.kill(self.worker)
        self.worker = None

    @property
    def landing(self):  # noqa: ANN201
        return self.settings.resolved_landing()

    @property
    def flights(self) -> Dataset:
        return self.registry.dataset("flights")

    def run_producer(self, day: date) -> FlowRun:
        """Run the flights producer deployment for one day and wait for it to finish."""
        return runs.run_producer(self.flights, day)

    def follow(self, day: date, producer: FlowRun) -> runs.WindowTrace:
        """The runs the day's ready events start down bronze.flights -> silver.flights -> gold.daily_delays."""
        return runs.follow_window(self.catalog, self.registry, self.flights, Window(day), producer)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    home = tmp_path_factory.mktemp("lakeops-e2e")
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=home)
    receiver = start_receiver()
    path = e2e_registry(home)
    previous = os.environ.get("LAKEOPS_REGISTRY")
    os.environ["LAKEOPS_REGISTRY"] = str(path)  # this process's flows and CLI read the same registry
    try:
        server = stack.start_server(port, ui=False)
        settings = LakeSettings(home=home / "lake", registry=path, alert_webhook_url=receiver.url)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            block = setup(stack, settings)
            worker = stack.start_worker(LAKEOPS_REGISTRY=str(path))
            yield E2E(stack, settings, block.catalog(), receiver, registry_file.load(path), port, server, worker)
    finally:
        stack.stop()
        receiver.stop()
        if previous is None:
            os.environ.pop("LAKEOPS_REGISTRY", None)
        else:
            os.environ["LAKEOPS_REGISTRY"] = previous
