"""The Prefect server as teams run it, on one machine: PostgreSQL, two API servers, the services, Redis, auth.

- the database on PostgreSQL (`postgresql+asyncpg`), migrated once by `prefect server database upgrade -y`
  before any server starts (the servers run with PREFECT_API_DATABASE_MIGRATE_ON_START=false, so two of
  them never race to migrate);
- N API servers, each `prefect server start --no-services` on its own port: the REST API, the websockets and
  nothing else; they publish what they receive (events, logs) to Redis;
- one `prefect server services start` process: the loop services and the event consumers (triggers,
  actions, the event persister, proactive triggers, the scheduler, ...), reading from Redis;
- Redis through prefect-redis for the messaging broker and cache, causal ordering and concurrency leases,
  and for Docket (the background task queue the services coordinate through): one Redis db for the stack;
- basic auth: PREFECT_SERVER_API_AUTH_STRING on the server processes, PREFECT_API_AUTH_STRING on clients;
- one URL in front of the API servers (admin/balancer.py, a stand-in for a team's load balancer), which
  clients, workers and flow runs use as PREFECT_API_URL.

`production_stack()` creates a fresh PostgreSQL database and claims an empty Redis db, starts the whole
stack, and drops both again when it stops; `ProductionStack` is a LocalStack, so setup(), workers and the
demo's helpers work on it unchanged.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

from admin.stack import PROJECT_DIR, LocalStack, free_port, reachable

# An admin connection to PostgreSQL (it creates and drops databases) and Redis; the development machines' by default.
POSTGRES_URL = os.environ.get("LAKEOPS_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LAKEOPS_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_CLAIM_KEY = "lakeops:production-stack"  # set in the Redis db a stack claimed, while it runs


def unreachable(url: str, timeout: float = 1.0) -> str | None:
    """Why nothing answers at the host and port of `url` (a TCP connect), or None when something does."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or {"redis": 6379}.get(parts.scheme, 5432)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{parts.scheme} at {host}:{port} is not reachable ({exc})"


