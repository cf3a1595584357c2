"""One real local Prefect server and process worker for the whole e2e session."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from pyiceberg.catalog import Catalog

from admin.setup import setup
from admin.stack import LocalStack, free_port
from lakeops.settings import LakeSettings


@dataclass
class E2E:
    stack: LocalStack
    settings: LakeSettings
    catalog: Catalog

    @property
    def landing(self):  # noqa: ANN201
        return self.settings.resolved_landing()


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    home = tmp_path_factory.mktemp("lakeops-e2e")
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=home)
    try:
        stack.start_server(port, ui=False)
        settings = LakeSettings(home=home / "lake")
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            block = setup(stack, settings)
            stack.start_worker()
            yield E2E(stack, settings, block.catalog())
    finally:
        stack.stop()
