"""Hop anatomy: where the server side of a hop goes, from the server's own event and run records.

Starts a throwaway local server (SQLite unless a --env says otherwise) with lakeops' setup and a worker
(LAKEOPS_WORKER: warm by default), drives N windows of the flights dataset (Bronze -> Silver -> Gold), then reads back,
for each hop (a producer run's ready event -> the consumer run its deployment trigger created):

    recv      the ready event's `received` - its `occurred` (client build + websocket connect + send)
    fire      the trigger's firing time (`prefect.automation.triggered` / `.action.triggered` occurred)
              - `received` (events queue -> triggers service -> bucket transaction)
    held      when the SLA automation (proactive, same event) held the event in its own write
              transaction - firing: negative = before the deployment trigger fired, positive = after,
              while the action may be creating the run ("-" when no other automation holds it)
    create    the consumer flow run's `created` - firing (actions queue -> in-process POST
              /deployments/{id}/create_flow_run, with the client's retries)
    exec      `prefect.automation.action.executed` received - `created` (the action's response)
    pend      the consumer's Pending state - its Scheduled state (the worker's poll)
    run       Running - Pending (the flow run's process starts, imports, pull step)
    commit    the consumer's Iceberg commit - Running
    srv       ready `received` -> consumer `created`: the server side of the hop (what the issue is about)
    prod.fin  the producer's final state timestamp - the ready event's `occurred` (when the producer's
              own final state was written relative to the hop)
    hop       Iceberg commit -> Iceberg commit (the freshness benchmark's one hop)

With PREFECT_SERVER_LOG_RETRYABLE_ERRORS on (the default here; it only logs) the server writes each
SQLite "database is locked" it answered with 503 to server.log; the requests it hit are counted per hop
(those between a hop's firing and its run's creation) and in all.

    .venv/bin/python benchmarks/hop_anatomy.py [--windows 3] [--env KEY=VALUE ...]

Each --env is set in the server process's environment only (not the worker's nor the flow runs'), e.g.
--env PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL=1. Figures are seconds.
"""

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

from admin import runs
from admin.setup import save_lakehouse, setup
from admin.stack import PROJECT_DIR, LocalStack, free_port
from declarations.flights import landing
from lakeops.datasets import registry as registry_file
from lakeops.datasets.names import READY_EVENT
from lakeops.datasets.windows import Window
from lakeops.settings import LakeSettings

FIRST_DAY = date(2013, 3, 1)
TRIGGERED = "prefect.automation.triggered"
ACTION_TRIGGERED = "prefect.automation.action.triggered"
ACTION_EXECUTED = "prefect.automation.action.executed"
ACTION_FAILED = "prefect.automation.action.failed"
DEFAULT_SERVER_ENV = {"PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true"}  # logging only: counts the 503s
COLUMNS = ("recv", "fire", "held", "create", "exec", "pend", "run", "commit", "srv", "prod.fin", "hop")


@dataclass
class Hop:
    """One hop's timestamps (UTC) from the server's records, and the commit lag."""

    label: str
    occurred: datetime
    received: datetime
    fired: datetime
    created: datetime
    executed: datetime | None
    scheduled: datetime | None
    pending: datetime | None
    running: datetime | None
    committed: datetime
    producer_final: datetime | None
    hop_s: float
    event_id: str = ""
    held: datetime | None = None  # when another automation (a proactive one) held the same event, if one did
    retries: int = 0
    action_status: object = None

    def figures(self) -> dict[str, float | None]:
        def gap(a: datetime | None, b: datetime | None) -> float | None:
            return (b - a).total_seconds() if a and b else None

        return {
            "recv": gap(self.occurred, self.received),
            "fire": gap(self.received, self.fired),
            "create": gap(self.fired, self.created),
            "exec": gap(self.created, self.executed),
            "pend": gap(self.scheduled or self.created, self.pending),
            "run": gap(self.pending, self.running),
            "commit": gap(self.running, self.committed),
            "srv": gap(self.received, self.created),
            "held": gap(self.fired, self.held),
            "prod.fin": gap(self.occurred, self.producer_final),
            "hop": self.hop_s,
        }