def create_database(admin_url: str, prefix: str) -> str:
    """A new empty PostgreSQL database; its name. `admin_url` is a libpq URL with the right to create one."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    _admin_sql(admin_url, f'CREATE DATABASE "{name}"')
    return name


def drop_database(admin_url: str, name: str) -> None:
    _admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(admin_url: str, name: str, driver: str) -> str:
    """`admin_url` pointed at database `name`, with a SQLAlchemy driver (asyncpg, psycopg2)."""
    parts = urlsplit(admin_url)
    return parts._replace(scheme=f"postgresql+{driver}", path=f"/{name}").geturl()


def _admin_sql(admin_url: str, statement: str) -> None:
    import psycopg2  # type: ignore[import-untyped]  # pyiceberg[sql-postgres]'s driver

    connection = psycopg2.connect(admin_url, connect_timeout=5)
    try:
        connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def claim_redis_db(url: str) -> int:
    """The number of an empty Redis db (1-15; 0 is left to others), marked as this stack's until released.

    A db claimed by a process of this machine that is gone (a killed test session) is flushed and reused.
    """
    me = f"{socket.gethostname()}:{os.getpid()}"
    for number in range(1, 16):
        client = redis.Redis.from_url(url, db=number, socket_timeout=5)
        try:
            if _abandoned(client.get(REDIS_CLAIM_KEY)):
                client.flushdb()
            if client.dbsize() == 0 and client.set(REDIS_CLAIM_KEY, me, nx=True) and client.dbsize() == 1:
                return number
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis db at {url} (1-15)")


def _abandoned(claim: bytes | None) -> bool:
    host, _, pid = (claim or b"").decode().rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_redis_db(url: str, number: int) -> None:
    """Flush the db this stack claimed: its streams, dedupe keys, leases, Docket queues and the claim."""
    client = redis.Redis.from_url(url, db=number, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


@dataclass
class ServerSettings:
    """What every server process of the stack shares (clients need only the balancer's URL and the auth)."""

    database_url: str  # postgresql+asyncpg://...
    redis_url: str  # redis://host:port
    redis_db: int
    auth_string: str  # user:password

    def environment(self) -> dict[str, str]:
        at = urlsplit(self.redis_url)
        return {
            "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
            "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
            "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
            "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
            "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
            "PREFECT_REDIS_MESSAGING_HOST": at.hostname or "127.0.0.1",
            "PREFECT_REDIS_MESSAGING_PORT": str(at.port or 6379),
            "PREFECT_REDIS_MESSAGING_DB": str(self.redis_db),
            # prefect-redis's publisher holds up to 5 events for up to 10 s per websocket (/api/events/in): events
            # reached Redis ~10 s late, and a killed API server lost those it held. Publish each at once.
            "PREFECT_REDIS_MESSAGING_PUBLISHER_BATCH_SIZE": "1",
            "PREFECT_SERVER_DOCKET_URL": f"{self.redis_url.rstrip('/')}/{self.redis_db}",
            "PREFECT_SERVER_API_AUTH_STRING": self.auth_string,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }


@dataclass
class ProductionStack(LocalStack):
    """API servers, the services process and the balancer (api_url is the balancer's), all started by this stack."""

    server: ServerSettings | None = None
    api_ports: list[int] = field(default_factory=list)
    servers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)  # by index into api_ports
    services: subprocess.Popen[bytes] | None = None
    balancer: subprocess.Popen[bytes] | None = None

    @property
    def settings(self) -> ServerSettings:
        assert self.server is not None, "a ProductionStack needs its ServerSettings"
        return self.server

    def env(self, **extra: str) -> dict[str, str]:
        """A client's environment: the balancer's URL and the auth string (LocalStack's, plus the auth)."""
        return super().env(PREFECT_API_AUTH_STRING=self.settings.auth_string, **extra)

    def client_settings(self) -> dict[Any, str]:
        """For prefect.settings.temporary_settings: this process as a client of the stack."""
        return {PREFECT_API_URL: self.api_url, PREFECT_API_AUTH_STRING: self.settings.auth_string}

    def server_env(self, **extra: str) -> dict[str, str]:
        env = {**self.env(), "PREFECT_HOME": str(self.home / "prefect"), **self.settings.environment(), **extra}
        env.pop("PREFECT_API_URL")
        env.pop("PREFECT_API_AUTH_STRING")
        return env

    def server_url(self, index: int) -> str:
        """The API URL of one API server, bypassing the balancer."""
        return f"http://127.0.0.1:{self.api_ports[index]}/api"

    def start(self, api_servers: int = 2, port: int | None = None, ui: bool = False, timeout: float = 180) -> None:
        """Migrate the database, then start the API servers, the services and the balancer; wait until all are up."""
        (self.home / "prefect").mkdir(parents=True, exist_ok=True)
        migrate = [sys.executable, "-m", "prefect", "--no-prompt", "server", "database", "upgrade", "-y"]
        result = subprocess.run(migrate, env=self.server_env(), cwd=PROJECT_DIR, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"prefect server database upgrade failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        self.api_ports = [free_port() for _ in range(api_servers)]
        for index in range(api_servers):
            self.start_api_server(index, ui=ui, wait=False)
        self.start_services()
        listen = port or free_port()
        backends = [arg for p in self.api_ports for arg in ("--backend", f"127.0.0.1:{p}")]
        self.balancer = self.spawn(
            [sys.executable, "-m", "admin.balancer", "--listen", f"127.0.0.1:{listen}", *backends],
            self.env(),
            self.home / "balancer.log",
        )
        self.api_url = f"http://127.0.0.1:{listen}/api"
        for index in range(api_servers):
            self._wait(self.server_url(index), self.servers[index], f"server-{index}.log", timeout)
        self._wait(self.api_url, self.balancer, "balancer.log", timeout)
        self.wait_for_services(timeout)

    def start_api_server(self, index: int, ui: bool = False, wait: bool = True) -> subprocess.Popen[bytes]:
        """`prefect server start --no-services` on the index-th API port (again after a kill: the same port)."""
        port = str(self.api_ports[index])
        env = self.server_env(PREFECT_UI_ENABLED=str(ui).lower(), PREFECT_SERVER_API_PORT=port)
        if index:  # Two servers registering the block types at once collide (uq_block_schema__checksum_version).
            env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] = "false"
        server = [sys.executable, "-m", "prefect", "server", "start"]
        cmd = [*server, "--host", "127.0.0.1", "--port", port, "--no-services"]
        self.servers[index] = self.spawn(cmd, env, self.home / f"server-{index}.log")
        if wait:
            self._wait(self.server_url(index), self.servers[index], f"server-{index}.log", 180)
        return self.servers[index]

    def stop(self) -> None:
        super().stop()
        self.servers.clear()
        self.services = self.balancer = None

    def kill_api_server(self, index: int) -> None:
        """SIGKILL one API server's process group, as a crashed machine would; the balancer skips it."""
        self.kill(self.servers.pop(index))

    def start_services(self) -> None:
        cmd = [sys.executable, "-m", "prefect", "server", "services", "start"]
        self.services = self.spawn(cmd, self.server_env(), self.home / "services.log")

    def wait_for_services(self, timeout: float = 180) -> None:
        """Until the services process has subscribed to the events stream in Redis (its consumer groups exist)."""
        client = redis.Redis.from_url(self.settings.redis_url, db=self.settings.redis_db, socket_timeout=5)
        deadline = time.monotonic() + timeout
        try:
            while not _has_consumer_groups(client, "events"):
                if (self.services and self.services.poll() is not None) or time.monotonic() > deadline:
                    raise RuntimeError(f"the Prefect services did not start; see {self.home / 'services.log'}")
                time.sleep(0.5)
        finally:
            client.close()

    def _wait(self, url: str, proc: subprocess.Popen[bytes], log: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not reachable(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer; see {self.home / log}")
            time.sleep(0.5)


def _has_consumer_groups(client: redis.Redis, stream: str) -> bool:
    try:
        return bool(client.xinfo_groups(stream))
    except redis.ResponseError:  # no such stream yet
        return False


@contextmanager
def production_stack(
    home: Path,
    api_servers: int = 2,
    postgres_url: str = POSTGRES_URL,
    redis_url: str = REDIS_URL,
    auth_string: str | None = None,
    port: int | None = None,
) -> Iterator[ProductionStack]:
    """A whole stack on a fresh database and Redis db, both dropped when it stops (processes first)."""
    name = create_database(postgres_url, "lakeops_prefect")
    redis_db: int | None = None
    stack: ProductionStack | None = None
    try:
        redis_db = claim_redis_db(redis_url)
        server = ServerSettings(
            database_url=database_url(postgres_url, name, "asyncpg"),
            redis_url=redis_url,
            redis_db=redis_db,
            auth_string=auth_string or f"lakeops:{secrets.token_urlsafe(16)}",
        )
        stack = ProductionStack(api_url="", home=home, server=server)
        stack.start(api_servers, port=port)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        if redis_db is not None:
            release_redis_db(redis_url, redis_db)
        drop_database(postgres_url, name)
