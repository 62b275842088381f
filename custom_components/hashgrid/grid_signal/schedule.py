"""The schedule: what is in force at a time t (HA-free).

`Schedule` knows every event the VTN sent (and the ones it cancelled) and says
what is in force at a time t, honouring the event's start randomisation (the
tolerance's `startafter`: a deterministic offset per VEN, event and modification,
so that a restart keeps the same offset) and its ramp-up period. `status_skew`
reads the VTN's clock from an event's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import hashlib
import math
import random
from typing import Any

from .dr_event import (
    OPT_IN,
    OPT_OUT,
    Change,
    DrEvent,
    EventStatus,
    SignalKind,
)

CLOCK_TOLERANCE = timedelta(minutes=2)
# A flapping event's cancellation takes effect once it held this long.
FLAP_HOLD = timedelta(minutes=15)


def status_skew(event: DrEvent, now: datetime) -> timedelta | None:
    """Return how far the VTN's clock seems apart from now, beyond tolerance.

    The status the VTN sent says where its clock stands: before the ramp-up
    (far), in it (near), in the active period (active) or after (completed).
    Positive: the VTN runs ahead; negative: behind; None: they agree.
    """
    if event.open_ended and event.status is EventStatus.COMPLETED:
        return None  # the VTN ended it: HashGrid ends it too
    ramp_start = event.start - event.ramp_up
    window: tuple[datetime | None, datetime | None]
    match event.status:
        case EventStatus.FAR:
            window = (None, ramp_start)
        case EventStatus.NEAR:
            window = (ramp_start, event.start)
        case EventStatus.ACTIVE:
            window = (event.start, event.end)
        case EventStatus.COMPLETED:
            window = (event.end, None)
        case _:
            return None
    low, high = window
    if low is not None and now < low:
        skew = low - now
    elif high is not None and now > high:
        skew = high - now
    else:
        return None
    return skew if abs(skew) > CLOCK_TOLERANCE else None


def start_offset(seed: str, event: DrEvent) -> timedelta:
    """Return the randomised start offset in [0, startafter], stable per event.

    The modification number is not part of the seed: a modification of an
    event (a new level, a longer duration) never moves its randomised start.
    """
    if event.start_after <= timedelta(0):
        return timedelta(0)
    digest = hashlib.sha256(f"{seed}|{event.event_id}".encode()).digest()
    fraction = random.Random(digest).random()
    return timedelta(seconds=round(fraction * event.start_after.total_seconds()))


@dataclass
class ScheduledEvent:
    """An event in the schedule: its randomised start and HashGrid's opt."""

    event: DrEvent
    offset: timedelta = timedelta(0)
    opt: str = OPT_IN
    opted_out_by_user: bool = False
    # How far the VTN's clock runs ahead, once it called the event active
    # before its start by HashGrid's clock: the event then follows the VTN.
    skew: timedelta = timedelta(0)
    # Damping: how often the VTN brought the event back after cancelling it,
    # and a cancellation of such a flapping event, held until `cancel_at`.
    flaps: int = 0
    pending_cancel: DrEvent | None = None
    cancel_at: datetime | None = None

    @property
    def event_id(self) -> str:
        """Return the event's id."""
        return self.event.event_id

    @property
    def cancelled(self) -> bool:
        """Return True once the VTN cancelled the event."""
        return self.event.status is EventStatus.CANCELLED

    @property
    def start(self) -> datetime:
        """Return the randomised start."""
        return self.event.start + self.offset - self.skew

    @property
    def end(self) -> datetime:
        """Return the randomised end (the duration is kept)."""
        return self.start + self.event.length

    @property
    def ramp_start(self) -> datetime:
        """Return when the load must start moving (start - ramp-up)."""
        return self.start - self.event.ramp_up

    @property
    def participating(self) -> bool:
        """Return True when HashGrid opted in."""
        return self.opt == OPT_IN

    def in_force(self, t: datetime) -> bool:
        """Return True from the ramp-up's start to the end (unless cancelled)."""
        if self.cancelled or (self.cancel_at is not None and t >= self.cancel_at):
            return False
        return self.ramp_start <= t < self.end

    def phase(self, t: datetime) -> str | None:
        """Return `ramp_up` or `active` while in force, else None."""
        if not self.in_force(t):
            return None
        return "ramp_up" if t < self.start else "active"

    def value_at(self, kind: SignalKind, t: datetime) -> float | None:
        """Return a signal's payload at t (randomised times; the first during ramp-up)."""
        signal = self.event.signal(kind)
        if signal is None or not self.in_force(t):
            return None
        if t < self.start:
            return signal.intervals[0].value
        return signal.value_at(t - self.offset + self.skew)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (for HA's Store)."""
        return {
            "event": self.event.as_dict(),
            "offset": self.offset.total_seconds(),
            "skew": self.skew.total_seconds(),
            "flaps": self.flaps,
            "pending_cancel": None
            if self.pending_cancel is None
            else self.pending_cancel.as_dict(),
            "cancel_at": None if self.cancel_at is None else self.cancel_at.isoformat(),
            "opt": self.opt,
            "opted_out_by_user": self.opted_out_by_user,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScheduledEvent:
        """Rebuild a stored scheduled event."""
        return cls(
            event=DrEvent.from_dict(data["event"]),
            offset=timedelta(seconds=data.get("offset", 0)),
            skew=timedelta(seconds=data.get("skew", 0)),
            flaps=int(data.get("flaps", 0)),
            pending_cancel=None
            if data.get("pending_cancel") is None
            else DrEvent.from_dict(data["pending_cancel"]),
            cancel_at=None
            if data.get("cancel_at") is None
            else datetime.fromisoformat(data["cancel_at"]),
            opt=data.get("opt", OPT_IN),
            opted_out_by_user=bool(data.get("opted_out_by_user", False)),
        )


def _precedence(
    scheduled: ScheduledEvent, level: float | None, deepest: bool
) -> tuple[float, float, datetime, str]:
    """Return a sort key: the event that comes first governs overlapping ones."""
    priority = scheduled.event.priority
    rank = priority if priority > 0 else math.inf
    depth = -(level or 0) if deepest else 0
    return rank, depth, scheduled.start, scheduled.event_id


@dataclass
class Schedule:
    """Every known event, by id; what is in force at a time t."""

    seed: str
    events: dict[str, ScheduledEvent] = field(default_factory=dict)
    keep_past: timedelta = timedelta(days=7)
    # Test events (testEvent=true) are kept but never in force unless asked.
    act_on_test_events: bool = False

    def get(self, event_id: str) -> ScheduledEvent | None:
        """Return a known event."""
        return self.events.get(event_id)

    def upsert(
        self, event: DrEvent, *, participate: bool, now: datetime | None = None
    ) -> tuple[Change, ScheduledEvent]:
        """Add or update an event; return what changed and the scheduled event.

        An event the VTN brought back after cancelling it is flapping: its next
        cancellations take effect only once they held for FLAP_HOLD (`now` on).
        """
        known = self.events.get(event.event_id)
        cancelling = event.status is EventStatus.CANCELLED
        flaps = 0
        if known is not None:
            newest = known.pending_cancel or known.event
            if (
                event == newest
                or event.modification_number < newest.modification_number
            ):
                # An older modification arriving late never replaces a newer one.
                return Change.UNCHANGED, known
            flaps = known.flaps
            if known.pending_cancel is not None and not cancelling:
                known.pending_cancel = known.cancel_at = None
                known.flaps += 1
                if event == known.event:
                    return Change.UNCHANGED, known
                flaps = known.flaps
            elif cancelling and not known.cancelled and known.flaps and now:
                known.pending_cancel = event
                known.cancel_at = now + FLAP_HOLD
                return Change.UNCHANGED, known
            elif known.cancelled and not cancelling:
                flaps += 1
        opted_out = known is not None and known.opted_out_by_user
        offset = start_offset(self.seed, event)
        if (
            known is not None
            and known.event.start == event.start
            and known.event.start_after == event.start_after
        ):
            offset = known.offset  # a modification keeps the randomised start
        scheduled = ScheduledEvent(
            event=event,
            offset=offset,
            opt=OPT_IN if participate and not opted_out else OPT_OUT,
            opted_out_by_user=opted_out,
            skew=timedelta(0) if known is None else known.skew,
            flaps=flaps,
        )
        self.events[event.event_id] = scheduled
        if event.status is EventStatus.CANCELLED:
            if known is not None and known.cancelled:
                return Change.UNCHANGED, scheduled
            return Change.CANCELLED, scheduled
        return (Change.NEW if known is None else Change.MODIFIED), scheduled

    def cancel(
        self, event_id: str, now: datetime | None = None
    ) -> ScheduledEvent | None:
        """Cancel a known event (an implied cancellation); return it if done now."""
        known = self.events.get(event_id)
        if known is None or known.cancelled or known.pending_cancel is not None:
            return None
        cancelled = replace(known.event, status=EventStatus.CANCELLED)
        if known.flaps and now is not None:
            known.pending_cancel = cancelled
            known.cancel_at = now + FLAP_HOLD
            return None
        known.event = cancelled
        return known

    def settle(self, t: datetime) -> list[ScheduledEvent]:
        """Let the held cancellations due by t take effect; return those events."""
        done: list[ScheduledEvent] = []
        for scheduled in self.events.values():
            if (
                scheduled.pending_cancel is not None
                and scheduled.cancel_at is not None
                and scheduled.cancel_at <= t
            ):
                scheduled.event = scheduled.pending_cancel
                scheduled.pending_cancel = scheduled.cancel_at = None
                done.append(scheduled)
        return done

    def drop(self, event_id: str) -> ScheduledEvent | None:
        """Forget an event (a modification HashGrid cannot honour)."""
        return self.events.pop(event_id, None)

    def set_opt(self, event_id: str, opt: str, *, by_user: bool = False) -> None:
        """Record HashGrid's opt for an event."""
        scheduled = self.events[event_id]
        scheduled.opt = opt
        if by_user:
            scheduled.opted_out_by_user = opt == OPT_OUT

    def acted_on(self, scheduled: ScheduledEvent) -> bool:
        """Return True unless the event is a test event HashGrid ignores."""
        return self.act_on_test_events or not scheduled.event.test_event

    def live(self) -> list[ScheduledEvent]:
        """Return the events that are not cancelled (nor ignored tests), by start."""
        return sorted(
            (e for e in self.events.values() if not e.cancelled and self.acted_on(e)),
            key=lambda e: (e.start, e.event_id),
        )

    def in_force(
        self, t: datetime, *, participating_only: bool = False
    ) -> ScheduledEvent | None:
        """Return the event that governs t (ramp-up counts).

        Of overlapping events, the one of the highest priority (1 is the highest,
        0 means none: the lowest) governs; among equals, the deepest level, then
        the earliest start.
        """
        return min(
            (
                e
                for e in self.live()
                if e.in_force(t) and (e.participating or not participating_only)
            ),
            key=lambda e: _precedence(e, e.value_at(SignalKind.LEVEL, t), True),
            default=None,
        )

    def value_at(self, kind: SignalKind, t: datetime) -> float | None:
        """Return the payload of a kind of signal at t, from the governing event.

        The highest priority wins; among equals, the deepest level (for levels)
        or the earliest start.
        """
        values = [
            (e, value)
            for e in self.live()
            if (value := e.value_at(kind, t)) is not None
        ]
        deepest = kind is SignalKind.LEVEL
        best = min(
            values, key=lambda ev: _precedence(ev[0], ev[1], deepest), default=None
        )
        return None if best is None else best[1]

    def kinds(self) -> set[SignalKind]:
        """Return the kinds of signal any known event carries."""
        return {s.kind for e in self.events.values() for s in e.event.signals}

    def next_start(self, t: datetime) -> ScheduledEvent | None:
        """Return the next event to start after t."""
        upcoming = [e for e in self.live() if e.ramp_start > t]
        return min(upcoming, key=lambda e: e.ramp_start, default=None)

    def next_boundary(self, t: datetime) -> datetime | None:
        """Return the next time after t at which what is in force changes."""
        times: list[datetime] = []
        for scheduled in self.live():
            times.extend((scheduled.ramp_start, scheduled.start, scheduled.end))
            if scheduled.cancel_at is not None:
                times.append(scheduled.cancel_at)
            for signal in scheduled.event.signals:
                times.extend(
                    i.start + scheduled.offset - scheduled.skew
                    for i in signal.intervals
                )
        return min((x for x in times if x > t), default=None)

    def between(self, start: datetime, end: datetime) -> list[ScheduledEvent]:
        """Return the live events overlapping [start, end)."""
        return [e for e in self.live() if e.start < end and e.end > start]

    def prune(self, t: datetime) -> list[str]:
        """Forget events that ended (or were cancelled) long ago."""
        old = [
            event_id
            for event_id, e in self.events.items()
            if (e.start if e.cancelled and e.event.open_ended else e.end)
            + self.keep_past
            < t
        ]
        for event_id in old:
            del self.events[event_id]
        return old

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (for HA's Store)."""
        return {"events": [e.as_dict() for e in self.events.values()]}

    @classmethod
    def from_dict(cls, seed: str, data: Mapping[str, Any] | None) -> Schedule:
        """Rebuild a stored schedule (bad stored rows are skipped)."""
        schedule = cls(seed=seed)
        for row in (data or {}).get("events", []):
            try:
                scheduled = ScheduledEvent.from_dict(row)
            except KeyError, TypeError, ValueError:
                continue
            schedule.events[scheduled.event_id] = scheduled
        return schedule
