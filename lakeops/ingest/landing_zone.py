"""The landing zone is a boundary: only regular files whose real path lies inside it are read.

A symbolic link, a directory, a named pipe, a socket or a device is refused with an error that
says which, before a byte of it is read; so is a file outside the zone (through `..` or a linked
folder) and a file larger than the contract's limit. The file is opened without following a link
and checked on the open descriptor, so it cannot be swapped between the check and the read.
"""

import os
import stat
from pathlib import Path

from lakeops.errors import MalformedBatch

DEFAULT_MAX_BYTES = 256 * 2**20

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


def read_file(path: Path, landing: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file inside `landing` (default: the file's own folder); MalformedBatch otherwise."""
    zone = Path(os.path.realpath(landing if landing is not None else path.parent))
    where = str(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise MalformedBatch(where, "file not found in the landing zone") from None
    except OSError as exc:
        raise MalformedBatch(where, f"cannot be read: {exc.strerror}") from None
    _refuse_kind(where, info.st_mode, path)
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(zone):
        raise MalformedBatch(where, f"lies outside the landing zone {zone.name!r} (its real path leaves the zone)")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise MalformedBatch(where, f"cannot be opened: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as file:
        opened = os.fstat(file.fileno())
        _refuse_kind(where, opened.st_mode, path)  # replaced since the check: judge what was opened
        if opened.st_size > max_bytes:
            raise MalformedBatch(where, f"{opened.st_size:,} bytes: larger than the contract's limit of {max_bytes:,}")
        content = file.read(max_bytes + 1)
    if len(content) > max_bytes:  # grew while it was read
        raise MalformedBatch(where, f"more than the contract's limit of {max_bytes:,} bytes")
    return content


def _refuse_kind(where: str, mode: int, path: Path) -> None:
    for is_kind, kind in _KINDS:
        if is_kind(mode):
            detail = f" to {os.readlink(path)!r}" if kind == "a symbolic link" else ""
            raise MalformedBatch(where, f"{kind}{detail}, not a regular file: only regular files are read")
    if not stat.S_ISREG(mode):
        raise MalformedBatch(where, "not a regular file: only regular files are read")
