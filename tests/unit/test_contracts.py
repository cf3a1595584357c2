"""lakeops.contracts: readiness contracts, their clock arithmetic, parsing, and the repo's config files."""

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim

from lakeops.datasets.windows import Window
from lakeops.readiness import contracts
from lakeops.readiness.contracts import ReadinessContract

from .sla_helpers import CONTRACT

PROJECT = Path(__file__).resolve().parents[2]
WINDOW = Window(date(2024, 5, 1))

ENTRY = {
    "dataset": "bronze.flights",
    "producer": "ingest-bronze-flights/lakeops",
    "consumer": "build-silver-flights/lakeops",
    "cadence": "daily",
    "expected_at": "06:00",
    "buffer_seconds": 1800,
    "max_fallback_age_days": 2,
    "give_up_after_hours": 72,
    "owner": "flights-data-team",
    "alert_block": "lakeops-alerts",
}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, second, tzinfo=UTC)


def write_contracts(path: Path, *entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"contracts": list(entries)}))
    return path


# --- the contract's clock ---------------------------------------------------------------------


def test_expected_time_is_expected_at_on_the_day_after_the_window_in_utc():
    expected = CONTRACT.expected_time(WINDOW)

    assert expected == at(2, 6)
    assert expected.utcoffset() == timedelta(0)


def test_expected_time_crosses_month_and_year_ends():
    late = replace(CONTRACT, expected_at=time(23, 45))

    assert late.expected_time(Window(date(2024, 12, 31))) == datetime(2025, 1, 1, 23, 45, tzinfo=UTC)
    assert late.expected_time(Window(date(2024, 2, 29))) == datetime(2024, 3, 1, 23, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [at(2, 0), at(2, 6), at(2, 23, 59, 59), datetime(2024, 5, 2, 1, 30, tzinfo=UTC).astimezone()],
    ids=["midnight", "expected time", "end of day", "same instant in local time"],
)
def test_the_window_due_on_a_day_is_yesterday(moment):
    assert CONTRACT.window_due_at(moment) == WINDOW


def test_window_due_at_uses_the_utc_day_not_the_local_one():
    # 23:30 on May 1st in New York is 03:30 on May 2nd in UTC: yesterday is May 1st, not April 30th.
    moment = datetime(2024, 5, 1, 23, 30, tzinfo=ZoneInfo("America/New_York"))

    assert CONTRACT.window_due_at(moment) == WINDOW


def test_last_due_before_todays_expected_time_is_the_day_before_yesterday():
    assert CONTRACT.last_due(at(2, 5, 59, 59)) == Window(date(2024, 4, 30))


@pytest.mark.parametrize("moment", [at(2, 6), at(2, 6, 0, 1), at(2, 23, 59)], ids=["at", "just after", "late"])
def test_last_due_from_todays_expected_time_on_is_yesterday(moment):
    assert CONTRACT.last_due(moment) == WINDOW


def test_last_due_expected_time_has_always_passed():
    for hour in range(24):
        now = at(10, hour, 17)
        due = CONTRACT.last_due(now)
        assert CONTRACT.expected_time(due) <= now
        assert CONTRACT.expected_time(Window(due.day + timedelta(days=1))) > now


@pytest.mark.parametrize(
    ("expected_at", "cron"),
    [(time(6, 0), "0 6 * * *"), (time(23, 45), "45 23 * * *"), (time(0, 5), "5 0 * * *")],
)
def test_cron(expected_at, cron):
    assert replace(CONTRACT, expected_at=expected_at).cron() == cron


@pytest.mark.parametrize("expected_at", [time(6, 0), time(23, 45), time(0, 5)])
def test_the_cron_fires_at_each_windows_expected_time_and_opens_that_window(expected_at):
    """A schedule run at its scheduled time must open the window whose expected time that is."""
    contract = replace(CONTRACT, expected_at=expected_at)
    fires = CronSim(contract.cron(), at(1, 0) - timedelta(seconds=1))

    for offset in range(3):
        window = Window(date(2024, 4, 30) + timedelta(days=offset))
        fired = next(fires)
        assert fired == contract.expected_time(window)
        assert contract.window_due_at(fired) == window


