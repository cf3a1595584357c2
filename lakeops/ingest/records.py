"""A CSV file's lines and records as a CSV reader counts them, and every fault named by column and line.

A line ends at a newline (b"\\n") and nowhere else: not at a form feed, a U+2028 or a lone carriage
return inside a value, which `str.splitlines` would split on. A record starts on the line after the
previous one ended and may span lines inside a quoted value; a fault in it is named at the line
where it starts (an unclosed quote at the line that opened it). Bytes that are not UTF-8 are named
by line and column, and a value longer than the contract allows by its column and line.
"""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lakeops.errors import MalformedBatch

csv.field_size_limit(2**31 - 1)  # values are bounded by the contract's limit, checked with their column
_UNDECODABLE = re.compile("[\udc80-\udcff]+")


def lines(content: bytes) -> list[bytes]:
    """The file's lines, each with its newline (the last one without, if the file does not end in one).

    Joined, they are the file's bytes; line N (1-based) is `lines(content)[N - 1]`.
    """
    parts = content.split(b"\n")
    kept = [part + b"\n" for part in parts[:-1]]
    return kept + ([parts[-1]] if parts[-1] else [])


@dataclass(frozen=True)
class Records:
    """A CSV file's header and data records, each data record with the line it starts on."""

    header: list[str]
    rows: list[list[str]]
    starts: list[int]


def read(source: str, content: bytes, max_value_chars: int) -> Records:
    """Every record of the file; MalformedBatch naming the line (and column) of the first fault."""
    text = content.decode("utf-8", errors="surrogateescape")
    header: list[str] | None = None
    rows: list[list[str]] = []
    starts: list[int] = []
    for start, record in _records(source, text):
        if header is None:
            header = _header(source, record)
            continue
        if not record:
            continue  # a blank line holds no row
        _check_values(source, header, record, start, max_value_chars)
        if len(record) != len(header):
            reason = f"{len(record)} fields where the header has {len(header)}"
            raise MalformedBatch(source, reason, None, start)
        rows.append(record)
        starts.append(start)
    return Records(header or [], rows, starts)


def tolerant(text: str) -> Records:
    """The records read until the first fault, those with as many fields as the header (drift observes them)."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] = []
    rows: list[list[str]] = []
    starts: list[int] = []
    ended = 0
    try:
        header = next(reader, [])
        ended = reader.line_num
        for record in reader:
            if len(record) == len(header):
                rows.append(record)
                starts.append(ended + 1)
            ended = reader.line_num
    except csv.Error:
        pass  # the rows read so far still show what each column holds
    return Records(header, rows, starts)


def _records(source: str, text: str) -> Iterator[tuple[int, list[str]]]:
    # StringIO splits on "\n" only (newline="\n"); strict mode refuses a quote in the middle of a value.
    reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
    ended = 0
    while True:
        start = ended + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise MalformedBatch(source, _csv_fault(str(exc), start, reader.line_num), None, start) from None
        ended = reader.line_num
        yield start, record


def _csv_fault(message: str, start: int, at: int) -> str:
    if "unexpected end of data" in message:
        return f"a quoted value opened on line {start} is never closed (the file ends inside it, at line {at})"
    if "new-line character seen in unquoted field" in message:
        return "a carriage return inside an unquoted value: lines must end in \\n or \\r\\n"
    span = f"lines {start}-{at}" if at > start else f"line {start}"
    return f"not a readable CSV record ({span}): {message}"


def _header(source: str, record: list[str]) -> list[str]:
    for index, name in enumerate(record):
        if bad := _UNDECODABLE.search(name):
            reason = f"header field {index + 1} holds bytes that are not UTF-8: {_hex(bad)}"
            raise MalformedBatch(source, reason, None, 1)
    seen: dict[str, int] = {}
    for index, name in enumerate(record):
        if name in seen:
            reason = f"column {name!r} appears twice in the header (fields {seen[name] + 1} and {index + 1})"
            raise MalformedBatch(source, reason, name, 1)
        seen[name] = index
    return record


def _check_values(source: str, header: list[str], record: list[str], line: int, max_chars: int) -> None:
    for index, value in enumerate(record):
        column = header[index] if index < len(header) else None
        if bad := _UNDECODABLE.search(value):
            raise MalformedBatch(source, f"bytes that are not UTF-8: {_hex(bad)}", column or f"#{index + 1}", line)
        if len(value) > max_chars:
            reason = f"a value of {len(value):,} characters: longer than the contract's limit of {max_chars:,}"
            raise MalformedBatch(source, reason, column or f"#{index + 1}", line)


def _hex(match: re.Match[str]) -> str:
    return " ".join(f"0x{ord(c) - 0xDC00:02x}" for c in match.group()[:8])
