"""Blue-green release: pin the input, build blue and green side by side, compare, gate, switch.

Identical or within thresholds: promoted automatically. Outside: the owner is alerted with the
diff and the run pauses for a decision typed in the Prefect UI (or `lakeops release approve|reject`).
When main gained windows meanwhile (during the build or the pause), the switch catches up: those
windows are built on both colours and gated the same way, at most `max_catch_up_rounds` times.
"""

from dataclasses import dataclass
from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.core import Block
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Completed, State
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows import fanout
from flows.alerts import alert_on_failure
from flows.common import io_task, open_lakehouse, platform
from flows.replay import replay_windows
from lakeops.datasets.names import RELEASE_FLOW
from lakeops.datasets.windows import Window
from lakeops.release import blue_green, catch_up, promotion, release_log, release_suite
from lakeops.release.blue_green import BLUE, GREEN, ReleasePlan
from lakeops.release.comparison import Comparison, Thresholds
from lakeops.release.release_log import Event
from lakeops.release.release_report import markdown, table_rows

DEFAULT_ALERT_BLOCK = "custom-webhook/lakeops-alerts"


class ReleaseParams(BaseModel):
    dataset: str = Field(description="The dataset to release, e.g. flights (set by its deployment).")
    green_version: str = Field(description="Candidate transform version of the dataset, e.g. v2.")
    blue_version: str | None = Field(default=None, description="Current version; default: the live release's.")
    start: date | None = Field(default=None, description="First window compared; default: the first.")
    end: date | None = Field(default=None, description="Last window compared; default: the newest.")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="What promotes without a human.")
    decision_timeout_minutes: int = Field(default=1440, ge=1, le=10080, description="Wait this long for a decision.")
    max_catch_up_rounds: int = Field(
        default=catch_up.MAX_ROUNDS,
        ge=0,
        le=20,
        description="Main gained windows while the release ran: build them on both colours and retry the "
        "switch at most this many times, then fail.",
    )
    alert_block: str = Field(default=DEFAULT_ALERT_BLOCK, description="Notification block (slug/name) for holds.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


class ReleaseDecision(RunInput):
    approve: bool = Field(default=False, description="Tick to promote green; leave unticked to reject it.")
    reason: str = Field(default="", description="Why; kept in the release log.")
    decided_by: str = Field(default="", description="Who decides; kept in the release log.")


@io_task
def pin(catalog: Catalog, params: ReleaseParams) -> ReleasePlan:
    """Pin the input and fork both colours' branches from main."""
    # The id comes from the flow run, so a retried pin resumes the same release and its branches.
    release_id = f"r{release_log.now():%Y%m%d}-{_run_id()[:8]}" if flow_run.get_id() else None
    planned = blue_green.plan(
        catalog,
        platform(),
        params.dataset,
        params.green_version,
        params.blue_version,
        params.start,
        params.end,
        release_id,
    )
    blue_green.fork(catalog, planned)
    release_log.record(catalog, planned.entry(Event.STARTED, actor=_actor(), flow_run_id=_run_id()))
    get_run_logger().info(
        "release %s: %s (blue) vs %s (green) on %s windows, input pinned at %s; base %s",
        planned.release_id,
        planned.blue_version,
        planned.green_version,
        len(planned.windows),
        planned.pinned,
        planned.base,
    )
    return planned


def build(lakehouse: str, catalog: Catalog, planned: ReleasePlan, colour: str) -> dict[str, int | None]:
    """One colour, every window side by side on the flow's cluster, on its branch; a rerun resumes."""
    colour_plan = blue_green.replay_plan(planned, colour)
    result = replay_windows(lakehouse, catalog, colour_plan, blue_green.BUILD_OPERATION, audited=False)
    get_run_logger().info(
        "%s (%s) built on %s: %s windows",
        colour,
        result.version,
        result.branch,
        len(result.replayed) + len(result.skipped),
    )
    return dict(result.heads)


@io_task
def compare(
    catalog: Catalog, planned: ReleasePlan, thresholds: Thresholds, windows: tuple[Window, ...] | None = None
) -> Comparison:
    """Fingerprints, then keyed diff, then the suite built from blue's statistics; logged when over every window."""
    comparison = blue_green.compare(catalog, platform(), planned, thresholds, release_suite.check, windows)
    if windows is None:
        release_log.record(
            catalog,
            planned.entry(
                Event.COMPARED,
                verdict=str(comparison.verdict),
                summary=comparison.summary(),
                sample=comparison.sample(),
                flow_run_id=_run_id(),
            ),
        )
    what = "compared" if windows is None else f"compared on the caught-up windows {', '.join(map(str, windows))}"
    get_run_logger().info("release %s %s:\n%s", planned.release_id, what, comparison.describe())
    return comparison


@io_task
def publish(planned: ReleasePlan, comparison: Comparison) -> None:
    key = f"release-{planned.release_id}".lower()
    create_table_artifact(table_rows(comparison), key=key, description=f"release {planned.release_id}: per table")
    create_markdown_artifact(markdown(planned, comparison), key=f"{key}-summary", description="verdict and sample")


@io_task
def alert_held(params: ReleaseParams, planned: ReleasePlan, comparison: Comparison) -> None:
    """Tell the owner the release waits for a decision, with the diff; HTTP 5xx is retried."""
    subject = f"[lakeops] release {planned.release_id} of {planned.dataset} held: {comparison.verdict}"
    windows = comparison.windows
    caught_up = "" if windows == planned.windows else " (caught up: main gained them while the release ran)"
    body = (
        f"{planned.green_version} (green) vs {planned.blue_version} (blue) on windows "
        f"{windows[0]}..{windows[-1]}{caught_up}.\n{comparison.describe()}\n\n"
        f"Decide in the Prefect UI (flow run {_run_id()}) or with: lakeops release approve {planned.dataset} "
        f"--reason ... | lakeops release reject {planned.dataset} --reason ..."
    )
    Block.load(params.alert_block).notify(body=body, subject=subject)


def wait_for_decision(
    catalog: Catalog, planned: ReleasePlan, comparison: Comparison, minutes: int, hold: int
) -> ReleaseDecision:
    """Log the hold, pause until someone decides, log the decision."""
    release_log.record(
        catalog,
        planned.entry(
            Event.HELD,
            verdict=str(comparison.verdict),
            summary=comparison.summary(),
            sample=comparison.sample(),
            flow_run_id=_run_id(),
        ),
    )
    try:
        decision = pause_flow_run(
            wait_for_input=ReleaseDecision.with_initial_data(description=markdown(planned, comparison)),
            timeout=minutes * 60,
            poll_interval=2,
            # One key per hold: a second pause under the same key would return the first decision at once.
            key=f"release-{planned.release_id}-{hold}",
        )
    except Exception as exc:  # a timeout or a cancelled pause: no decision
        release_log.record(catalog, planned.entry(Event.FAILED, reason=f"no decision: {exc}", flow_run_id=_run_id()))
        raise
    event = Event.APPROVED if decision.approve else Event.REJECTED
    who = decision.decided_by or "prefect-ui"
    release_log.record(catalog, planned.entry(event, actor=who, reason=decision.reason, flow_run_id=_run_id()))
    get_run_logger().info("release %s %s by %s: %s", planned.release_id, event, who, decision.reason)
    return decision


@io_task
def promote(catalog: Catalog, planned: ReleasePlan, comparison: Comparison, actor: str) -> dict[str, int]:
    """Seal green and switch every table's main to it, all or nothing; a failed switch is not retried
    (BaseMoved: `catch_up.switch` catches up and calls it again)."""
    switched = promotion.promote(catalog, planned, comparison, actor, _run_id())
    get_run_logger().info("release %s promoted: main now %s", planned.release_id, switched)
    return switched


@io_task
def drop_branches(catalog: Catalog, planned: ReleasePlan) -> None:
    blue_green.drop_branches(catalog, planned)


@dataclass
class Steps:
    """A release's steps as this flow runs them (`catch_up.Steps`): tasks, and a pause for a human."""

    catalog: Catalog
    params: ReleaseParams
    holds: int = 0
    rejected_because: str = ""

    def build(self, release: ReleasePlan) -> None:
        """Each colour's windows side by side on the flow's cluster (blue, then green)."""
        for colour in (BLUE, GREEN):
            build(self.params.lakehouse, self.catalog, release, colour)

    def compare(self, release: ReleasePlan, windows: tuple[Window, ...] | None = None) -> Comparison:
        comparison = compare(self.catalog, release, self.params.thresholds, windows)
        if windows is None:
            publish(release, comparison)
        return comparison

    def gate(self, release: ReleasePlan, comparison: Comparison, actor: str) -> str | None:
        """`actor` when promotable; else alert the owner and wait: the approver, or None when rejected."""
        if comparison.promotable:
            return actor
        self.holds += 1
        if alert_held(self.params, release, comparison, return_state=True).is_failed():
            get_run_logger().error("the hold alert was not delivered; the release still waits for a decision")
        timeout = self.params.decision_timeout_minutes
        decision = wait_for_decision(self.catalog, release, comparison, timeout, self.holds)
        if not decision.approve:
            self.rejected_because = decision.reason
            return None
        return decision.decided_by or "prefect-ui"

    def promote(self, release: ReleasePlan, comparison: Comparison, actor: str) -> dict[str, int]:
        return promote(self.catalog, release, comparison, actor)


@flow(
    name=RELEASE_FLOW,
    flow_run_name="{params.dataset} {params.green_version}",
    task_runner=fanout.task_runner(),
    on_failure=[alert_on_failure()],
)
def release_dataset(params: ReleaseParams) -> State:
    """Pin, build blue and green concurrently, compare, gate (promote, or hold for a decision), switch, catching up."""
    _, catalog = open_lakehouse(params.lakehouse)
    planned = pin(catalog, params)
    steps = Steps(catalog, params)
    steps.build(planned)
    comparison = steps.compare(planned)
    actor = steps.gate(planned, comparison, "automatic")
    if actor is None:
        drop_branches(catalog, planned)
        return Completed(name="Rejected", message=f"release {planned.release_id} rejected: {steps.rejected_because}")
    try:
        done = catch_up.switch(
            catalog, platform(), planned, comparison, actor, steps, params.max_catch_up_rounds, _run_id()
        )
    finally:
        drop_branches(catalog, planned)  # the branches' names do not change when the release catches up
    rounds = f" after {done.rounds} catch-up round(s)" if done.rounds else ""
    if not done.promoted:
        message = f"release {planned.release_id} rejected{rounds}: {steps.rejected_because}"
        return Completed(name="Rejected", message=message)
    return Completed(
        name="Promoted", message=f"release {planned.release_id} promoted ({done.comparison.verdict}){rounds}"
    )


def _run_id() -> str:
    return str(flow_run.get_id() or "local")


def _actor() -> str:
    return f"prefect:{flow_run.get_name() or 'local'}"