@pytest.mark.parametrize(
    ("candidate", "usable"),
    [
        (date(2024, 4, 30), True),  # 1 day old
        (date(2024, 4, 29), True),  # exactly max_fallback_age
        (date(2024, 4, 28), False),  # one day too old
        (date(2024, 5, 1), False),  # the window itself is no fallback
        (date(2024, 5, 2), False),  # never from the future
    ],
)
def test_usable_fallback(candidate, usable):
    assert CONTRACT.usable_fallback(WINDOW, candidate) is usable


def test_usable_fallback_with_a_fractional_max_age_rounds_down_to_whole_days():
    contract = replace(CONTRACT, max_fallback_age=timedelta(days=1.5))

    assert contract.usable_fallback(WINDOW, date(2024, 4, 30))
    assert not contract.usable_fallback(WINDOW, date(2024, 4, 29))


def test_block_name_has_no_dots_or_underscores():
    assert replace(CONTRACT, dataset="gold.daily_delays").block_name == "gold-daily-delays"


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("cadence", ["hourly", "weekly", "Daily"])
def test_only_the_daily_cadence_exists(cadence):
    with pytest.raises(ValueError, match=r"bronze\.flights.*daily.*" + cadence):
        replace(CONTRACT, cadence=cadence)


@pytest.mark.parametrize("buffer", [timedelta(0), timedelta(seconds=9.999), timedelta(seconds=-60)])
def test_a_buffer_under_ten_seconds_is_rejected(buffer):
    with pytest.raises(ValueError, match=r"bronze\.flights.*buffer.*10 s"):
        replace(CONTRACT, buffer=buffer)


def test_a_buffer_of_exactly_ten_seconds_is_accepted():
    assert replace(CONTRACT, buffer=timedelta(seconds=10)).buffer == timedelta(seconds=10)


# --- parse, load, find ------------------------------------------------------------------------


def test_parse_reads_every_field():
    assert contracts.parse(ENTRY) == CONTRACT


def test_parse_defaults():
    entry = {k: v for k, v in ENTRY.items() if k not in ("give_up_after_hours", "alert_block", "cadence")}

    parsed = contracts.parse(entry)

    assert parsed.give_up_after == timedelta(hours=72)
    assert parsed.alert_block == "custom-webhook/lakeops-alerts"
    assert parsed.cadence == "daily"


def test_parse_converts_units():
    parsed = contracts.parse(
        {
            **ENTRY,
            "expected_at": "07:15:30",
            "buffer_seconds": "90.5",
            "max_fallback_age_days": 0.5,
            "give_up_after_hours": 1.5,
        }
    )

    assert parsed.expected_at == time(7, 15, 30)
    assert parsed.buffer == timedelta(seconds=90.5)
    assert parsed.max_fallback_age == timedelta(hours=12)
    assert parsed.give_up_after == timedelta(minutes=90)


@pytest.mark.parametrize(
    "field", ["dataset", "producer", "consumer", "expected_at", "buffer_seconds", "max_fallback_age_days", "owner"]
)
def test_parse_names_the_dataset_and_a_missing_field(field):
    entry = {k: v for k, v in ENTRY.items() if k != field}

    with pytest.raises(ValueError) as caught:
        contracts.parse(entry)

    message = str(caught.value)
    assert field in message
    assert "missing" in message
    if field != "dataset":
        assert "bronze.flights" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expected_at", "25:00"),
        ("buffer_seconds", "half an hour"),
        ("give_up_after_hours", None),
    ],
)
def test_parse_names_the_dataset_and_a_bad_field(field, value):
    """The docstring promises 'ValueError naming the dataset and the field' for a bad value too."""
    with pytest.raises(ValueError) as caught:
        contracts.parse({**ENTRY, field: value})

    assert "bronze.flights" in str(caught.value)
    assert field in str(caught.value)


def test_parse_rejects_a_short_buffer_naming_the_dataset():
    with pytest.raises(ValueError, match=r"contract bronze\.flights: buffer"):
        contracts.parse({**ENTRY, "buffer_seconds": 5})


