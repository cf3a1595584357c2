"""lakeops.contracts: readiness contracts, their clock arithmetic, the terms' validation, their derivation from
the registry, the registry file's overrides, and the repo's config files."""

import sys
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim

from lakeops.datasets import registry
from lakeops.datasets.declaration import Readiness
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.readiness import contracts
from lakeops.readiness.contracts import ReadinessContract

from .flights import FLIGHTS, REGISTRY
from .sla_helpers import CONTRACT, with_terms

PROJECT = Path(__file__).resolve().parents[2]
WINDOW = Window(date(2024, 5, 1))
UNCONTRACTED = Registry((replace(FLIGHTS, readiness=None),))  # the flights dataset, declaring no contract


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, second, tzinfo=UTC)


# --- the contract's clock ---------------------------------------------------------------------


def test_expected_time_is_expected_at_on_the_day_after_the_window_in_utc():
    expected = CONTRACT.expected_time(WINDOW)

    assert expected == at(2, 6)
    assert expected.utcoffset() == timedelta(0)


def test_expected_time_crosses_month_and_year_ends():
    late = with_terms(expected_at=time(23, 45))

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
    assert with_terms(expected_at=expected_at).cron() == cron


@pytest.mark.parametrize("expected_at", [time(6, 0), time(23, 45), time(0, 5)])
def test_the_cron_fires_at_each_windows_expected_time_and_opens_that_window(expected_at):
    """A schedule run at its scheduled time must open the window whose expected time that is."""
    contract = with_terms(expected_at=expected_at)
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
    contract = with_terms(max_fallback_age=timedelta(days=1.5))

    assert contract.usable_fallback(WINDOW, date(2024, 4, 30))
    assert not contract.usable_fallback(WINDOW, date(2024, 4, 29))


def test_block_name_has_no_dots_or_underscores():
    assert with_terms(dataset="gold.daily_delays").block_name == "gold-daily-delays"


# --- the terms: defaults and validation (Readiness) -------------------------------------------


def test_the_terms_defaults():
    terms = Readiness(expected_at=time(6, 0))

    assert terms.buffer == timedelta(minutes=30)
    assert terms.max_fallback_age == timedelta(days=2)
    assert terms.give_up_after == timedelta(hours=72)
    assert terms.alert_block == "custom-webhook/lakeops-alerts"


def test_the_terms_are_frozen():
    with pytest.raises(ValueError, match="frozen"):
        CONTRACT.buffer = timedelta(minutes=5)


@pytest.mark.parametrize("cadence", ["hourly", "weekly", "Daily", "daily"])
def test_a_contract_takes_no_cadence_it_is_daily(cadence):
    """The cadence field is gone: every contract is daily, and any cadence given is refused, not ignored."""
    with pytest.raises(ValueError, match=r"cadence\n.*Extra inputs are not permitted"):
        with_terms(cadence=cadence)
    with pytest.raises(ValueError, match=r"cadence"):
        Readiness(expected_at=time(6, 0), cadence=cadence)


@pytest.mark.parametrize("buffer", [timedelta(0), timedelta(seconds=9.999), timedelta(seconds=-60), 5])
def test_a_buffer_under_ten_seconds_is_rejected(buffer):
    with pytest.raises(ValueError, match=r"buffer\n.*greater than or equal to 10 seconds"):
        Readiness(expected_at=time(6, 0), buffer=buffer)
    with pytest.raises(ValueError, match=r"buffer\n.*greater than or equal to 10 seconds"):
        with_terms(buffer=buffer)


def test_a_buffer_of_exactly_ten_seconds_is_accepted():
    assert with_terms(buffer=timedelta(seconds=10)).buffer == timedelta(seconds=10)
    assert Readiness(expected_at=time(6, 0), buffer=10).buffer == timedelta(seconds=10)


@pytest.mark.parametrize("field", ["max_fallback_age", "give_up_after"])
@pytest.mark.parametrize("age", [timedelta(seconds=-1), timedelta(days=-2), -3600])
def test_negative_ages_are_rejected(field, age):
    with pytest.raises(ValueError, match=rf"{field}\n.*greater than or equal to 0"):
        Readiness(expected_at=time(6, 0), **{field: age})


@pytest.mark.parametrize("field", ["max_fallback_age", "give_up_after"])
def test_an_age_of_zero_is_accepted(field):
    assert getattr(Readiness(expected_at=time(6, 0), **{field: 0}), field) == timedelta(0)


@pytest.mark.parametrize("block", ["", "ab", None, 7])
def test_a_bad_alert_block_is_rejected(block):
    with pytest.raises(ValueError, match="alert_block"):
        Readiness(expected_at=time(6, 0), alert_block=block)


