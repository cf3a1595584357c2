"""Secrets stay secret: after a pipeline, a quarantined file's alert, a release and the platform metrics ran
on the production profile, none of its known secret values appears where lakeops writes or prints.

Scanned: flow-run logs, events, artifacts and flow runs on the server; snapshot summaries, table properties
and marker files in the lake on S3; the alerts the webhook received; the CLI's output with the profile's
settings. Each place must also hold text naming the run's own window, so an empty scan cannot pass.
"""

from datetime import date

import pytest
from prefect.deployments import run_deployment

from admin import releases
from declarations.flights import landing
from lakeops.datasets.names import METRICS, METRICS_FLOW, deployment
from tests.e2e.production import secret_scan
from tests.e2e.production.conftest import SECRETS, Production

pytestmark = pytest.mark.e2e
DAY, BAD_DAY = date(2013, 7, 1), date(2013, 7, 2)
CLI = (
    ["status"],
    ["history", "silver.flights", "--limit", "5"],
    ["show", "gold.daily_delays", "--limit", "3"],
    ["sla", "list"],
    ["release", "list", "flights"],
    ["metrics", "--days", "1"],
    ["show", "gold.no_such_table"],  # an error's message
)


def test_no_secret_of_the_profile_appears_in_logs_events_artifacts_lake_alerts_or_cli(prod: Production) -> None:
    since = secret_scan.utcnow()
    landing.drop_day_file(prod.landing, DAY)
    prod.follow(DAY, prod.run_producer(DAY))
    rows = landing.day_rows(BAD_DAY)
    rows["dep_delay"] = rows["dep_delay"].astype("object")
    rows.loc[2, "dep_delay"] = "late-ish"
    landing.drop_day_file(prod.landing, BAD_DAY, rows.to_csv(index=False))
    assert prod.run_producer(BAD_DAY).state.is_failed()
    prod.receiver.wait_for(BAD_DAY.isoformat(), timeout=60)
    release = run_deployment(
        releases.release_deployment("flights"),
        parameters={"params": {"dataset": "flights", "green_version": "v1.1", "start": DAY.isoformat()}},
        timeout=300,
        poll_interval=0.5,
    )
    assert release.state.name == "Promoted", release.state.message
    metrics = run_deployment(
        deployment(METRICS_FLOW, METRICS), parameters={"params": {}}, timeout=300, poll_interval=0.5
    )
    assert metrics.state.is_completed(), metrics.state.message

    places = {
        **secret_scan.server_texts(since),
        **secret_scan.lake_texts(prod.catalog),
        **secret_scan.alert_texts(prod.receiver),
        **secret_scan.cli_texts(prod.profile, CLI),
    }

    assert secret_scan.leaks(SECRETS, places) == []
    exits = [text.split("\n", 1)[0] for text in places["CLI output"]]
    assert [line.endswith("(exit 0)") for line in exits] == [True] * (len(CLI) - 1) + [False], exits
    for place, texts in places.items():  # every place was read, and holds what this test's runs wrote there
        canary = {"alerts": BAD_DAY.isoformat(), "table properties": "v1.1"}.get(place, DAY.isoformat())
        assert any(canary in text for text in texts), (place, canary)