def test_an_unquoted_expected_time_is_read_as_written_or_rejected(tmp_path):
    """YAML 1.1 reads an unquoted 16:40 as the base-60 integer 1000; it must not become 10:00."""
    path = tmp_path / "contracts.yaml"
    text = yaml.safe_dump({"contracts": [ENTRY]}).replace("expected_at: 06:00", "expected_at: 16:40")
    text = text.replace("expected_at: '06:00'", "expected_at: 16:40")
    assert "expected_at: 16:40" in text
    path.write_text(text)

    try:
        loaded = contracts.load(path)
    except ValueError as error:
        assert "expected_at" in str(error) or "16:40" in str(error)
    else:
        assert loaded[0].expected_at == time(16, 40), f"16:40 was read as {loaded[0].expected_at}"


def test_load_reads_every_contract(tmp_path):
    other = {**ENTRY, "dataset": "silver.flights", "expected_at": "07:00", "producer": "build-silver-flights/lakeops"}
    path = write_contracts(tmp_path / "contracts.yaml", ENTRY, other)

    loaded = contracts.load(path)

    assert [c.dataset for c in loaded] == ["bronze.flights", "silver.flights"]
    assert loaded[0] == CONTRACT
    assert loaded[1].expected_at == time(7, 0)


@pytest.mark.parametrize("text", ["", "contracts: []\n", "# nothing yet\n"])
def test_load_of_an_empty_file_is_no_contracts(tmp_path, text):
    path = tmp_path / "contracts.yaml"
    path.write_text(text)

    assert contracts.load(path) == []


def test_load_rejects_two_contracts_for_one_dataset(tmp_path):
    path = write_contracts(tmp_path / "contracts.yaml", ENTRY, {**ENTRY, "expected_at": "09:00"})

    with pytest.raises(ValueError, match=r"bronze\.flights"):
        contracts.load(path)


def test_load_reports_the_bad_entry(tmp_path):
    broken = {k: v for k, v in ENTRY.items() if k != "owner"} | {"dataset": "silver.flights"}
    path = write_contracts(tmp_path / "contracts.yaml", ENTRY, broken)

    with pytest.raises(ValueError, match=r"silver\.flights.*owner"):
        contracts.load(path)


def test_find():
    other = replace(CONTRACT, dataset="silver.flights")

    assert contracts.find([CONTRACT, other], "silver.flights") is other
    assert contracts.find([CONTRACT, other], "bronze.flights") is CONTRACT
    assert contracts.find([CONTRACT, other], "gold.daily_delays") is None
    assert contracts.find([], "bronze.flights") is None


# --- the repo's config ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_contracts() -> list[ReadinessContract]:
    return contracts.load(PROJECT / "contracts.yaml")


@pytest.fixture(scope="module")
def deployments() -> list[dict]:
    return yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"]


def test_the_repos_contracts_load(repo_contracts):
    bronze = contracts.find(repo_contracts, "bronze.flights")

    assert bronze is not None
    assert bronze.expected_at == time(6, 0)
    assert bronze.buffer == timedelta(seconds=1800)
    assert bronze.max_fallback_age == timedelta(days=2)
    assert bronze.give_up_after == timedelta(hours=72)


def test_every_contract_has_a_window_opening_schedule_matching_it(repo_contracts, deployments):
    openers = [d for d in deployments if d.get("entrypoint") == "flows/sla_open_window.py:open_window"]
    assert openers, "prefect.yaml has no sla_open_window deployment"
    schedules = [s for d in openers for s in d.get("schedules") or []]

    for contract in repo_contracts:
        matching = [
            s for s in schedules if (s.get("parameters") or {}).get("params", {}).get("dataset") == contract.dataset
        ]
        assert len(matching) == 1, f"{contract.dataset}: {len(matching)} opening schedules"
        schedule = matching[0]
        assert schedule["cron"] == contract.cron(), contract.dataset
        assert schedule["timezone"] == "UTC", contract.dataset
        assert schedule.get("active", True) is True, contract.dataset


def test_the_missed_deadline_handler_is_deployed(deployments):
    handlers = [d for d in deployments if d.get("entrypoint") == "flows/sla_deadline_missed.py:deadline_missed"]

    assert len(handlers) == 1
    assert not handlers[0].get("schedules"), "the handler is started by the automation, not a clock"
