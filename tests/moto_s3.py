"""S3 on loopback for the tests: moto's server, started once per process, with one bucket for every lake.

Each lake gets its own folder in the bucket. The keys are moto's (any non-empty pair signs), and they
are the known secrets the secrets test scans for.
"""

import logging
import threading
import uuid

from lakeops.iceberg.storage import S3Location

BUCKET = "lakeops-test"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIALAKEOPSTESTKEY01"
SECRET_ACCESS_KEY = "lakeops-test-secret-2b1f0c9d8e7a"

_lock = threading.Lock()
_endpoint: list[str] = []


def endpoint() -> str:
    """The URL of this process's moto server (started on a free loopback port on first use)."""
    with _lock:
        if not _endpoint:
            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            boto3.client(
                "s3",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
            ).create_bucket(Bucket=BUCKET)
            _endpoint.append(url)
        return _endpoint[0]


def location(name: str = "lake", url: str | None = None) -> S3Location:
    """A fresh folder of the test bucket, with the keys and the endpoint to reach it."""
    return S3Location(
        bucket=BUCKET,
        prefix=f"{name}-{uuid.uuid4().hex[:12]}",
        region=REGION,
        endpoint=url or endpoint(),
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
