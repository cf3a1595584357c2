"""Blue-green release: pin the input, build blue and green side by side, compare, gate, switch.

Identical or within thresholds: promoted automatically. Outside: the owner is alerted with the
diff and the run pauses for a decision typed in the Prefect UI (or `lakeops release approve|reject`).
"""

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

from flows.alerts import alert_on_failure
from flows.common import io_task, open_lakehouse, platform, run_info
from lakeops.datasets.names import RELEASE_FLOW
from lakeops.release import blue_green, promotion, release_log, release_suite
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


@io_task
def build(catalog: Catalog, planned: ReleasePlan, colour: str) -> dict[str, int | None]:
    """One colour, every window, on its branch; a retry resumes where it stopped."""
    result = blue_green.build(catalog, platform(), planned, colour, run_info())
    get_run_logger().info(
        "%s (%s) built on %s: %s windows",
        colour,
        result.version,
        result.branch,
        len(result.replayed) + len(result.skipped),
    )
    return dict(result.heads)


@io_task
def compare(catalog: Catalog, planned: ReleasePlan, thresholds: Thresholds) -> Comparison:
    """Fingerprints, then keyed diff, then the suite built from blue's statistics; logged."""
    comparison = blue_green.compare(catalog, platform(), planned, thresholds, release_suite.check)
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
    get_run_logger().info("release %s compared:\n%s", planned.release_id, comparison.describe())
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
    body = (
        f"{planned.green_version} (green) vs {planned.blue_version} (blue) on windows "
        f"{planned.windows[0]}..{planned.windows[-1]}.\n{comparison.describe()}\n\n"
        f"Decide in the Prefect UI (flow run {_run_id()}) or with: lakeops release approve {planned.dataset} "
        f"--reason ... | lakeops release reject {planned.dataset} --reason ..."
    )
    Block.load(params.alert_block).notify(body=body, subject=subject)


def wait_for_decision(catalog: Catalog, planned: ReleasePlan, comparison: Comparison, minutes: int) -> ReleaseDecision:
    """Log the hold, pause until someone decides, log the decision."""
    release_log.record(catalog, planned.entry(Event.HELD, verdict=str(comparison.verdict), flow_run_id=_run_id()))
    try:
        decision = pause_flow_run(
            wait_for_input=ReleaseDecision.with_initial_data(description=markdown(planned, comparison)),
            timeout=minutes * 60,
            poll_interval=2,
            key=f"release-{planned.release_id}",
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
    """Seal green and switch every table's main to it: all or nothing (a failed switch is never retried)."""
    switched = promotion.promote(catalog, planned, comparison, actor, _run_id())
    get_run_logger().info("release %s promoted: main now %s", planned.release_id, switched)
    return switched


@io_task
def drop_branches(catalog: Catalog, planned: ReleasePlan) -> None:
    blue_green.drop_branches(catalog, planned)


@flow(name=RELEASE_FLOW, flow_run_name="{params.dataset} {params.green_version}", on_failure=[alert_on_failure()])
def release_dataset(params: ReleaseParams) -> State:
    """Pin, build blue and green concurrently, compare, then promote, hold for a decision, or reject."""
    _, catalog = open_lakehouse(params.lakehouse)
    planned = pin(catalog, params)
    colours = [build.submit(catalog, planned, colour) for colour in (BLUE, GREEN)]
    for future in colours:
        future.result()
    comparison = compare(catalog, planned, params.thresholds)
    publish(planned, comparison)
    actor = "automatic"
    if not comparison.promotable:
        if alert_held(params, planned, comparison, return_state=True).is_failed():
            get_run_logger().error("the hold alert was not delivered; the release still waits for a decision")
        decision = wait_for_decision(catalog, planned, comparison, params.decision_timeout_minutes)
        if not decision.approve:
            drop_branches(catalog, planned)
            return Completed(name="Rejected", message=f"release {planned.release_id} rejected: {decision.reason}")
        actor = decision.decided_by or "prefect-ui"
    try:
        promote(catalog, planned, comparison, actor)
    finally:
        drop_branches(catalog, planned)
    return Completed(name="Promoted", message=f"release {planned.release_id} promoted ({comparison.verdict})")


def _run_id() -> str:
    return str(flow_run.get_id() or "local")


def _actor() -> str:
    return f"prefect:{flow_run.get_name() or 'local'}"
