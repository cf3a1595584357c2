"""The lake the unit tests run on: the embedded default, or with TEST_LAKE=s3 its warehouse on S3 (moto).

`make test` runs the suites that read and write table files (the pipeline, markers, time travel, replay,
releases with rollback, maintenance and its orphan sweep) a second time on S3. The catalog stays SQLite.
"""

import os

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from lakeops.iceberg import lake, storage
from lakeops.settings import LakeSettings

ON_S3 = os.environ.get("TEST_LAKE", "local") == "s3"
local_only = pytest.mark.skipif(ON_S3, reason="inspects the local warehouse folder itself (TEST_LAKE=s3 run)")


def properties(settings: LakeSettings) -> dict[str, str]:
    """Catalog properties of a lake in the settings' home: local warehouse, or a fresh S3 folder."""
    props = lake.embedded_properties(settings)
    if ON_S3:
        from tests import moto_s3

        location = moto_s3.location(settings.resolved_home().name)
        props["warehouse"] = location.warehouse
        props |= location.file_io_properties()
    return props


def open_catalog(settings: LakeSettings, name: str = "test") -> Catalog:
    return lake.open_catalog(name, properties(settings))


def files_under(table: Table) -> set[str]:
    """Every file under the table's location, named as the table's filesystem names it."""
    from pyarrow import fs as pafs

    filesystem, base = storage.filesystem_of(table.io, table.location())
    infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    return {info.path for info in infos if info.type == pafs.FileType.File}


def exists(table: Table, path: str) -> bool:
    return table.io.new_input(path if "://" in path or path.startswith("/") else f"s3://{path}").exists()


def named(uri: str) -> str:
    """A file URI as files_under names it."""
    return storage.fs_path(uri)
