"""lakeops.provenance: what made a commit, written to and read back from a snapshot summary."""

import pytest
from pyiceberg.table.snapshots import Operation, Summary

from lakeops.iceberg import provenance
from lakeops.iceberg.provenance import Provenance

FULL = Provenance(
    code_version="git:0123456789ab",
    flow_run_id="run-1",
    window="2013-01-02",
    batch_id="2013-01-02-abcdef012345",
    inputs={"bronze.flights": 1234567890123456789, "silver.flights": 42},
    stale=True,
    transform_version="v1",
)
MINIMAL = Provenance("lakeops==0.1.0", "", "2013-01-02", "")


@pytest.mark.parametrize("made", [FULL, MINIMAL], ids=["every field", "required fields"])
def test_properties_round_trip(made):
    assert Provenance.from_properties(made.to_properties()) == made


@pytest.mark.parametrize("made", [FULL, MINIMAL], ids=["every field", "required fields"])
def test_properties_are_strings_under_the_lakeops_prefix(made):
    props = made.to_properties()

    assert all(isinstance(v, str) for v in props.values())
    assert all(k.startswith("lakeops.") for k in props)


def test_inputs_are_named_by_table():
    props = FULL.to_properties()

    assert props["lakeops.input.bronze.flights"] == "1234567890123456789"
    assert props["lakeops.window"] == "2013-01-02"
    assert props["lakeops.stale"] == "true"


def test_unrelated_properties_do_not_leak_into_provenance():
    props = {**MINIMAL.to_properties(), "added-records": "3", "total-records": "9"}

    assert Provenance.from_properties(props) == MINIMAL


@pytest.mark.parametrize(
    "summary",
    [
        {},
        {"added-records": "842", "total-records": "842"},
        # what lake.provenance_of passes: a pyiceberg Summary is no true Mapping (its
        # __getitem__ answers None for any key and __iter__ yields pairs), so its properties
        Summary(Operation.APPEND, **{"added-records": "842"}).additional_properties,
    ],
    ids=["empty", "plain mapping", "pyiceberg summary properties"],
)
def test_a_summary_without_lakeops_keys_has_no_provenance(summary):
    assert Provenance.from_properties(summary) is None


def test_code_version_prefers_the_environment(monkeypatch):
    monkeypatch.setenv("LAKEOPS_CODE_VERSION", "release-7")
    provenance.code_version.cache_clear()
    try:
        assert provenance.code_version() == "release-7"
    finally:
        provenance.code_version.cache_clear()


def test_code_version_without_environment_names_git_or_the_package(monkeypatch):
    provenance.code_version.cache_clear()
    try:
        version = provenance.code_version()
    finally:
        provenance.code_version.cache_clear()

    assert version.startswith(("git:", "lakeops=="))
    assert len(version) > len("git:")
