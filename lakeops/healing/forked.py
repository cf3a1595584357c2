"""A child process started by a fork server: what a slot supervises when its interpreter is forked, not spawned.

The warm worker's fork server (`workers.zygote`) has imported everything once and forks a copy of
itself per slot. A slot asks for one over the server's Unix socket, passing the three file
descriptors the copy takes as its stdin, stdout and stderr; the server answers with the copy's pid,
and later with its exit, in `subprocess` terms (a negative code for a signal). The copy is the
server's child, not the slot's, so `ForkedChild` stands in for `subprocess.Popen` where the slot and
the memory supervisor use one: `pid`, `stdin`, `poll()`, `wait()`, `send_signal()`, `terminate()`.

The line protocol: the slot sends `fork` with the descriptors; the server answers `pid N` or
`refused WHY`, then `exit CODE` when the copy ends. A slot that goes away (its socket closed) has its
copy killed by the server; a server that goes away takes its copies with it (they die with their
parent), and a slot waiting on one reports it killed.
"""

import contextlib
import os
import select
import signal
import socket

FORK_SERVER_ENV = "LAKEOPS_FORK_SERVER"  # the fork server's socket; unset: the slot spawns its interpreter


class ForkRefused(OSError):
    """The fork server is not there, or would not fork (it says why)."""


class ForkedChild:
    """A process forked for us by the server at `path`, its stdout and stderr ours (a `subprocess.Popen` stand-in)."""

    def __init__(self, path: str, stdout: int = 1, stderr: int = 2) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buffer = b""
        self.returncode: int | None = None
        read, write = os.pipe()
        try:
            self._socket.connect(path)
            socket.send_fds(self._socket, [b"fork\n"], [read, stdout, stderr])
            reply = self._line().split()
        except OSError as error:
            self._socket.close()
            os.close(write)
            raise ForkRefused(f"fork server at {path}: {error}") from error
        finally:
            os.close(read)
        if len(reply) != 2 or reply[0] != b"pid":
            self._socket.close()
            os.close(write)
            raise ForkRefused(
                f"fork server at {path} refused: {b' '.join(reply).decode(errors='replace') or 'no answer'}"
            )
        self.pid = int(reply[1])
        self.stdin = os.fdopen(write, "wb", buffering=0)

    def poll(self) -> int | None:
        if self.returncode is None and (b"\n" in self._buffer or select.select([self._socket], [], [], 0)[0]):
            self._read_exit()
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self._read_exit()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _read_exit(self) -> None:
        reply = self._line().split()
        if len(reply) == 2 and reply[0] == b"exit":
            self.returncode = int(reply[1])
        else:  # the server is gone, and with it the copy (or it is about to be): make sure, and say killed
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.returncode = -signal.SIGKILL
        self._socket.close()

    def _line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self._socket.recv(256)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line
