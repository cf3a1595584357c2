"""Relaying a warm process's output to the worker's own, minus the line that says it is ready."""

from collections.abc import Callable
from typing import TextIO

import anyio.abc
from anyio.streams.text import TextReceiveStream

from workers.protocol import READY_LINE


async def relay_stdout(stream: anyio.abc.ByteReceiveStream, sink: TextIO, on_ready: Callable[[], None]) -> None:
    """Relay `stream` to `sink`; the first line starting with READY_LINE is not relayed but calls `on_ready`."""
    pending, ready = "", False
    async for text in TextReceiveStream(stream, errors="replace"):
        if ready:
            write(sink, text)
            continue
        pending += text
        while not ready and "\n" in pending:
            line, _, pending = pending.partition("\n")
            if line.startswith(READY_LINE):
                ready = True
                on_ready()
            else:
                write(sink, line + "\n")
        if ready and pending:
            write(sink, pending)
            pending = ""
    if pending:
        write(sink, pending)


async def relay(stream: anyio.abc.ByteReceiveStream, sink: TextIO) -> None:
    async for text in TextReceiveStream(stream, errors="replace"):
        write(sink, text)


def write(sink: TextIO, text: str) -> None:
    sink.write(text)
    sink.flush()
