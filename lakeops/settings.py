"""Typed settings (env prefix LAKEOPS_) with embedded defaults: read once at the edge, passed down."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LakeSettings(BaseSettings):
    """Where the lake lives. The embedded default is a SQLite catalog and a local warehouse."""

    model_config = SettingsConfigDict(env_prefix="LAKEOPS_", extra="ignore")

    home: Path = Field(
        default=Path(".lakeops"),
        description="Project-local folder for the embedded catalog, warehouse and landing zone.",
    )
    catalog_name: str = Field(default="lakeops", min_length=1, description="Iceberg catalog name.")
    catalog_uri: str | None = Field(
        default=None, description="SQLAlchemy URI of the SQL catalog; default: SQLite in home."
    )
    catalog_type: str = Field(default="sql", description="pyiceberg catalog type: sql or rest.")
    warehouse: str | None = Field(
        default=None, description="Warehouse location (file:// or s3://bucket/folder); default: home/warehouse."
    )
    aws_credentials_block: str | None = Field(
        default=None,
        description="Name of the prefect-aws AwsCredentials block that signs for an s3:// warehouse "
        "(keys, region, endpoint URL); unset: the default AWS credential chain.",
    )
    landing: str | None = Field(default=None, description="Folder where the source system drops day files.")
    registry: Path = Field(
        default=Path("datasets.yaml"), description="Registry file: the dataset declarations on this platform."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="Where the lakeops-alerts webhook block posts; setup creates the block from it."
    )

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def resolved_catalog_uri(self) -> str:
        return self.catalog_uri or f"sqlite:///{self.resolved_home() / 'catalog.db'}"

    def resolved_warehouse(self) -> str:
        # Not Path.as_uri(): pyiceberg does not percent-decode, and would write to ".../my%20lake/".
        return self.warehouse or f"file://{self.resolved_home() / 'warehouse'}"

    def resolved_landing(self) -> Path:
        return Path(self.landing).resolve() if self.landing else self.resolved_home() / "landing"
