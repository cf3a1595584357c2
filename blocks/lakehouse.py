"""The IcebergLakehouse block: where the catalog, the warehouse and the landing zone are."""

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr
from pyiceberg.catalog import Catalog

from lakeops.iceberg.lake import open_catalog


class IcebergLakehouse(Block):
    """An Iceberg catalog (SQL, REST or Glue), its warehouse and the folder day files land in."""

    _block_type_slug: ClassVar[str] = "lakeops-iceberg-lakehouse"
    _block_type_name: ClassVar[str] = "lakeops Iceberg Lakehouse"
    _description: ClassVar[str] = "Iceberg catalog, warehouse and landing zone used by lakeops."

    catalog_name: str = Field(default="lakeops", description="Iceberg catalog name.")
    catalog_type: str = Field(default="sql", description="pyiceberg catalog type: sql, rest, glue.")
    catalog_uri: SecretStr = Field(
        description="Catalog URI, e.g. sqlite:////abs/catalog.db or postgresql+psycopg2://..."
    )
    warehouse: str = Field(description="Warehouse location, e.g. file:///abs/warehouse or s3://b/p.")
    landing: str = Field(description="Folder where the source system drops one CSV per day.")
    properties: dict[str, str] = Field(
        default_factory=dict, description="Extra pyiceberg catalog properties (s3.*, rest.*)."
    )

    def catalog(self) -> Catalog:
        """A pyiceberg catalog for this lakehouse."""
        return open_catalog(
            self.catalog_name,
            {
                **self.properties,
                "type": self.catalog_type,
                "uri": self.catalog_uri.get_secret_value(),
                "warehouse": self.warehouse,
            },
        )
