"""An OpenADR 2.0b demand-response event as HashGrid keeps it (HA-free).

`DrEvent` is a valid event as the VTN sent it (times unrandomised), with its
signals and intervals; `EventProblem` is why an event was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

SIMPLE_LEVELS = (0, 1, 2, 3)
# How long an open-ended event (duration 0: until cancelled) counts as lasting.
OPEN_ENDED = timedelta(days=36500)
OPT_IN = "optIn"
OPT_OUT = "optOut"


class EventStatus(StrEnum):
    """The VTN's status of an event."""

    NONE = "none"
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class SignalKind(StrEnum):
    """What a signal's payload means for HashGrid."""

    LEVEL = "level"
    PRICE = "price"
    SETPOINT = "setpoint"
    LOAD_SETPOINT = "load_setpoint"  # x-loadControlSetpoint
    LOAD_CAPACITY = "load_capacity"  # x-loadControlCapacity
    OTHER = "other"


class ProblemCode(StrEnum):
    """Why an event cannot be honoured."""

    MALFORMED = "malformed"
    CONTRADICTORY = "contradictory"
    NO_DURATION = "no_duration"
    OUT_OF_RANGE = "out_of_range"


class Change(StrEnum):
    """What an event from the VTN changed in the schedule."""

    NEW = "new"
    MODIFIED = "modified"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class EventProblem:
    """An event HashGrid refuses: which, why, and the detail for the log."""

    code: ProblemCode
    event_id: str | None
    detail: str


@dataclass(frozen=True)
class Interval:
    """One interval of a signal: its start, duration and payload."""

    start: datetime
    duration: timedelta
    value: float

    @property
    def end(self) -> datetime:
        """Return the interval's end."""
        return self.start + self.duration


@dataclass(frozen=True)
class Signal:
    """One event signal: its name, type and intervals."""

    name: str
    type: str
    intervals: tuple[Interval, ...]

    @property
    def kind(self) -> SignalKind:
        """Return what the payload means: level, price, setpoint, load control…"""
        if self.type == "x-loadControlSetpoint":
            return SignalKind.LOAD_SETPOINT
        if self.type == "x-loadControlCapacity":
            return SignalKind.LOAD_CAPACITY
        if self.name == "SIMPLE" or self.type == "level":
            return SignalKind.LEVEL
        if self.type.startswith("price") or self.name == "ELECTRICITY_PRICE":
            return SignalKind.PRICE
        if self.type == "setpoint":
            return SignalKind.SETPOINT
        return SignalKind.OTHER

    def value_at(self, t: datetime) -> float | None:
        """Return the payload of the interval holding t, if any."""
        for interval in self.intervals:
            if interval.start <= t < interval.end:
                return interval.value
        return None


@dataclass(frozen=True)
class DrEvent:
    """A valid demand-response event as the VTN sent it (times unrandomised)."""

    event_id: str
    modification_number: int
    status: EventStatus
    start: datetime
    duration: timedelta
    signals: tuple[Signal, ...]
    market_context: str = ""
    priority: int = 0
    test_event: bool = False
    start_after: timedelta = timedelta(0)
    ramp_up: timedelta = timedelta(0)
    recovery: timedelta = timedelta(0)
    targets: tuple[str, ...] = ()
    response_required: bool = True

    @property
    def open_ended(self) -> bool:
        """Return True for an event active until cancelled (duration 0)."""
        return self.duration == timedelta(0)

    @property
    def length(self) -> timedelta:
        """Return the duration (OPEN_ENDED for an open-ended event)."""
        return OPEN_ENDED if self.open_ended else self.duration

    @property
    def end(self) -> datetime:
        """Return the end of the active period (far away if open-ended)."""
        return self.start + self.length

    def signal(self, kind: SignalKind) -> Signal | None:
        """Return the event's first signal of a kind."""
        return next((s for s in self.signals if s.kind is kind), None)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (for HA's Store)."""
        return {
            "event_id": self.event_id,
            "modification_number": self.modification_number,
            "status": self.status.value,
            "start": self.start.isoformat(),
            "duration": self.duration.total_seconds(),
            "market_context": self.market_context,
            "priority": self.priority,
            "test_event": self.test_event,
            "start_after": self.start_after.total_seconds(),
            "ramp_up": self.ramp_up.total_seconds(),
            "recovery": self.recovery.total_seconds(),
            "targets": list(self.targets),
            "response_required": self.response_required,
            "signals": [
                {
                    "name": s.name,
                    "type": s.type,
                    "intervals": [
                        [i.start.isoformat(), i.duration.total_seconds(), i.value]
                        for i in s.intervals
                    ],
                }
                for s in self.signals
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrEvent:
        """Rebuild an event stored by `as_dict`."""
        return cls(
            event_id=data["event_id"],
            modification_number=int(data["modification_number"]),
            status=EventStatus(data["status"]),
            start=datetime.fromisoformat(data["start"]),
            duration=timedelta(seconds=data["duration"]),
            market_context=data.get("market_context", ""),
            priority=int(data.get("priority", 0)),
            test_event=bool(data.get("test_event", False)),
            start_after=timedelta(seconds=data.get("start_after", 0)),
            ramp_up=timedelta(seconds=data.get("ramp_up", 0)),
            recovery=timedelta(seconds=data.get("recovery", 0)),
            targets=tuple(data.get("targets", ())),
            response_required=bool(data.get("response_required", True)),
            signals=tuple(
                Signal(
                    name=s["name"],
                    type=s["type"],
                    intervals=tuple(
                        Interval(
                            datetime.fromisoformat(i[0]), timedelta(seconds=i[1]), i[2]
                        )
                        for i in s["intervals"]
                    ),
                )
                for s in data["signals"]
            ),
        )
