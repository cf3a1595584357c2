"""Platform metrics on a real Prefect server with seeded history: every figure exact, and the page a user sees.

The module starts its own server (with the UI, which the session's server runs without) so that the figures are
those of the seeded runs alone. Runs are created through the API from deployments carrying versions and commit
times, with past expected start times (a Scheduled state's time), job variables, tags and parameters, and driven
through their states with `force=True` (run counts by AwaitingRetry and Running again). Prefect stamps every state
with the server's clock (StateCreate has no timestamp field), so the start and end times the runs had in the
seeded history are written into the server's SQLite database afterwards: the only thing not set through the API.

The history (NOW is Monday 2026-11-30 12:00 UTC), code versions v1 (committed 11-22 05:30), v2 (11-27 05:40) and
v3 (11-30 09:00), deployed to every deployment:

- silver.flights: windows 11-21..11-29 (10 min each), w23 retried inside its run (run count 2), w26 (v2's first
  run) failed and re-run by a person, w28 stale, w29 crossing the one-day boundary; w30 (v3, its only run) failed:
  v3 never reaches production;
- gold.daily_delays: 11-21..11-29 (5 min), w26 crashed out of memory and healed with double the memory;
- bronze.weather (an ECS pool, Fargate prices): every run failed, one attempt cancelled, the last 3 min ago;
- release-flights: v1.1 promoted 11-23 (lead 30 h 50 min), v2 promoted 11-28 12:40 and rolled back 20 min later.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import AwaitingRetry, Cancelled, Completed, Crashed, Failed, Pending, Running, Scheduled
from prefect_aws.workers import ECSWorker

from admin.receiver import Receiver, start_receiver
from admin.setup import ensure_work_pool, save_alert_block, save_lakehouse
from admin.stack import PROJECT_DIR, WORK_POOL, LocalStack, free_port
from blocks.cost_model import CostModel, PoolPrices
from lakeops.datasets.names import BURN_ALERT_EVENT, METRICS_FLOW
from lakeops.healing.oom import ATTEMPT_TAG, HEALS_TAG, ROOT_TAG
from lakeops.healing.usage import Usage
from lakeops.healing.usage import record as record_usage
from lakeops.iceberg.provenance import code_version
from lakeops.metrics import history, runs
from lakeops.release import release_log
from lakeops.release.release_log import Entry, Event
from lakeops.settings import LakeSettings

from .conftest import e2e_registry

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
COMMITS = {
    "git:v1": datetime(2026, 11, 22, 5, 30, tzinfo=UTC),
    "git:v2": datetime(2026, 11, 27, 5, 40, tzinfo=UTC),
    "git:v3": datetime(2026, 11, 30, 9, tzinfo=UTC),
}
SILVER, GOLD, WEATHER, RELEASE = "silver.flights", "gold.daily_delays", "bronze.weather", "release-flights"
FLOWS = {SILVER: "build-layer", GOLD: "build-layer", WEATHER: "ingest", RELEASE: "release"}
ECS_POOL = "fargate"
PRICES = CostModel(pools={"process": PoolPrices(cpu_hour=0.10, gb_hour=0.01), "ecs": PoolPrices()})


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    """One flow run of the history: what it was due to do, what it came to, and how long it ran."""

    key: str  # names it in the test: S6, S6', G6 ...
    deployment: str
    due: datetime
    final: str  # completed, failed, crashed, cancelled
    minutes: float
    window: str | None = None
    run_count: int = 1
    stale: bool = False
    job_variables: dict[str, Any] = field(default_factory=dict)
    heals: str | None = None  # the key of the crashed run this one re-runs
    usage: tuple[float, float, int] | None = None  # cpu seconds, peak MB, exit code

    @property
    def version(self) -> str:
        return max((v for v, c in COMMITS.items() if c <= self.due), key=lambda v: COMMITS[v])


def history_seeds() -> list[Seed]:
    seeds = []
    for day in range(21, 30):  # silver then gold, window W due the next day
        due = at(day + 1, 6) if day < 29 else at(29, 11, 55)  # w29 crosses NOW - 1 day (11-29 12:00)
        failed_first = day == 26
        seeds.append(
            Seed(
                f"S{day}",
                SILVER,
                due,
                "failed" if failed_first else "completed",
                10,
                f"2026-11-{day}",
                run_count=2 if day == 23 else 1,
                stale=day == 28,
                usage=(300, 512, 0) if day == 21 else None,
            )
        )
        if failed_first:
            seeds.append(Seed("S26'", SILVER, at(27, 7), "completed", 10, "2026-11-26"))
        gold_due = at(27, 7, 15) if failed_first else (due + timedelta(minutes=15))
        if day == 26:
            seeds.append(Seed("G26", GOLD, gold_due, "crashed", 3, "2026-11-26", usage=(30, 1024, 137)))
            seeds.append(
                Seed(
                    "G26'",
                    GOLD,
                    at(27, 7, 20),
                    "completed",
                    5,
                    "2026-11-26",
                    heals="G26",
                    job_variables={"memory": 2048},
                    usage=(120, 1500, 0),
                )
            )
        else:
            seeds.append(Seed(f"G{day}", GOLD, gold_due, "completed", 5, f"2026-11-{day}", stale=day == 28))
    seeds.append(Seed("S30", SILVER, at(30, 10), "failed", 10, "2026-11-30"))  # v3's only run
    ecs = {"cpu": 512, "memory": 1024}
    seeds += [
        Seed("H27", WEATHER, at(28, 7), "failed", 2, "2026-11-27", job_variables=ecs),
        Seed("H28", WEATHER, at(29, 7), "failed", 2, "2026-11-28", job_variables=ecs),
        Seed("H29", WEATHER, at(30, 7), "failed", 2, "2026-11-29", job_variables=ecs),
        Seed("H29'", WEATHER, at(30, 7, 30), "cancelled", 1, "2026-11-29", job_variables=ecs),
        Seed("H30", WEATHER, at(30, 11, 57), "failed", 2, "2026-11-30", job_variables=ecs),  # 3 min before NOW
        Seed("R1", RELEASE, at(23, 11), "completed", 20),
        Seed("R2", RELEASE, at(28, 12), "completed", 20),
    ]
    return sorted(seeds, key=lambda s: s.due)


@dataclass
class Seeded:
    stack: LocalStack
    settings: LakeSettings
    receiver: Receiver
    registry: Path
    usage_dir: Path
    run_ids: dict[str, UUID] = field(default_factory=dict)
    artifact_url: str = ""  # the markdown artifact's page in the UI, once the deployment ran

    def lakeops_env(self) -> dict[str, str]:
        return {"LAKEOPS_HOME": str(self.settings.home), "LAKEOPS_REGISTRY": str(self.registry)}

    def env(self) -> dict[str, str]:
        return self.stack.env(**self.lakeops_env())

    def cli(self, *args: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "admin.cli", "metrics", "--json", "--as-of", NOW.isoformat(), *args]
        done = subprocess.run(command, env=self.env(), cwd=PROJECT_DIR, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)


def _deployments(client: SyncPrefectClient) -> dict[str, UUID]:
    created = {}
    for name, flow in FLOWS.items():
        dataset = "weather" if name == WEATHER else "flights"
        created[name] = client.create_deployment(
            client.create_flow_from_name(flow),
            name,
            work_pool_name=ECS_POOL if name == WEATHER else WORK_POOL,
            job_variables={} if name in (WEATHER, RELEASE) else {"memory": 1024},
            entrypoint="flows/build_layer.py:build_layer",
        )
        client.update_deployment(created[name], _deploy(dataset, "git:v1"))
    return created


def _deploy(dataset: str, version: str) -> DeploymentUpdate:
    """What `lakeops setup` leaves on a deployment: its code version and the tag with its commit time."""
    tags = ["lakeops", f"dataset:{dataset}", runs.committed_tag(version, COMMITS[version].isoformat())]
    return DeploymentUpdate(version=version, tags=tags)


FINAL = {"completed": Completed, "failed": Failed, "crashed": Crashed, "cancelled": Cancelled}


def _run(client: SyncPrefectClient, deployment: UUID, seed: Seed, ids: dict[str, UUID]) -> UUID:
    params: dict[str, Any] = {"dataset": "flights"} if seed.window is None else {"window": seed.window}
    if seed.stale:
        params["stale"] = True
    tags = []
    if seed.heals:
        tags = [ROOT_TAG + str(ids[seed.heals]), f"{ATTEMPT_TAG}1", HEALS_TAG + str(ids[seed.heals])]
    run = client.create_flow_run_from_deployment(
        deployment,
        parameters={"params": params},
        state=Scheduled(scheduled_time=seed.due),
        tags=tags,
        job_variables=seed.job_variables or None,
    )
    states = [Pending(), Running()] + [AwaitingRetry(), Running()] * (seed.run_count - 1) + [FINAL[seed.final]()]
    for state in states:
        client.set_flow_run_state(run.id, state, force=True)
    return run.id


def _backdate(database: Path, seeds: list[Seed], ids: dict[str, UUID]) -> None:
    """The start and end times the seeded runs had (the API stamps states with the server's clock)."""

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    with sqlite3.connect(database, timeout=30) as db:
        for seed in seeds:
            started = seed.due + timedelta(minutes=1)
            ended = started + timedelta(minutes=seed.minutes)
            db.execute(
                "UPDATE flow_run SET start_time = ?, end_time = ?, state_timestamp = ? WHERE id = ?",
                (stamp(started), stamp(ended), stamp(ended), str(ids[seed.key])),
            )


def _seed(client: SyncPrefectClient, settings: LakeSettings, usage_dir: Path) -> dict[str, UUID]:
    client.create_work_pool(WorkPoolCreate(name=ECS_POOL, type="ecs", base_job_template=_ecs_template()))
    deployments = _deployments(client)
    ids: dict[str, UUID] = {}
    deployed = "git:v1"
    for seed in history_seeds():
        if seed.version != deployed:  # a redeploy: every deployment carries the new version
            deployed = seed.version
            for name, deployment in deployments.items():
                client.update_deployment(deployment, _deploy("weather" if name == WEATHER else "flights", deployed))
        ids[seed.key] = _run(client, deployments[seed.deployment], seed, ids)
        if seed.usage:
            cpu, peak, code = seed.usage
            record_usage(Usage(str(ids[seed.key]), code, cpu, peak, None, "cgroup", seed.minutes * 60), usage_dir)
    _backdate(settings.resolved_home().parent / "prefect" / "prefect.db", history_seeds(), ids)
    return ids


def _ecs_template() -> dict[str, Any]:
    """prefect-aws's ECS pool template: `cpu` in CPU units (1024 a vCPU), `memory` in MiB."""
    return ECSWorker.get_default_base_job_template()


def _release_log(settings: LakeSettings, ids: dict[str, UUID]) -> None:
    catalog = save_lakehouse(settings).catalog()
    r1, r2 = str(ids["R1"]), str(ids["R2"])
    rows = [
        ("r1", Event.STARTED, at(23, 11, 1), r1),
        ("r1", Event.COMPARED, at(23, 11, 10), r1),
        ("r1", Event.PROMOTED, at(23, 12, 20), r1),
        ("r2", Event.STARTED, at(28, 12, 1), r2),
        ("r2", Event.HELD, at(28, 12, 10), r2),
        ("r2", Event.APPROVED, at(28, 12, 35), "cli"),
        ("r2", Event.PROMOTED, at(28, 12, 40), r2),
        ("r2", Event.ROLLED_BACK, at(28, 13), "rollback-run"),
    ]
    for release_id, event, moment, run_id in rows:
        green = "v1.1" if release_id == "r1" else "v2"
        entry = Entry(release_id, "flights", event, moment, blue_version="v1", green_version=green, flow_run_id=run_id)
        release_log.record(catalog, entry)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    home = tmp_path_factory.mktemp("lakeops-metrics")
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=home)
    receiver = start_receiver()
    settings = LakeSettings(home=home / "lake", registry=e2e_registry(home))
    previous = os.environ.get("LAKEOPS_REGISTRY")
    os.environ["LAKEOPS_REGISTRY"] = str(settings.registry)
    try:
        stack.start_server(port, ui=True)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            save_lakehouse(settings)
            save_alert_block(receiver.url)
            CostModel.register_type_and_schema()
            PRICES.save("default", overwrite=True)
            ensure_work_pool()
            yield Seeded(stack, settings, receiver, settings.registry, home / "usage")
    finally:
        stack.stop()
        receiver.stop()
        if previous is None:
            os.environ.pop("LAKEOPS_REGISTRY", None)
        else:
            os.environ["LAKEOPS_REGISTRY"] = previous


