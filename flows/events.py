"""Events sent and read the way both Prefect Cloud and a self-hosted server take them.

A self-hosted server also accepts `POST /api/events`; Prefect Cloud takes events only on its `events/in`
websocket, which is what Prefect's events client speaks to either. The websocket confirms nothing, so a
confirmed send reads the event back by its id (`POST /events/filter`, on both) and sends it again, with
the same id, when it is not there: a server that has it ignores the repeat.
"""

import time
from typing import Any

from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.events.filters import EventFilter
from prefect.utilities.asyncutils import run_coro_as_sync

from lakeops.errors import SignalNotDelivered

# The server's event persister writes what it received at least every 5 s (Prefect's default), after
# which an event can be read back.
CONFIRM_WITHIN = 15.0  # s per send
SENDS = 3


def emit(event: Event) -> None:
    """Send one event through the events client; returns once the websocket has taken it (pinged back)."""

    async def send() -> None:
        async with get_events_client(checkpoint_every=1) as client:
            await client.emit(event)

    run_coro_as_sync(send())


def find(event_filter: dict[str, Any], limit: int = 50) -> list[Event]:
    """The server's events matching `event_filter` (EventFilter's fields, as JSON), newest first."""
    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter.model_validate(event_filter), limit=limit)
    return list(page.events)


def stored(event: Event, within: float) -> bool:
    """Whether the server stored `event` (read back by id) within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        if find({"id": {"id": [str(event.id)]}}, limit=1):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def post_confirmed(event: Event) -> None:
    """Send `event` and wait until the server has stored it; SignalNotDelivered after SENDS tries."""
    for _ in range(SENDS):
        emit(event)
        if stored(event, CONFIRM_WITHIN):
            return
    raise SignalNotDelivered(f"{event.event} for {event.resource.id}: not stored after {SENDS} sends")
