"""The IcebergLakehouse block: where the catalog, the warehouse and the landing zone are.

Secrets are secret fields, encrypted by the Prefect server and never in `properties`: the catalog URI
(it may hold a database password), a REST catalog's credential or token, and the S3 keys, which live
in the nested prefect-aws blocks (`S3Bucket` and its `AwsCredentials`). pyiceberg's FileIO properties
are derived from those blocks only when the catalog is opened.
"""

from typing import ClassVar

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials, MinIOCredentials
from prefect_aws.s3 import S3Bucket
from pydantic import Field, SecretStr, field_validator, model_validator
from pyiceberg.catalog import Catalog

from lakeops.iceberg import storage
from lakeops.iceberg.lake import open_catalog


class IcebergLakehouse(Block):
    """An Iceberg catalog (SQL or REST), its warehouse (a local folder or S3) and the folder files land in."""

    _block_type_slug: ClassVar[str] = "lakeops-iceberg-lakehouse"
    _block_type_name: ClassVar[str] = "lakeops Iceberg Lakehouse"
    _description: ClassVar[str] = "Iceberg catalog, warehouse and landing zone used by lakeops."

    catalog_name: str = Field(default="lakeops", description="Iceberg catalog name.")
    catalog_type: str = Field(default="sql", description="pyiceberg catalog type: sql or rest.")
    catalog_uri: SecretStr = Field(
        description="SQL catalog: a SQLAlchemy URI, e.g. sqlite:////abs/catalog.db or "
        "postgresql+psycopg2://user:password@host/db. REST catalog: its URL. Stored encrypted."
    )
    catalog_credential: SecretStr | None = Field(
        default=None, description="REST catalog only: the OAuth2 client credential, client_id:client_secret."
    )
    catalog_token: SecretStr | None = Field(default=None, description="REST catalog only: a bearer token.")
    warehouse: str = Field(
        default="",
        description="Local warehouse as file:///abs/path. Leave empty when an S3 bucket is set: the warehouse is "
        "then s3://<bucket>/<folder>. A REST catalog may take a warehouse name instead.",
    )
    s3_bucket: S3Bucket | None = Field(
        default=None,
        title="S3 bucket",
        description="Warehouse on S3: a saved S3 Bucket block (bucket, folder, and its AWS Credentials block with "
        "keys, region and the endpoint URL of S3-compatible storage). Leave empty for a local warehouse.",
    )
    landing: str = Field(description="Folder where the source system drops one file per window.")
    properties: dict[str, str] = Field(
        default_factory=dict,
        description="Extra pyiceberg properties that are not secrets (e.g. s3.connect-timeout, rest.sigv4-enabled).",
    )

    @field_validator("properties")
    @classmethod
    def _no_secrets_in_plain_properties(cls, value: dict[str, str]) -> dict[str, str]:
        if found := storage.secret_keys(value):
            raise ValueError(
                f"properties {', '.join(found)} carry secrets and would be stored unencrypted: put S3 keys in the "
                "AwsCredentials block of s3_bucket and a REST credential or token in catalog_credential/catalog_token"
            )
        return value

    @model_validator(mode="after")
    def _one_warehouse(self) -> "IcebergLakehouse":
        if self.s3_bucket is None and not self.warehouse:
            raise ValueError("a lakehouse needs a warehouse: a file:// location or an s3_bucket")
        if self.s3_bucket is not None and self.warehouse.startswith("file:"):
            raise ValueError(f"warehouse {self.warehouse!r} is local but s3_bucket is set: choose one")
        return self

    def s3_location(self) -> storage.S3Location | None:
        """The S3 warehouse with its credentials, or None for a local one."""
        if self.s3_bucket is None:
            return None
        creds = self.s3_bucket.credentials
        endpoint = creds.aws_client_parameters.endpoint_url
        if isinstance(creds, MinIOCredentials):
            key_id, secret, token = creds.minio_root_user, creds.minio_root_password.get_secret_value(), None
        elif isinstance(creds, AwsCredentials):
            key_id = creds.aws_access_key_id
            secret = creds.aws_secret_access_key.get_secret_value() if creds.aws_secret_access_key else None
            token = creds.aws_session_token
        return storage.S3Location(
            bucket=self.s3_bucket.bucket_name,
            prefix=self.s3_bucket.bucket_folder,
            region=creds.region_name,
            endpoint=str(endpoint) if endpoint else None,
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=token,
        )

    def catalog_properties(self) -> dict[str, str]:
        """The properties a pyiceberg catalog is opened with, secrets included: hand them to pyiceberg only."""
        s3 = self.s3_location()
        props = {**self.properties, "type": self.catalog_type, "uri": self.catalog_uri.get_secret_value()}
        props["warehouse"] = self.warehouse or (s3.warehouse if s3 else "")
        if s3 is not None:
            props |= s3.file_io_properties()
        if self.catalog_credential is not None:
            props["credential"] = self.catalog_credential.get_secret_value()
        if self.catalog_token is not None:
            props["token"] = self.catalog_token.get_secret_value()
        return props

    def catalog(self) -> Catalog:
        """A pyiceberg catalog for this lakehouse."""
        return open_catalog(self.catalog_name, self.catalog_properties())