def test_an_empty_server_gives_a_report_of_no_runs(seeded):
    empty = seeded.cli()
    overall = next(s for s in empty["reliability"]["scopes"] if s["scope"] == "all" and s["days"] == 28)
    assert (overall["units"], overall["success_rate"], overall["budget_left"]) == (0, None, 1.0)
    assert empty["velocity"]["changes"] == 0 and empty["cost"]["weeks"] == []


def test_seeded_history_gives_exact_figures(seeded):
    with temporary_settings({PREFECT_API_URL: seeded.stack.api_url}), get_client(sync_client=True) as client:
        seeded.run_ids.update(_seed(client, seeded.settings, seeded.usage_dir))
    _release_log(seeded.settings, seeded.run_ids)
    figures = seeded.cli()
    scopes = {(s["scope"], s["days"]): s for s in figures["reliability"]["scopes"]}
    counts = {k: (s["units"], s["succeeded"], s["first_attempt"], s["stale"]) for k, s in scopes.items()}
    assert counts[("all", 28)] == (25, 20, 17, 2)  # the cancelled attempt counts neither way
    assert counts[("all", 7)] == (20, 15, 12, 2)
    assert counts[("all", 1)] == (4, 1, 1, 0)  # w29 was due 5 min before the day began
    assert scopes[("all", 28)]["success_rate"] == 0.8 and scopes[("all", 28)]["burn_rate"] == pytest.approx(40.0)
    assert scopes[("all", 28)]["recovered"] == 3  # w23 (a retry), w26 silver (a person), w26 gold (the healer)
    assert counts[("dataset:weather", 28)] == (4, 0, 0, 0)  # every run failed
    assert scopes[("dataset:flights", 28)]["success_rate"] == pytest.approx(20 / 21)
    assert counts[("deployment:build-layer/gold.daily_delays", 28)] == (9, 9, 8, 1)  # the OOM crash, healed
    alerts = {(a["scope"], a["rule"]) for a in figures["reliability"]["burn_alerts"]}
    weather = {"all", "dataset:weather", "deployment:ingest/bronze.weather"}
    assert alerts == {(s, r) for s in weather for r in ("fast", "slow")}

    velocity = figures["velocity"]
    changes = {c["name"]: (c["lead_time_s"], c["failed"]) for c in velocity["list"]}
    assert changes == {
        "git:v1": (41 * 60, False),
        "flights@v1.1": ((30 * 60 + 50) * 60, False),
        "git:v2": (91 * 60, True),  # its first silver run failed
        "flights@v2": (31 * 3600, True),  # rolled back
        "git:v3": (None, True),  # never reached production: its only run failed
    }
    assert (velocity["changes"], velocity["in_production"], velocity["per_week"]) == (5, 4, 1.0)
    assert velocity["lead_p50_s"] == 970.5 * 60 and velocity["lead_p90_s"] == pytest.approx(1857 * 60)
    assert velocity["change_failure_rate"] == 0.5 and velocity["restore_p50_s"] == 20 * 60

    weeks = {w["week"]: w for w in figures["cost"]["weeks"] if w["scope"] == "all"}
    assert sorted(weeks) == ["2026-11-16", "2026-11-23", "2026-11-30"]
    assert weeks["2026-11-16"]["hours"] == 0.25 and weeks["2026-11-16"]["per_pipeline_hour"] == pytest.approx(0.11)
    fargate = 0.5 * 0.04048 + 1 * 0.004445  # 512 CPU units, 1024 MiB
    week = 9 * 10 / 60 * 0.11 + (7 * 5 + 3) / 60 * 0.11 + 5 / 60 * 0.12 + 2 * 20 / 60 * 0.12 + 4 / 60 * fargate
    assert weeks["2026-11-23"]["hours"] == pytest.approx(177 / 60)
    assert weeks["2026-11-23"]["requested"] == pytest.approx(week)
    assert weeks["2026-11-30"]["per_pipeline_hour"] == pytest.approx((10 / 60 * 0.11 + 5 / 60 * fargate) / 0.25)
    trend = next(t for t in figures["cost"]["trends"] if t["scope"] == "all")
    assert (trend["direction"], trend["rising_two_weeks"]) == ("down", False)
    weather_only = seeded.cli("--dataset", "weather")
    assert [s["success_rate"] for s in weather_only["reliability"]["scopes"] if s["scope"] == "all"] == [0.0] * 3