def test_the_terms_read_the_units_a_registry_file_gives():
    """Times of day as text, ages in seconds or as ISO 8601 durations."""
    terms = Readiness(expected_at="07:15:30", buffer=90.5, max_fallback_age=43200, give_up_after="PT1H30M")

    assert terms.expected_at == time(7, 15, 30)
    assert terms.buffer == timedelta(seconds=90.5)
    assert terms.max_fallback_age == timedelta(hours=12)
    assert terms.give_up_after == timedelta(minutes=90)


@pytest.mark.parametrize("field", ["dataset", "producer", "consumer", "expected_at", "owner"])
def test_a_contract_missing_a_field_names_it(field):
    fields = {k: v for k, v in CONTRACT.model_dump().items() if k != field}

    with pytest.raises(ValueError) as caught:
        ReadinessContract.model_validate(fields)

    message = str(caught.value)
    assert field in message
    assert "missing" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("expected_at", "25:00"), ("expected_at", 24 * 60), ("buffer", "half an hour"), ("give_up_after", None)],
)
def test_a_bad_value_names_its_field(field, value):
    with pytest.raises(ValueError) as caught:
        with_terms(**{field: value})

    assert field in str(caught.value)


@pytest.mark.parametrize(("text", "expected"), [("16:40", time(16, 40)), ("6:00", time(6, 0)), ("23:59", time(23, 59))])
def test_an_unquoted_expected_time_is_read_as_written(text, expected):
    """YAML 1.1 reads an unquoted 16:40 as the base-60 integer 1000; it must not become 10:00 (or 1000 s)."""
    loaded = yaml.safe_load(f"expected_at: {text}\n")
    assert type(loaded["expected_at"]) is int  # what YAML hands over

    assert Readiness.model_validate(loaded).expected_at == expected


def test_an_unquoted_time_past_midnight_is_rejected():
    loaded = yaml.safe_load("expected_at: 24:00\n")

    with pytest.raises(ValueError, match=r"expected_at\n.*not a time of day"):
        Readiness.model_validate(loaded)


# --- overrides: Registry.with_readiness ---------------------------------------------------------


def test_an_override_changes_only_the_fields_it_names():
    overridden = REGISTRY.with_readiness({"flights": {"buffer": 900, "alert_block": "custom-webhook/ops"}})

    terms = overridden.dataset("flights").readiness
    assert (terms.buffer, terms.alert_block) == (timedelta(minutes=15), "custom-webhook/ops")
    assert (terms.expected_at, terms.max_fallback_age, terms.give_up_after) == (
        FLIGHTS.readiness.expected_at,
        FLIGHTS.readiness.max_fallback_age,
        FLIGHTS.readiness.give_up_after,
    )
    assert REGISTRY.dataset("flights").readiness.buffer == timedelta(minutes=30)  # the declaration is untouched
    assert overridden.dataset("flights").layers == FLIGHTS.layers


def test_no_override_leaves_the_registry_as_declared():
    assert REGISTRY.with_readiness({}) == REGISTRY
    assert REGISTRY.with_readiness({"flights": {}}) == REGISTRY


def test_an_override_of_an_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match=r"unknown datasets: \['bookings'\]"):
        REGISTRY.with_readiness({"bookings": {"buffer": 900}})


def test_an_override_of_a_dataset_without_a_contract_is_refused():
    with pytest.raises(ValueError, match="dataset flights declares no readiness contract to override"):
        UNCONTRACTED.with_readiness({"flights": {"buffer": 900}})


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"buffer": 5}, "buffer"),
        ({"buffer_seconds": 900}, "buffer_seconds"),  # the old contracts.yaml name is not a field
        ({"expected_at": "25:00"}, "expected_at"),
        ({"max_fallback_age": -1}, "max_fallback_age"),
        ({"alert_block": ""}, "alert_block"),
    ],
)
def test_an_invalid_override_is_refused_naming_the_dataset_and_the_field(fields, named):
    with pytest.raises(ValueError, match=rf"readiness override of dataset flights: (.|\n)*{named}"):
        REGISTRY.with_readiness({"flights": fields})


# --- the contract derived from the registry: contracts.of -------------------------------------


def test_of_derives_the_contract_of_a_datasets_bronze_signal():
    contract = contracts.of(REGISTRY, FLIGHTS)

    assert (contract.dataset, contract.producer, contract.consumer, contract.owner) == (
        "bronze.flights",
        "ingest/bronze.flights",
        "build-layer/silver.flights",
        "flights-data-team",
    )
    assert contract.block_name == "bronze-flights"
    assert Readiness.model_validate(contract.model_dump(include=set(Readiness.model_fields))) == FLIGHTS.readiness
    assert (contract.expected_at, contract.buffer, contract.max_fallback_age, contract.give_up_after) == (
        time(6, 0),
        timedelta(minutes=30),
        timedelta(days=2),
        timedelta(hours=72),
    )
    assert contract.alert_block == "custom-webhook/lakeops-alerts"