@contextmanager
def server_env(extra: dict[str, str]) -> Iterator[None]:
    """os.environ plus `extra` while the server starts (LocalStack.start_server copies os.environ)."""
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def drive(settings: LakeSettings, windows: int) -> list[runs.WindowTrace]:
    """As freshness_lag.drive: each day's file dropped, the producer run, the chain followed."""
    catalog = save_lakehouse(settings).catalog()
    registry = registry_file.load(settings.registry)
    flights = registry.dataset("flights")
    traces = []
    for offset in range(windows):
        day = FIRST_DAY + timedelta(days=offset)
        landing.drop_day_file(settings.resolved_landing(), day)
        producer = runs.run_producer(flights, day)
        trace = runs.follow_window(catalog, registry, flights, Window(day), producer)
        print(f"  {day}  one hop {trace.lag_s(1):5.1f}s  two hops {trace.lag_s(2):5.1f}s", flush=True)
        traces.append(trace)
    return traces


def read_events(client, **fields) -> list:  # noqa: ANN001, ANN003 - a sync client; EventFilter's fields as JSON
    since = {"occurred": {"since": (datetime.now().astimezone() - timedelta(hours=2)).isoformat()}}
    return list(client.read_events(EventFilter.model_validate({**since, **fields}), limit=50).events)


def wait_for_events(client, timeout: float = 60, **fields) -> list:  # noqa: ANN001, ANN003
    """Events are readable once the event persister flushed them (every flush interval, or per batch)."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_events(client, **fields)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def state_times(client, run: FlowRun) -> dict[str, datetime]:  # noqa: ANN001
    """The first timestamp of each state type the run went through."""
    times: dict[str, datetime] = {}
    for state in sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp):
        times.setdefault(state.type.value, state.timestamp)
    return times


def hop_of(client, trace: runs.WindowTrace, index: int) -> Hop:  # noqa: ANN001
    """The hop from trace.runs[index - 1] (producer) to trace.runs[index] (consumer)."""
    producer, consumer = trace.runs[index - 1], trace.runs[index]
    producer_id = f"prefect.flow-run.{producer.id}"
    ready = [
        e
        for e in wait_for_events(client, event={"name": [READY_EVENT]}, related={"id": [producer_id]})
        if e.resource.id == trace.tables[index - 1].resource_id
    ]
    if not ready:
        raise RuntimeError(f"no {READY_EVENT} of {producer.name} stored")
    event = min(ready, key=lambda e: e.occurred)
    about = {"related": {"id": [f"prefect.event.{event.id}"]}}
    names = [TRIGGERED, ACTION_TRIGGERED, ACTION_EXECUTED, ACTION_FAILED]
    deadline = time.monotonic() + 60
    while True:  # the action events arrive after the run exists: wait for the persister's next flush
        followers = read_events(client, event={"name": names}, **about)
        consumer_ref = f"prefect.flow-run.{consumer.id}"
        executed = [e for e in followers if e.event == ACTION_EXECUTED and any(r.id == consumer_ref for r in e.related)]
        if executed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    fired = [e.occurred for e in followers if e.event in (TRIGGERED, ACTION_TRIGGERED)]
    states = state_times(client, consumer)
    fresh = client.read_flow_run(producer.id)
    return Hop(
        label=f"{trace.window.key} {trace.tables[index - 1].name}->{trace.tables[index].name}",
        occurred=event.occurred,
        received=event.received,
        fired=min(fired) if fired else event.received,
        created=consumer.created,
        executed=executed[0].received if executed else None,
        scheduled=states.get("SCHEDULED"),
        pending=states.get("PENDING"),
        running=states.get("RUNNING"),
        committed=datetime.fromtimestamp(trace.snapshots[index].timestamp_ms / 1000, tz=UTC),
        producer_final=fresh.state.timestamp if fresh.state and fresh.state.is_final() else None,
        event_id=str(event.id),
        hop_s=trace.lag_s(index) - trace.lag_s(index - 1),
        action_status=executed[0].payload.get("status_code") if executed else None,
    )


# `HH:MM:SS.mmm | ERROR   | prefect.server - Encountered retryable exception in request:` then a traceback
RETRYABLE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| \w+\s*\| [\w.]+ - Encountered retryable exception in request")
# the first frame in an API module other than server.py (its middleware) is the endpoint
ENDPOINT = re.compile(r'File ".*?/prefect/server/api/(?!server\.py)(\w+)\.py", line \d+, in (\w+)')


def retryable_errors(log: Path) -> list[tuple[str, str]]:
    """(local time of day, the API endpoint in the traceback) of each 503 the server answered for a locked SQLite."""
    if not log.exists():
        return []
    found: list[tuple[str, str]] = []
    current: list[str] | None = None
    for line in log.read_text(errors="replace").splitlines():
        if match := RETRYABLE.match(line):
            current = [match.group(1), "?"]
            found.append((current[0], current[1]))
        elif current is not None and current[1] == "?" and (endpoint := ENDPOINT.search(line)):
            current[1] = f"{endpoint.group(1)}.{endpoint.group(2)}"
            found[-1] = (current[0], current[1])
    return found


def count_in(errors: list[tuple[str, str]], start: datetime, end: datetime) -> int:
    """The 503s of create_flow_run logged between `start` and `end` (server log times are the local time of day)."""
    lo = start.astimezone().strftime("%H:%M:%S.%f")[:12]
    hi = (end + timedelta(milliseconds=50)).astimezone().strftime("%H:%M:%S.%f")[:12]
    return sum(1 for at, endpoint in errors if lo <= at <= hi and endpoint.endswith("create_flow_run_from_deployment"))


def fmt(value: float | None) -> str:
    return f"{value:9.2f}" if value is not None else f"{'-':>9}"


def report(hops: list[Hop], errors: list[tuple[str, str]], env: dict[str, str], paused: list[str]) -> None:
    print(f"\nServer env: {' '.join(f'{k}={v}' for k, v in env.items()) or '(defaults)'}")
    if paused:
        print(f"Paused automations: {', '.join(paused)}")
    print(f"  {'hop':34}" + "".join(f"{c:>9}" for c in COLUMNS) + f"{'503s':>6}{'status':>7}")
    for hop in hops:
        figures = hop.figures()
        cells = "".join(fmt(figures[c]) for c in COLUMNS)
        print(f"  {hop.label:34}{cells}{hop.retries:6d}{str(hop.action_status):>7}")
    print(f"  {'p50':34}" + "".join(fmt(_p50([h.figures()[c] for h in hops])) for c in COLUMNS))
    endpoints: dict[str, int] = {}
    for _, endpoint in errors:
        endpoints[endpoint] = endpoints.get(endpoint, 0) + 1
    listed = ", ".join(f"{name} x{n}" for name, n in sorted(endpoints.items(), key=lambda kv: -kv[1]))
    print(f"  503s for a locked SQLite in the whole run: {len(errors)}{f' ({listed})' if listed else ''}")


def _p50(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def held_at(database: Path, hops: list[Hop]) -> None:
    """When a proactive automation held each hop's ready event (its own write transaction in the triggers
    service, right before or after the deployment trigger's). Not in the API: read from the throwaway
    server's SQLite file, read-only; nothing on PostgreSQL."""
    if not database.exists():
        return
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as conn:
        for hop in hops:
            row = conn.execute(
                "SELECT min(created) FROM automation_held_event WHERE event_id = ?", (hop.event_id,)
            ).fetchone()
            if row and row[0]:
                hop.held = datetime.fromisoformat(row[0]).replace(tzinfo=UTC)