def _deploy_metrics(seeded: Seeded) -> None:
    """`prefect deploy` of platform-metrics/daily from the generated prefect.yaml (its build step asks git)."""
    env = seeded.stack.env(LAKEOPS_CODE_VERSION=code_version())
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", "daily"]
    done = subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_daily_deployment_records_history_publishes_the_report_and_alerts(seeded):
    with temporary_settings({PREFECT_API_URL: seeded.stack.api_url}):
        _deploy_metrics(seeded)
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(f"{METRICS_FLOW}/daily")
        committed = subprocess.run(
            ["git", "log", "-1", "--format=%cI"], cwd=PROJECT_DIR, capture_output=True, text=True
        )
        assert runs.committed_tag(code_version(), committed.stdout.strip()) in deployment.tags
        assert deployment.schedules[0].schedule.cron == "30 0 * * *"  # type: ignore[union-attr]
        seeded.stack.start_worker(**seeded.lakeops_env())  # stopped with the module's server
        params = {"params": {"as_of": NOW.isoformat(), "usage_dir": str(seeded.usage_dir), "backfill_days": 60}}
        first = run_deployment(f"{METRICS_FLOW}/daily", parameters=params, timeout=300)
        assert first.state is not None and first.state.is_completed(), first.state
        catalog = save_lakehouse(seeded.settings).catalog()
        kept = sorted(history.read_facts(catalog), key=lambda f: f.flow_run_id)
        daily = history.read_daily(catalog)
        second = run_deployment(f"{METRICS_FLOW}/daily", parameters=params, timeout=300)  # the same day again
        assert second.state is not None and second.state.is_completed(), second.state
    assert len(kept) == 28 and sorted(history.read_facts(catalog), key=lambda f: f.flow_run_id) == kept
    assert [(r["day"], r["scope"], r["units"]) for r in history.read_daily(catalog)] == [
        (r["day"], r["scope"], r["units"]) for r in daily
    ]
    by_key = {f.flow_run_id: f for f in kept}
    crash, healed = by_key[str(seeded.run_ids["G26"])], by_key[str(seeded.run_ids["G26'"])]
    assert (crash.peak_memory_mb, healed.requested_memory_mb, healed.unit) == (1024, 2048, "2026-11-26")
    day = {(r["day"], r["scope"]): r for r in daily}[("2026-11-27", "all")]
    # Committed that day: v2 (91 min to production) and the release of its transform (31 h to its promotion).
    assert (day["units"], day["succeeded"], day["recovered"], day["changes"]) == (2, 2, 2, 2)
    assert day["lead_p50_s"] == (91 * 60 + 31 * 3600) / 2

    subjects = {m.subject for m in seeded.receiver.messages}
    assert "[lakeops] all: error budget burning 200x (fast)" in subjects
    assert "[lakeops] dataset:weather: error budget burning 200x (slow)" in subjects
    assert _events(seeded, BURN_ALERT_EVENT) >= 6
    seeded.artifact_url = _artifact_page(seeded, first.id)


