"""The lakehouse a profile's settings describe: the embedded default, or a shared catalog and S3.

LAKEOPS_CATALOG_URI, LAKEOPS_CATALOG_TYPE, LAKEOPS_WAREHOUSE and LAKEOPS_AWS_CREDENTIALS_BLOCK name the
parts; `lakeops setup` saves the block they make, and the CLI opens the catalog from the same settings.
"""

from prefect_aws import AwsCredentials
from prefect_aws.s3 import S3Bucket
from pydantic import SecretStr
from pyiceberg.catalog import Catalog

from blocks.lakehouse import IcebergLakehouse
from lakeops.datasets import registry as registry_file
from lakeops.iceberg import lake, storage
from lakeops.settings import LakeSettings


def warehouse_block_name(lakehouse: str) -> str:
    """The S3Bucket block a lakehouse document references: saved on its own, so the UI links it, an unchanged
    save in the UI keeps it, and a key rotated in the AwsCredentials block it references reaches every run."""
    return f"{lakehouse}-warehouse"


def lakehouse_from_settings(settings: LakeSettings) -> IcebergLakehouse:
    """The IcebergLakehouse block described by LAKEOPS_* settings (an s3:// warehouse nests an S3Bucket)."""
    settings.resolved_home().mkdir(parents=True, exist_ok=True)
    warehouse = settings.resolved_warehouse()
    bucket = None
    if warehouse.startswith(("s3://", "s3a://")):
        name, folder = storage.parse_s3_warehouse(warehouse)
        credentials = (
            AwsCredentials.load(settings.aws_credentials_block) if settings.aws_credentials_block else AwsCredentials()
        )
        bucket = S3Bucket(bucket_name=name, bucket_folder=folder, credentials=credentials)

    return IcebergLakehouse(
        catalog_name=settings.catalog_name,
        catalog_type=settings.catalog_type,
        catalog_uri=SecretStr(settings.resolved_catalog_uri()),
        warehouse="" if bucket else warehouse,
        s3_bucket=bucket,
        landing=str(settings.resolved_landing()),
    )


def open_catalog(settings: LakeSettings, ensure: bool = False) -> Catalog:
    """The catalog of the settings' lakehouse (with every table created when `ensure`)."""
    catalog = lakehouse_from_settings(settings).catalog()
    if ensure:
        lake.ensure_tables(catalog, registry_file.load(settings.registry))
    return catalog
