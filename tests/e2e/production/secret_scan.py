"""Where a secret could surface once a pipeline ran: read every such place and look for known values.

The places: flow-run logs, events, artifacts, flow-run parameters and state messages on the server;
snapshot summaries, table properties and marker files in the lake; the alerts the webhook received;
what the CLI prints. Each place's text is collected whole, so a test can also check it read something.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterTimestamp
from prefect.events.filters import EventFilter, EventOccurredFilter
from pyarrow import fs as pafs
from pyiceberg.catalog import Catalog

from admin.receiver import Receiver
from admin.stack import PROJECT_DIR
from lakeops.iceberg import storage

PAGE = 200


def server_texts(since: datetime) -> dict[str, list[str]]:
    """Logs, events, artifacts and flow runs (parameters, state messages) the server holds since `since`."""
    with get_client(sync_client=True) as client:
        logs: list[str] = []
        while batch := client.read_logs(
            LogFilter(timestamp=LogFilterTimestamp(after_=since)), limit=PAGE, offset=len(logs)
        ):
            logs += [log.message for log in batch]
        page = client.read_events(EventFilter(occurred=EventOccurredFilter(since=since)), limit=50)
        events = [e.model_dump_json() for e in page.events]
        while page.next_page:
            page = client.read_events_page(page.next_page)
            events += [e.model_dump_json() for e in page.events]
        artifacts = [json.dumps([a.key, a.description, a.data], default=str) for a in client.read_artifacts()]
        flow_runs = [
            json.dumps([r.name, r.parameters, r.state.message if r.state else None, r.job_variables], default=str)
            for r in client.read_flow_runs(limit=PAGE)
        ]
    return {"flow-run logs": logs, "events": events, "artifacts": artifacts, "flow runs": flow_runs}


def lake_texts(catalog: Catalog) -> dict[str, list[str]]:
    """Every table's snapshot summaries and properties, and every marker file beside the tables."""
    summaries, properties, marker_files = [], [], []
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            properties.append(json.dumps(table.properties))
            summaries += [json.dumps(s.summary.model_dump(mode="json") if s.summary else {}) for s in table.snapshots()]
            filesystem, base = storage.filesystem_of(table.io, table.location())
            for info in filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
                if info.type == pafs.FileType.File and ("/_ready/" in info.path or info.path.endswith("/_READY")):
                    with filesystem.open_input_stream(info.path) as stream:
                        marker_files.append(stream.read().decode())
    return {"snapshot summaries": summaries, "table properties": properties, "marker files": marker_files}


def alert_texts(receiver: Receiver) -> dict[str, list[str]]:
    return {"alerts": [json.dumps([r.subject, r.body]) for r in receiver.messages]}


def cli_texts(env: dict[str, str], commands: Iterable[list[str]]) -> dict[str, list[str]]:
    """What `lakeops <command>` prints (stdout and stderr) with the profile's environment."""
    out = []
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "admin.cli", *args],
            env={**os.environ, **env},
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        out.append(f"$ lakeops {' '.join(args)} (exit {done.returncode})\n{done.stdout}{done.stderr}")
    return {"CLI output": out}


def leaks(secrets: dict[str, str], places: dict[str, list[str]]) -> list[str]:
    """Each place where a secret's value appears, with a little of the text around it."""
    found = []
    for place, texts in places.items():
        for text in texts:
            for name, value in secrets.items():
                if value and (at := text.find(value)) >= 0:
                    found.append(f"{name} in {place}: ...{text[max(0, at - 60) : at + len(value) + 20]}...")
    return found


def utcnow() -> datetime:
    return datetime.now(UTC)
