"""`python -m workers.zygote SOCKET`: import what flow runs need once, then fork a warm interpreter per slot.

Warming an interpreter costs about 10 s of a core (Prefect, pandas, pyarrow, pyiceberg,
great_expectations and the flow modules); a window's producer, Silver and Gold are three runs, so on
a small machine spawned interpreters cannot keep up with windows landing every few seconds. The fork
server pays that once: it warms up, then forks a copy of itself for each slot that asks
(`lakeops.healing.forked`), in milliseconds and sharing its memory copy-on-write. Each copy is then
exactly a warm interpreter (`workers.interpreter`): it says ready, waits for its run, runs it, exits.

Forking is safe only in a process with one thread (a lock held by another thread at the fork stays
held for ever in the copy). The server starts none: OpenBLAS and Arrow's jemalloc would each start
one while importing, so it asks them not to (`OPENBLAS_NUM_THREADS=1`,
`JE_ARROW_MALLOC_CONF=background_thread:false`; a run's pandas and pyarrow start their own pools as
usual). It counts its threads before every fork and refuses, with the count, if there is more than
one; the slot then spawns an interpreter of its own instead. Its control is stdin: at end of input
it stops taking requests and exits once its last copy has ended, still reporting each exit.
"""

import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
from pathlib import Path

SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


class ForkServer:
    """Forks a copy per request on a Unix socket; reports each copy's exit on the socket that asked for it."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.path = path
        self.children: dict[int, socket.socket] = {}  # pid -> the slot's socket
        self.asking: set[socket.socket] = set()
        self.selector = selectors.DefaultSelector()
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_write, False)
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # (the wakeup fd does the work)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wakeup_read, selectors.EVENT_READ, "reap")
        self.selector.register(0, selectors.EVENT_READ, "control")

    def serve(self) -> list[int] | None:
        """Serve until told to stop and every copy ended (returns None); in a copy, return its three descriptors."""
        stopping = False
        while not (stopping and not self.children):
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    connection, _ = self.listener.accept()
                    self.asking.add(connection)
                    self.selector.register(connection, selectors.EVENT_READ, "request")
                elif key.data == "request":
                    assert isinstance(key.fileobj, socket.socket)
                    descriptors = self._request(key.fileobj)
                    if descriptors is not None:
                        return descriptors
                elif key.data == "reap":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_read, 512)
                elif key.data == "control" and not os.read(0, 512):
                    stopping = True
                    self._stop_listening()
            self._reap()
        return None

    def _request(self, connection: socket.socket) -> list[int] | None:
        try:
            message, descriptors, _, _ = socket.recv_fds(connection, 64, 3)
        except OSError:
            message, descriptors = b"", []
        if connection in self.children.values():  # a slot whose copy runs went away: so does the copy
            self._forget(connection, kill=True)
            return None
        if message != b"fork\n" or len(descriptors) != 3:
            for descriptor in descriptors:
                os.close(descriptor)
            self._answer(connection, b"refused bad request\n")
            self._close(connection)
            return None
        if (count := threads()) != 1:
            for descriptor in descriptors:
                os.close(descriptor)
            self._answer(connection, f"refused {count} threads in the fork server\n".encode())
            self._close(connection)
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._become_copy()
            return descriptors
        for descriptor in descriptors:
            os.close(descriptor)
        self.asking.discard(connection)
        self.children[pid] = connection
        self._answer(connection, f"pid {pid}\n".encode())
        return None

    def _become_copy(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        for connection in [self.listener, *self.asking, *self.children.values()]:
            connection.close()
        os.close(self.wakeup_read)
        os.close(self.wakeup_write)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is not None:
                self._answer(connection, f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                self._close(connection)

    def _forget(self, connection: socket.socket, kill: bool) -> None:
        for pid, asked in list(self.children.items()):
            if asked is connection and kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._close(connection)

    def _answer(self, connection: socket.socket, line: bytes) -> None:
        with contextlib.suppress(OSError):
            connection.sendall(line)

    def _close(self, connection: socket.socket) -> None:
        self.asking.discard(connection)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(connection)
        connection.close()

    def _stop_listening(self) -> None:
        self.selector.unregister(self.listener)
        self.selector.unregister(0)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m workers.zygote SOCKET", file=sys.stderr)
        return 2
    os.environ.update(SINGLE_THREADED)  # before anything imports numpy or pyarrow
    from workers import interpreter
    from workers.protocol import READY_LINE

    priority = interpreter.lower_priority()
    seconds = interpreter.warm_up(interpreter.packages())
    interpreter.restore_priority(priority)  # the copies start at the worker's priority
    if (count := threads()) != 1:
        print(f"lakeops-warm: the fork server has {count} threads after warming up; it will not fork", file=sys.stderr)
        return 3
    gc.freeze()  # the copies' collections leave what was imported alone, so its pages stay shared
    server = ForkServer(args[0])
    print(f"{READY_LINE} in {seconds:.1f} s (fork server)", flush=True)
    descriptors = server.serve()
    if descriptors is None:
        return 0
    for target, descriptor in enumerate(descriptors):  # the copy: stdin, stdout and stderr are its slot's
        os.dup2(descriptor, target)
        os.close(descriptor)
    from lakeops.healing.memlimit import die_with_parent

    die_with_parent()  # a copy dies with the server (whose slot then reports it killed)
    return interpreter.serve_one(None, 0.0)


if __name__ == "__main__":
    raise SystemExit(main())
