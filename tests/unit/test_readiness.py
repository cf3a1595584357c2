"""lakeops.readiness: the readiness signal and where its marker files live."""

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lakeops.readiness.ready import ReadySignal, marker_paths

SIGNAL = ReadySignal(
    dataset="silver.flights",
    snapshot_id=6_276_331_655_825_089_302,
    window="2013-01-02",
    row_count=943,
    schema_fingerprint="2c98d36db1c2cb5f",
    code_version="git:0123456789ab",
    stale=False,
    committed_at=datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC),
)


@pytest.mark.parametrize("signal", [SIGNAL, replace(SIGNAL, stale=True, row_count=0)])
def test_json_round_trip(signal):
    assert ReadySignal.from_json(signal.to_json()) == signal


def test_json_is_a_flat_payload_consumers_can_template():
    body = json.loads(SIGNAL.to_json())

    assert body["snapshot_id"] == 6_276_331_655_825_089_302
    assert body["window"] == "2013-01-02"
    assert datetime.fromisoformat(body["committed_at"]) == SIGNAL.committed_at


@pytest.mark.parametrize(
    ("dataset", "resource_id"),
    [
        ("bronze.flights", "lakeops.dataset.bronze.flights"),
        ("silver.flights", "lakeops.dataset.silver.flights"),
        ("gold.daily_delays", "lakeops.dataset.gold.daily_delays"),
    ],
)
def test_resource_id_names_the_dataset(dataset, resource_id):
    assert replace(SIGNAL, dataset=dataset).resource_id == resource_id


def test_event_name():
    assert SIGNAL.event == "lakeops.dataset.ready"


@pytest.mark.parametrize("location", ["file:///lake/silver/flights", "file:///lake/silver/flights/"])
def test_marker_paths_sit_beside_the_table(location):
    window_path, latest_path = marker_paths(location, "2013-01-02")

    assert window_path == "file:///lake/silver/flights/_ready/2013-01-02.json"
    assert latest_path == "file:///lake/silver/flights/_READY"
