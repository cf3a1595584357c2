"""A stand-in for the load balancer in front of the API servers: a small TCP round-robin proxy.

Teams put NGINX, HAProxy or a cloud load balancer in front of their Prefect API servers; this machine has
none, so the production stack runs this instead. It is a test double, not a product:

- one listening socket; each client connection is piped whole to one backend (so a websocket stays on the
  server that accepted it), chosen round-robin among the backends that passed their last health check;
- a health check every `--check-every` seconds: `GET /api/health` (unauthenticated on a Prefect server),
  healthy on HTTP 200; a backend that refuses a connection is marked down at once and the next one is tried;
- a client connection open on a backend that dies is closed, as a real balancer would: the Prefect client
  retries the request on a fresh connection, which goes to a live server.

No TLS, no HTTP parsing, no header rewriting, no connection draining or retries of a request in flight.
Run: `python -m admin.balancer --listen 127.0.0.1:4200 --backend 127.0.0.1:4201 --backend 127.0.0.1:4202`.
"""

import argparse
import asyncio
import contextlib
import logging
import signal

log = logging.getLogger("lakeops.balancer")
BUFFER = 64 * 1024


class Balancer:
    def __init__(self, backends: list[tuple[str, int]], check_every: float = 1.0) -> None:
        self.backends = backends
        self.healthy = dict.fromkeys(backends, True)
        self.check_every = check_every
        self.turn = 0
        self.connections: set[asyncio.Task[None]] = set()

    def candidates(self) -> list[tuple[str, int]]:
        """Every backend, the healthy ones first, starting with the next one's turn (round-robin)."""
        start = self.turn % len(self.backends)
        self.turn += 1
        ordered = self.backends[start:] + self.backends[:start]
        return [b for b in ordered if self.healthy[b]] + [b for b in ordered if not self.healthy[b]]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        task.add_done_callback(self.connections.discard)
        for backend in self.candidates():
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*backend), timeout=2)
            except (OSError, TimeoutError):
                self.mark(backend, False)
                continue
            try:
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            except asyncio.CancelledError:  # the balancer is stopping: drop the connection
                writer.close()
                up_writer.close()
            return
        log.warning("no backend accepted a connection")
        writer.close()

    def mark(self, backend: tuple[str, int], healthy: bool) -> None:
        if self.healthy[backend] != healthy:
            log.warning("backend %s:%s is %s", *backend, "up" if healthy else "down")
        self.healthy[backend] = healthy

    async def check(self, backend: tuple[str, int]) -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*backend), timeout=1)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(f"GET /api/health HTTP/1.1\r\nHost: {backend[0]}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), timeout=2)
            return status.split(b" ")[1:2] == [b"200"]
        except (OSError, TimeoutError, IndexError):
            return False
        finally:
            writer.close()

    async def check_forever(self) -> None:
        while True:
            results = await asyncio.gather(*(self.check(b) for b in self.backends))
            for backend, healthy in zip(self.backends, results, strict=True):
                self.mark(backend, healthy)
            await asyncio.sleep(self.check_every)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until either side closes; then close the writer (which ends the other direction too)."""
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def serve(listen: tuple[str, int], backends: list[tuple[str, int]], check_every: float) -> None:
    balancer = Balancer(backends, check_every)
    server = await asyncio.start_server(balancer.handle, *listen, reuse_address=True)
    checks = asyncio.create_task(balancer.check_forever())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.warning("listening on %s:%s for %s", *listen, ", ".join(f"{h}:{p}" for h, p in backends))
    await stop.wait()
    server.close()  # no new connections; then end the open ones (a websocket would stay open for ever)
    checks.cancel()
    for task in list(balancer.connections):
        task.cancel()
    await asyncio.gather(*balancer.connections, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=address, required=True, help="host:port to accept clients on")
    parser.add_argument("--backend", type=address, action="append", required=True, help="host:port of a server")
    parser.add_argument("--check-every", type=float, default=1.0, help="seconds between health checks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args.listen, args.backend, args.check_every))


if __name__ == "__main__":
    main()
