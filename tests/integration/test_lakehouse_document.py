"""The lakehouse block document on a real Prefect server: S3 by reference, secrets encrypted, loads whole.

`lakeops setup` saves the S3Bucket on its own and the lakehouse references it (and it references the named
AwsCredentials block), so the UI links them, a save of the form unchanged keeps them, and a key rotated in
the credentials block reaches every flow run.
"""

import pytest
from prefect.client.orchestration import get_client
from prefect_aws import AwsClientParameters, AwsCredentials

from admin.lakehouse import warehouse_block_name
from admin.setup import save_lakehouse
from blocks.lakehouse import IcebergLakehouse
from lakeops.settings import LakeSettings
from tests import moto_s3

pytestmark = pytest.mark.integration


def save_credentials(secret: str) -> None:
    AwsCredentials(
        aws_access_key_id=moto_s3.ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        region_name=moto_s3.REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_s3.endpoint()),
    ).save("lakeops-s3", overwrite=True)


def test_the_lakehouse_references_its_bucket_which_references_the_credentials(prefect_server, tmp_path) -> None:
    save_credentials(moto_s3.SECRET_ACCESS_KEY)
    settings = LakeSettings(
        home=tmp_path / "lake",
        registry="datasets.yaml",
        warehouse=moto_s3.location("document").warehouse,
        aws_credentials_block="lakeops-s3",
    )

    save_lakehouse(settings)

    with get_client(sync_client=True) as client:
        lakehouse = client.read_block_document_by_name("default", "lakeops-iceberg-lakehouse", include_secrets=False)
        bucket = client.read_block_document_by_name(warehouse_block_name("default"), "s3-bucket", include_secrets=False)
        credentials = client.read_block_document_by_name("lakeops-s3", "aws-credentials")
    assert lakehouse.block_document_references["s3_bucket"]["block_document"]["id"] == str(bucket.id)
    assert bucket.block_document_references["credentials"]["block_document"]["id"] == str(credentials.id)
    assert moto_s3.SECRET_ACCESS_KEY not in str(lakehouse.data) + str(bucket.data)
    loaded = IcebergLakehouse.load("default")
    assert loaded.catalog_properties()["s3.secret-access-key"] == moto_s3.SECRET_ACCESS_KEY
    assert loaded.catalog().load_table("bronze.flights").location().startswith(settings.resolved_warehouse())

    save_credentials("rotated-secret")  # a key rotated in the credentials block reaches the lakehouse
    assert IcebergLakehouse.load("default").catalog_properties()["s3.secret-access-key"] == "rotated-secret"
