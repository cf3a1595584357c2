"""The production profile for the tests of this folder: one stack, shared by them and stopped after them.

The Prefect server on a fresh PostgreSQL database with messaging, cache, ordering and leases on Redis, two
API servers (`--no-services`) behind the balancer and the services in their own process, basic auth on; the
Iceberg catalog on PostgreSQL; the warehouse on S3 (moto on loopback) through a prefect-aws AwsCredentials
block; a process worker. The secrets of this profile are known values (`SECRETS`), so a test can look for
them wherever lakeops writes. Skipped, with the reason, where PostgreSQL or Redis does not answer.
"""

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import temporary_settings
from prefect_aws import AwsClientParameters, AwsCredentials

from admin.production_stack import (
    POSTGRES_URL,
    REDIS_URL,
    ProductionStack,
    create_database,
    database_url,
    drop_database,
    production_stack,
    unreachable,
)
from admin.receiver import start_receiver
from admin.setup import setup
from lakeops.datasets import registry as registry_file
from lakeops.settings import LakeSettings
from tests import moto_s3
from tests.e2e.conftest import E2E, e2e_registry

CREDENTIALS_BLOCK = "lakeops-s3"
# PostgreSQL here trusts loopback, so it accepts any password: a known one makes a leak visible.
DB_PASSWORD = f"pg-{secrets.token_hex(8)}"
SECRETS = {
    "S3 secret access key": moto_s3.SECRET_ACCESS_KEY,
    "S3 access key id": moto_s3.ACCESS_KEY_ID,
    "database password": DB_PASSWORD,
    "API auth string": f"lakeops:{secrets.token_urlsafe(16)}",
    "webhook token": f"hook-{secrets.token_hex(12)}",
}


@dataclass
class Production(E2E):
    """The e2e helpers (producer, follow, worker, receiver) on the production stack."""

    stack: ProductionStack
    # The LAKEOPS_* and PREFECT_* settings of this profile, as a shell would set them.
    profile: dict[str, str] = field(default_factory=dict)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    return parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 5432}").geturl()


def lakehouse(home, catalog_database: str, webhook_url: str) -> LakeSettings:  # noqa: ANN001
    """The lake of this stack, in one place: the catalog on PostgreSQL, the warehouse on S3 (moto)."""
    return LakeSettings(
        home=home / "lake",
        catalog_uri=database_url(with_password(POSTGRES_URL, DB_PASSWORD), catalog_database, "psycopg2"),
        warehouse=moto_s3.location("production").warehouse,
        aws_credentials_block=CREDENTIALS_BLOCK,
        registry=home / "datasets.yaml",
        alert_webhook_url=webhook_url,
    )


def save_credentials() -> None:
    """The AwsCredentials block the lakehouse nests: moto's keys, its region and its endpoint."""
    AwsCredentials(
        aws_access_key_id=moto_s3.ACCESS_KEY_ID,
        aws_secret_access_key=moto_s3.SECRET_ACCESS_KEY,
        region_name=moto_s3.REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_s3.endpoint()),
    ).save(CREDENTIALS_BLOCK, overwrite=True)


def profile_of(stack: ProductionStack, settings: LakeSettings) -> dict[str, str]:
    return {
        "PREFECT_API_URL": stack.api_url,
        "PREFECT_API_AUTH_STRING": SECRETS["API auth string"],
        "LAKEOPS_HOME": str(settings.home),
        "LAKEOPS_CATALOG_URI": settings.resolved_catalog_uri(),
        "LAKEOPS_WAREHOUSE": settings.resolved_warehouse(),
        "LAKEOPS_AWS_CREDENTIALS_BLOCK": CREDENTIALS_BLOCK,
        "LAKEOPS_REGISTRY": str(settings.registry),
    }


def drain_client_services() -> None:
    """Prefect's in-process event and log workers are one per process, bound to the API they started with.

    Drained while this stack still answers, so that the next test's events start a worker bound to its own
    server (otherwise every later event of the session fails against this stopped one, and the session's
    exit waits for thousands of them).
    """
    EventsWorker.drain_all(timeout=30, at_exit=False)
    APILogWorker.drain_all(timeout=30, at_exit=False)


@pytest.fixture(scope="package")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    if reason := unreachable(POSTGRES_URL) or unreachable(REDIS_URL):
        pytest.skip(f"the production stack needs PostgreSQL and Redis: {reason}")
    pytest.importorskip("prefect_redis", reason="the production stack's servers need prefect-redis (the dev extra)")
    home = tmp_path_factory.mktemp("lakeops-production")
    path = e2e_registry(home)
    previous = os.environ.get("LAKEOPS_REGISTRY")
    os.environ["LAKEOPS_REGISTRY"] = str(path)  # this process's flows and CLI read the same registry
    receiver = start_receiver()
    admin_url = with_password(POSTGRES_URL, DB_PASSWORD)
    catalog = create_database(admin_url, "lakeops_catalog")
    try:
        with production_stack(home, postgres_url=admin_url, auth_string=SECRETS["API auth string"]) as stack:
            settings = lakehouse(home, catalog, f"{receiver.url}/{SECRETS['webhook token']}")
            with temporary_settings(stack.client_settings()):
                save_credentials()
                block = setup(stack, settings)
                worker = stack.start_worker(LAKEOPS_REGISTRY=str(path))
                prod = Production(stack, settings, block.catalog(), receiver, registry_file.load(path), worker=worker)
                prod.profile = profile_of(stack, settings)
                yield prod
                if prod.worker is not None:
                    prod.kill_worker()  # no run is left to finish: spares the worker's graceful shutdown (~7 s)
                drain_client_services()
    finally:
        receiver.stop()
        drop_database(admin_url, catalog)
        if previous is None:
            os.environ.pop("LAKEOPS_REGISTRY", None)
        else:
            os.environ["LAKEOPS_REGISTRY"] = previous
