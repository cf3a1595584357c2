"""Where the warehouse's files live, as pyiceberg FileIO properties: a local folder or an S3 bucket.

The edge (the lakehouse block) holds the credentials as secrets; it hands them here only to build the
properties a catalog is opened with, never to anything that is logged or stored. pyiceberg's PyArrow
FileIO addresses S3 by path when an endpoint is set and virtual addressing is not forced (there is no
`s3.path-style-access` key), which is what S3-compatible servers (moto, MinIO) need.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from pyarrow import fs as pafs
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import PyArrowFileIO

# The property keys pyiceberg reads (pyiceberg.io), spelled here so the core depends on their meaning.
S3_ENDPOINT = "s3.endpoint"
S3_ACCESS_KEY_ID = "s3.access-key-id"
S3_SECRET_ACCESS_KEY = "s3.secret-access-key"
S3_SESSION_TOKEN = "s3.session-token"
S3_REGION = "s3.region"
S3_FORCE_VIRTUAL_ADDRESSING = "s3.force-virtual-addressing"
# Keys whose values are secrets: never accepted in a plain (unencrypted) properties mapping.
SECRET_KEY_PARTS = ("secret", "password", "token", "credential", "access-key-id", "session-token")


@dataclass(frozen=True)
class S3Location:
    """An S3 warehouse: its bucket, the folder in it, and how to reach and sign for it."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint: str | None = None  # an S3-compatible server's URL; None for AWS itself
    access_key_id: str | None = None  # None: the default AWS chain (instance role, env, profile)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise ValueError(f"S3 bucket name {self.bucket!r} is not a bucket name")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("an S3 access key id needs its secret access key, and the other way round")

    @property
    def warehouse(self) -> str:
        folder = self.prefix.strip("/")
        return f"s3://{self.bucket}/{folder}" if folder else f"s3://{self.bucket}"

    def file_io_properties(self) -> dict[str, str]:
        """pyiceberg's `s3.*` properties for this location (only those that are set)."""
        values = {
            S3_ENDPOINT: self.endpoint,
            S3_REGION: self.region,
            S3_ACCESS_KEY_ID: self.access_key_id,
            S3_SECRET_ACCESS_KEY: self.secret_access_key,
            S3_SESSION_TOKEN: self.session_token,
        }
        return {key: value for key, value in values.items() if value}


def parse_s3_warehouse(warehouse: str) -> tuple[str, str]:
    """The bucket and folder of an `s3://bucket/folder` warehouse; ValueError naming it otherwise."""
    parsed = urlparse(warehouse)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ValueError(f"warehouse {warehouse!r} is not an s3://bucket/folder location")
    return parsed.netloc, parsed.path.strip("/")


def secret_keys(properties: Mapping[str, str]) -> list[str]:
    """The keys of `properties` that carry secrets (which belong in secret fields, not plain properties)."""
    return sorted(key for key in properties if any(part in key.lower() for part in SECRET_KEY_PARTS))


def filesystem_of(io: FileIO, location: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of `location`, opened the way the table's own FileIO opens it.

    On S3 that is the FileIO's configured filesystem (endpoint, region, keys), so what maintenance lists
    and deletes is what the catalog reads and writes. Local paths are not percent-decoded, as pyiceberg
    does not decode them either.
    """
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), parsed.path
    if isinstance(io, PyArrowFileIO):
        return io.fs_by_scheme(parsed.scheme, parsed.netloc), f"{parsed.netloc}{parsed.path}"
    found: tuple[pafs.FileSystem, str] = pafs.FileSystem.from_uri(location)
    return found


def fs_path(uri: str) -> str:
    """A file URI as the filesystem of `filesystem_of` names it: the path, or `bucket/key` on S3."""
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme in ("", "file") else f"{parsed.netloc}{parsed.path}"


def redact_uri(uri: str) -> str:
    """A URI fit to print: a password in it is replaced by `***`."""
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()
