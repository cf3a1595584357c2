"""The lakehouse block: S3 through prefect-aws blocks, secrets only in secret fields, SQL and REST catalogs."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prefect_aws import AwsClientParameters, AwsCredentials
from prefect_aws.s3 import S3Bucket
from pydantic import SecretStr, ValidationError

from admin.setup import alert_block
from blocks.lakehouse import IcebergLakehouse
from lakeops.iceberg import lake, storage
from tests import moto_s3

from .flights import REGISTRY


def s3_lakehouse(tmp_path, endpoint: str = "http://127.0.0.1:9", folder: str = "warehouse") -> IcebergLakehouse:
    credentials = AwsCredentials(
        aws_access_key_id=moto_s3.ACCESS_KEY_ID,
        aws_secret_access_key=moto_s3.SECRET_ACCESS_KEY,
        region_name=moto_s3.REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )
    return IcebergLakehouse(
        catalog_uri=SecretStr(f"sqlite:///{tmp_path / 'catalog.db'}"),
        s3_bucket=S3Bucket(bucket_name=moto_s3.BUCKET, bucket_folder=folder, credentials=credentials),
        landing=str(tmp_path / "landing"),
    )


def test_s3_file_io_properties_come_from_the_nested_prefect_aws_blocks(tmp_path):
    props = s3_lakehouse(tmp_path).catalog_properties()

    assert props["warehouse"] == f"s3://{moto_s3.BUCKET}/warehouse"
    assert props["s3.endpoint"] == "http://127.0.0.1:9"
    assert props["s3.region"] == moto_s3.REGION
    assert props["s3.access-key-id"] == moto_s3.ACCESS_KEY_ID
    assert props["s3.secret-access-key"] == moto_s3.SECRET_ACCESS_KEY
    assert "s3.path-style-access" not in props  # not a pyiceberg key: path style follows from the endpoint


def test_the_s3_secret_is_a_secret_in_the_block_document(tmp_path):
    block = s3_lakehouse(tmp_path)

    shown = repr(block) + json.dumps(block.model_dump(mode="json"))

    assert moto_s3.SECRET_ACCESS_KEY not in shown
    assert "sqlite:///" not in shown  # the catalog URI may hold a database password


def test_a_lakehouse_on_moto_writes_its_tables_to_the_bucket(tmp_path):
    block = s3_lakehouse(tmp_path, moto_s3.endpoint(), folder=f"block-{tmp_path.name}")
    catalog = block.catalog()

    lake.ensure_tables(catalog, REGISTRY)

    table = catalog.load_table("bronze.flights")
    assert table.location() == f"s3://{moto_s3.BUCKET}/block-{tmp_path.name}/bronze/flights"
    assert table.io.new_input(table.metadata_location).exists()


@pytest.mark.parametrize("key", ["s3.secret-access-key", "s3.access-key-id", "credential", "token", "s3.session-token"])
def test_secrets_in_plain_properties_are_refused_naming_the_key(tmp_path, key):
    with pytest.raises(ValidationError, match=rf"properties {key} carry secrets"):
        IcebergLakehouse(
            catalog_uri=SecretStr("sqlite://"),
            warehouse="file:///w",
            landing=str(tmp_path),
            properties={key: "x"},
        )


def test_a_lakehouse_names_one_warehouse(tmp_path):
    with pytest.raises(ValidationError, match="needs a warehouse"):
        IcebergLakehouse(catalog_uri=SecretStr("sqlite://"), landing=str(tmp_path))
    with pytest.raises(ValidationError, match="is local but s3_bucket is set"):
        block = s3_lakehouse(tmp_path)
        IcebergLakehouse(**{**dict(block), "warehouse": "file:///w"})


def test_a_uri_is_printed_without_its_password():
    assert storage.redact_uri("postgresql+psycopg2://lake:hunter2@db:5432/cat") == (
        "postgresql+psycopg2://lake:***@db:5432/cat"
    )
    assert storage.redact_uri("sqlite:////x/catalog.db") == "sqlite:////x/catalog.db"


class _RestConfig(BaseHTTPRequestHandler):
    """A REST catalog's config endpoint, enough to see what pyiceberg sends when it opens the catalog."""

    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"defaults": {}, "overrides": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_rest_catalog_is_opened_with_its_token_from_the_secret_field(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _RestConfig)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        block = IcebergLakehouse(
            catalog_type="rest",
            catalog_uri=SecretStr(f"http://127.0.0.1:{server.server_port}"),
            catalog_token=SecretStr("rest-token-5f2a"),
            warehouse="analytics",
            landing=str(tmp_path),
        )
        catalog = block.catalog()
    finally:
        server.shutdown()

    assert type(catalog).__name__ == "RestCatalog"
    path, authorization = _RestConfig.seen[-1]
    assert path.startswith("/v1/config") and "warehouse=analytics" in path
    assert authorization == "Bearer rest-token-5f2a"


def test_the_alert_webhook_url_is_a_secret_of_its_block_and_still_where_it_posts():
    url = "https://hooks.example.com/services/T000/B000/secret-token-9f"
    block = alert_block(url)

    shown = repr(block) + json.dumps(block.model_dump(mode="json"))

    assert "secret-token-9f" not in shown and block.url == "{{url}}"
    assert block._build_request_args("the body", "the subject")["url"] == url