def _events(seeded: Seeded, name: str) -> int:
    with temporary_settings({PREFECT_API_URL: seeded.stack.api_url}), get_client(sync_client=True) as client:
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        body = {"filter": {"event": {"name": [name]}, "occurred": {"since": since}}, "limit": 50}
        return len(client.request("POST", "/events/filter", json=body).json()["events"])


def _artifact_page(seeded: Seeded, run_id: UUID) -> str:
    with temporary_settings({PREFECT_API_URL: seeded.stack.api_url}), get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    (markdown,) = [a for a in found if a.type == "markdown"]
    assert markdown.key == METRICS_FLOW and "| all | 25 | 25.00% | 75.00% | 80.00% |" in str(markdown.data)
    return f"{seeded.stack.ui_url}/artifacts/artifact/{markdown.id}"


def _chromium() -> str:
    """Debian's chromium, installed where missing and possible (root with apt-get); else the test is skipped."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {"capture_output": True, "timeout": 900, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], **quiet)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium: install Debian's chromium package (apt-get install chromium) to check the UI page")
    return found


def _chromium_run(binary: str, url: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            *args,
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_artifact_page_shows_the_figures_in_the_prefect_ui(seeded, tmp_path):
    assert seeded.artifact_url, "the deployment test publishes the artifact first"
    chromium = _chromium()
    deadline = time.monotonic() + 60
    while True:  # the UI renders the markdown client-side, after fetching the artifact
        page = _chromium_run(chromium, seeded.artifact_url, "--dump-dom")
        if "Platform metrics" in page or time.monotonic() > deadline:
            break
    for figure in (
        "Reliability (objective 99.50%)",
        "80.00%",
        "68.00%",
        "-3900.00%",
        "150.0 / 50.0 / 40.0",
        "1 h 31 min",
        "16 h 10 min",
        "50.00%",
        "$0.1106",
        "fast burn",
        "data:image/svg+xml;base64,",
    ):
        assert figure in page, figure
    shot = tmp_path / "platform-metrics-artifact.png"
    _chromium_run(chromium, seeded.artifact_url, f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.stat().st_size > 10_000
    print(f"screenshot of {seeded.artifact_url}: {shot}")
