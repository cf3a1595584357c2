"""One real local Prefect server and process worker for the whole e2e session."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from pyiceberg.catalog import Catalog

from admin.receiver import Receiver, start_receiver
from admin.setup import setup
from admin.stack import PROJECT_DIR, LocalStack, free_port
from lakeops.settings import LakeSettings

BUFFER_SECONDS = 15  # the e2e contract's deadline buffer (Prefect's proactive minimum is 10 s)


@dataclass
class E2E:
    stack: LocalStack
    settings: LakeSettings
    catalog: Catalog
    receiver: Receiver

    @property
    def landing(self):  # noqa: ANN201
        return self.settings.resolved_landing()


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    home = tmp_path_factory.mktemp("lakeops-e2e")
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=home)
    receiver = start_receiver()
    contracts = home / "contracts.yaml"
    text = (PROJECT_DIR / "contracts.yaml").read_text()
    contracts.write_text(text.replace("buffer_seconds: 1800", f"buffer_seconds: {BUFFER_SECONDS}"))
    try:
        stack.start_server(port, ui=False)
        settings = LakeSettings(home=home / "lake", contracts=contracts, alert_webhook_url=receiver.url)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            block = setup(stack, settings)
            stack.start_worker()
            yield E2E(stack, settings, block.catalog(), receiver)
    finally:
        stack.stop()
        receiver.stop()
