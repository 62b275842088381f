"""The event entity of a grid signal entry: new, modified, cancelled, rejected."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .const import EVENT_TYPES
from .dr_event import EventProblem, SignalKind
from .entity import GridSignalEntity
from .runtime import grid_signal_runtime
from .schedule import ScheduledEvent

DR_EVENT = EventEntityDescription(
    key="dr_event", translation_key="dr_event", event_types=EVENT_TYPES
)


def event_data(
    scheduled: ScheduledEvent | None, problem: EventProblem | None
) -> dict[str, Any]:
    """Return what an automation needs to know about a change."""
    data: dict[str, Any] = {}
    if scheduled is not None:
        event = scheduled.event
        level = event.signal(SignalKind.LEVEL)
        data |= {
            "event_id": scheduled.event_id,
            "modification_number": event.modification_number,
            "start": scheduled.start.isoformat(),
            "end": None if event.open_ended else scheduled.end.isoformat(),
            "ramp_up_s": event.ramp_up.total_seconds(),
            "level": None if level is None else level.intervals[0].value,
            "opt": scheduled.opt,
        }
    if problem is not None:
        data |= {
            "event_id": problem.event_id,
            "problem": problem.code.value,
            "detail": problem.detail,
        }
    return data


class DrEventEntity(GridSignalEntity, EventEntity):
    """Fires when the VTN adds, modifies or cancels an event, or sends a bad one."""

    async def async_added_to_hass(self) -> None:
        """Listen to the schedule's changes (the coordinator's dispatcher signal)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, self.coordinator.change_signal, self._on_change
            )
        )

    @callback
    def _on_change(
        self,
        kind: str,
        scheduled: ScheduledEvent | None,
        problem: EventProblem | None,
    ) -> None:
        self._trigger_event(kind, event_data(scheduled, problem))
        self.async_write_ha_state()


async def async_setup_events(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the DR event entity."""
    coordinator = grid_signal_runtime(entry).coordinator
    async_add_entities([DrEventEntity(coordinator, DR_EVENT)])
