"""The calendar of a grid signal entry: the DR events, upcoming and past."""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from ..models import HashGridConfigEntry
from .dr_event import SignalKind
from .entity import GridSignalEntity
from .runtime import grid_signal_runtime
from .schedule import ScheduledEvent

EVENTS = CalendarEntityDescription(key="events", translation_key="dr_events")


def calendar_event(scheduled: ScheduledEvent) -> CalendarEvent:
    """Return a DR event as a calendar event (randomised start, ramp-up in the text)."""
    event = scheduled.event
    level = event.signal(SignalKind.LEVEL)
    summary = "DR event"
    if level is not None:
        summary += f" (level {max(i.value for i in level.intervals):g})"
    if not scheduled.participating:
        summary += " - opted out"
    lines = [
        f"Event {event.event_id}, modification {event.modification_number}",
        f"Opt: {scheduled.opt}",
    ]
    if event.market_context:
        lines.append(f"Program: {event.market_context}")
    if event.open_ended:
        lines.append("Open-ended: in force until the VTN cancels it")
    if event.ramp_up:
        lines.append(f"Ramp-up: {event.ramp_up}")
    if scheduled.offset:
        lines.append(f"Randomised start: +{scheduled.offset}")
    return CalendarEvent(
        start=dt_util.as_local(scheduled.start),
        end=dt_util.as_local(scheduled.end),
        summary=summary,
        description="\n".join(lines),
        uid=event.event_id,
    )


class DrEventCalendar(GridSignalEntity, CalendarEntity):
    """Every known DR event that is not cancelled."""

    @property
    def event(self) -> CalendarEvent | None:
        """Return the event in force now, else the next one."""
        now = self.coordinator.now()
        scheduled = self.coordinator.schedule.in_force(now)
        if scheduled is None:
            upcoming = [e for e in self.coordinator.schedule.live() if e.start > now]
            scheduled = upcoming[0] if upcoming else None
        return None if scheduled is None else calendar_event(scheduled)

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """Return the events overlapping the range."""
        return [
            calendar_event(e)
            for e in self.coordinator.schedule.between(start_date, end_date)
        ]


async def async_setup_calendars(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the calendar of DR events."""
    coordinator = grid_signal_runtime(entry).coordinator
    async_add_entities([DrEventCalendar(coordinator, EVENTS)])