def pause(names: list[str]) -> None:
    """Pause the named automations; the triggers service reloads automations on its 5 s periodic pass (SQLite)."""
    if not names:
        return
    with get_client(sync_client=True) as client:
        for name in names:
            found = client.read_automations_by_name(name)
            if not found:
                raise SystemExit(f"--pause {name!r}: no such automation")
            for automation in found:
                client.pause_automation(automation.id)
    print(f"  paused: {', '.join(names)}", flush=True)
    time.sleep(6)


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = dict(DEFAULT_SERVER_ENV)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env {pair!r}: expected KEY=VALUE")
        env[key] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="server environment")
    parser.add_argument("--keep", action="store_true", help="keep the server's home (logs) and print its path")
    parser.add_argument(
        "--pause",
        action="append",
        default=[],
        metavar="NAME",
        help="pause the automation of this name after setup (a diagnostic: which automation's writes collide)",
    )
    args = parser.parse_args()
    env = parse_env(args.env)
    root = Path(tempfile.mkdtemp(prefix="lakeops-hops-"))
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=root / "stack")
    settings = LakeSettings(home=root / "stack" / "lake", registry=PROJECT_DIR / "datasets.yaml")
    try:
        with server_env(env):
            stack.start_server(port, ui=False)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            setup(stack, settings)
            stack.start_worker(LAKEOPS_REGISTRY=str(settings.registry))
            pause(args.pause)
            traces = drive(settings, args.windows)
            with get_client(sync_client=True) as client:
                hops = [hop_of(client, trace, i) for trace in traces for i in range(1, len(trace.runs))]
            held_at(stack.home / "prefect" / "prefect.db", hops)
            errors = retryable_errors(stack.home / "server.log")
            for hop in hops:
                hop.retries = count_in(errors, hop.fired, hop.created)
            report(hops, errors, env, args.pause)
    finally:
        stack.stop()
        if args.keep:
            print(f"  server home kept: {stack.home}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