def test_of_reads_the_overridden_terms():
    overridden = REGISTRY.with_readiness({"flights": {"alert_block": "lakeops-alerts"}})

    assert contracts.of(overridden, overridden.dataset("flights")) == CONTRACT


def test_of_a_dataset_without_a_contract_is_refused():
    with pytest.raises(ValueError, match="dataset flights declares no readiness contract"):
        contracts.of(UNCONTRACTED, UNCONTRACTED.dataset("flights"))


def test_all_of_lists_every_declared_contract():
    assert contracts.all_of(REGISTRY) == [contracts.of(REGISTRY, FLIGHTS)]
    assert contracts.all_of(UNCONTRACTED) == []


def test_find():
    other = with_terms(dataset="silver.flights")

    assert contracts.find([CONTRACT, other], "silver.flights") is other
    assert contracts.find([CONTRACT, other], "bronze.flights") is CONTRACT
    assert contracts.find([CONTRACT, other], "gold.daily_delays") is None
    assert contracts.find([], "bronze.flights") is None


# --- the registry file: registry.load -----------------------------------------------------------


@pytest.fixture
def team_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for declaration modules; what load adds to sys.path and sys.modules is undone after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    folder = tmp_path / "teams"
    folder.mkdir()
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("lk_team_"):
            del sys.modules[name]


def module(folder: Path, body: str) -> str:
    """Write a module of a unique name into `folder`; return its name."""
    name = f"lk_team_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(body)
    return name


def registry_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_load_reads_the_modules_from_its_paths_and_applies_the_readiness_overrides(tmp_path, team_folder):
    flights = module(team_folder, "from declarations.flights import DATASET\n")
    path = registry_file(
        tmp_path / "datasets.yaml",
        f"paths: [teams]\ndatasets:\n  - {flights}\nreadiness:\n  flights:\n    buffer: 900\n    expected_at: 16:40\n",
    )

    loaded = registry.load(path)

    assert [d.name for d in loaded.datasets] == ["flights"]
    assert loaded.dataset("flights").layers == FLIGHTS.layers
    contract = contracts.of(loaded, loaded.dataset("flights"))
    assert (contract.buffer, contract.expected_at) == (timedelta(minutes=15), time(16, 40))
    assert contract.max_fallback_age == FLIGHTS.readiness.max_fallback_age
    assert str(team_folder) in sys.path


@pytest.mark.parametrize("text", ["", "datasets: []\n", "# nothing yet\n", "datasets: []\nreadiness: {}\n"])
def test_a_registry_file_with_no_dataset_has_no_contract(tmp_path, text):
    loaded = registry.load(registry_file(tmp_path / "datasets.yaml", text))

    assert loaded.datasets == () and contracts.all_of(loaded) == []


def test_load_refuses_a_module_without_a_dataset(tmp_path, team_folder):
    empty = module(team_folder, "TEAM = 'bookings'\n")
    path = registry_file(tmp_path / "datasets.yaml", f"paths: [teams]\ndatasets: [declarations.flights, {empty}]\n")

    with pytest.raises(ValueError, match=rf"module {empty} has no DATASET = Dataset"):
        registry.load(path)


def test_load_refuses_two_declarations_of_one_dataset(tmp_path, team_folder):
    again = module(team_folder, "from declarations.flights import DATASET\n")
    path = registry_file(tmp_path / "datasets.yaml", f"paths: [teams]\ndatasets: [declarations.flights, {again}]\n")

    with pytest.raises(ValueError, match=r"dataset names repeat in the registry: \['flights', 'flights'\]"):
        registry.load(path)


def test_load_refuses_a_bad_override_naming_the_dataset(tmp_path):
    path = registry_file(
        tmp_path / "datasets.yaml", "datasets: [declarations.flights]\nreadiness:\n  flights:\n    buffer: 5\n"
    )

    with pytest.raises(ValueError, match=r"readiness override of dataset flights: (.|\n)*buffer"):
        registry.load(path)


def test_load_refuses_an_override_of_a_dataset_not_listed(tmp_path):
    path = registry_file(tmp_path / "datasets.yaml", "datasets: [declarations.flights]\nreadiness: {weather: {}}\n")

    with pytest.raises(ValueError, match=r"unknown datasets: \['weather'\]"):
        registry.load(path)


def test_load_of_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        registry.load(tmp_path / "nowhere.yaml")


# --- the repo's config ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_contracts() -> list[ReadinessContract]:
    return contracts.all_of(registry.load(PROJECT / "datasets.yaml"))


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
