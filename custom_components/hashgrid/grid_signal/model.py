"""The OpenADR 2.0b event model: parsing, validation and the schedule (HA-free).

`parse_event` turns one event as `openleadr` parses it (a nested dict) into a
`DrEvent`, or into an `EventProblem` when the event is malformed, contradictory,
has no duration or carries a signal level out of range: it never raises.

`Schedule` knows every event the VTN sent (and the ones it cancelled) and says
what is in force at a time t, honouring the event's start randomisation (the
tolerance's `startafter`: a deterministic offset per VEN, event and modification,
so that a restart keeps the same offset) and its ramp-up period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import hashlib
import itertools
import math
import random
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


# --- parsing and validation ---------------------------------------------------


class _Malformed(Exception):
    """Raised inside the parser; becomes a MALFORMED problem."""


def _get(raw: Any, *path: str) -> Any:
    node = raw
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise _Malformed(f"missing {'.'.join(path)}")
        node = node[key]
    return node


def _opt(raw: Any, *path: str) -> Any:
    try:
        return _get(raw, *path)
    except _Malformed:
        return None


def _datetime(value: Any, what: str) -> datetime:
    """Return a UTC date-time; one with an offset (+02:00) is converted.

    openleadr reads only times ending in Z and hands any other over as text.
    A time with no zone at all is refused: it is not one instant.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as err:
            raise _Malformed(f"{what} is not a date-time: {value!r}") from err
        if parsed.tzinfo is None:
            raise _Malformed(
                f"{what} {value!r} has no time zone (OpenADR times end in Z "
                "or carry an offset such as +02:00)"
            )
        return parsed.astimezone(UTC)
    if not isinstance(value, datetime):
        raise _Malformed(f"{what} is not a date-time: {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _duration(value: Any, what: str) -> timedelta:
    if value is None:
        return timedelta(0)
    if not isinstance(value, timedelta):
        raise _Malformed(f"{what} is not a duration: {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Malformed(f"{what} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _Malformed(f"{what} is not finite: {value!r}")
    return number


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _event_id(raw: Any) -> str | None:
    value = _opt(raw, "event_descriptor", "event_id")
    return None if value is None else str(value)


def _signal(raw: Any, start: datetime, index: int) -> Signal:
    name = _get(raw, "signal_name")
    kind = _get(raw, "signal_type")
    if not isinstance(name, str) or not isinstance(kind, str):
        raise _Malformed(f"signal {index} has no name or type")
    intervals: list[Interval] = []
    cursor = start
    for n, item in enumerate(_list(_opt(raw, "intervals"))):
        what = f"signal {name} interval {n}"
        begin = item.get("dtstart") if isinstance(item, Mapping) else None
        begin = cursor if begin is None else _datetime(begin, f"{what} start")
        duration = _duration(_get(item, "duration"), f"{what} duration")
        value = _number(_get(item, "signal_payload"), f"{what} payload")
        intervals.append(Interval(begin, duration, value))
        cursor = begin + duration
    if not intervals:
        raise _Malformed(f"signal {name} has no intervals")
    return Signal(name=name, type=kind, intervals=tuple(intervals))


def _targets(raw: Any) -> tuple[str, ...]:
    found: list[str] = []
    for target in _list(raw.get("targets") if isinstance(raw, Mapping) else None):
        if isinstance(target, Mapping):
            found.extend(f"{k}={v}" for k, v in target.items() if v is not None)
    return tuple(found)


def _open_last(signal: Signal, end: datetime) -> Signal:
    last = max(signal.intervals, key=lambda i: i.start)
    if last.start >= end:
        return signal
    opened = Interval(last.start, end - last.start, last.value)
    return replace(
        signal,
        intervals=tuple(opened if i is last else i for i in signal.intervals),
    )


def meant_for(event: DrEvent, ven_id: str | None) -> bool:
    """Return False when the event targets only other VENs (by VEN id).

    A target HashGrid cannot check (a group, a resource, a party) may include
    this VEN, so an event with one is taken as meant for it; so is an event
    without targets (the VTN sent it to this VEN).
    """
    if not event.targets:
        return True
    ven_ids = [
        t.removeprefix("ven_id=") for t in event.targets if t.startswith("ven_id=")
    ]
    if len(ven_ids) < len(event.targets):
        return True
    return ven_id is not None and ven_id in ven_ids


def parse_event(raw: Mapping[str, Any]) -> DrEvent | EventProblem:
    """Parse and validate one event from openleadr; never raises."""
    event_id = _event_id(raw)
    try:
        return _parse(raw, event_id)
    except _Malformed as err:
        return EventProblem(ProblemCode.MALFORMED, event_id, str(err))
    except Exception as err:
        return EventProblem(ProblemCode.MALFORMED, event_id, repr(err))


def _parse(raw: Mapping[str, Any], event_id: str | None) -> DrEvent | EventProblem:
    if event_id is None or not event_id:
        raise _Malformed("the event has no id")
    descriptor = _get(raw, "event_descriptor")
    modification = _get(descriptor, "modification_number")
    if isinstance(modification, bool) or not isinstance(modification, int):
        raise _Malformed(f"modification number is not an integer: {modification!r}")
    try:
        status = EventStatus(str(descriptor.get("event_status", "none")))
    except ValueError as err:
        raise _Malformed(
            f"unknown event status {descriptor.get('event_status')!r}"
        ) from err
    period = _get(raw, "active_period")
    start = _datetime(_get(period, "dtstart"), "active period start")
    if _opt(period, "duration") is None and status is not EventStatus.CANCELLED:
        return EventProblem(
            ProblemCode.NO_DURATION, event_id, "the active period has no duration"
        )
    duration = _duration(_opt(period, "duration"), "active period duration")
    start_after = _duration(
        _opt(period, "tolerance", "tolerate", "startafter"), "tolerance"
    )
    ramp_up = _duration(_opt(period, "ramp_up"), "ramp-up period")
    recovery = _duration(_opt(period, "recovery"), "recovery period")
    signals = tuple(
        _signal(s, start, n) for n, s in enumerate(_list(_opt(raw, "event_signals")))
    )
    if not signals:
        raise _Malformed("the event has no signals")
    if duration == timedelta(0):
        # Open-ended: active until cancelled; each signal's last interval
        # holds until then.
        signals = tuple(_open_last(s, start + OPEN_ENDED) for s in signals)
    event = DrEvent(
        event_id=event_id,
        modification_number=modification,
        status=status,
        start=start,
        duration=duration,
        signals=signals,
        market_context=str(_opt(descriptor, "market_context") or ""),
        priority=int(descriptor.get("priority") or 0),
        test_event=bool(descriptor.get("test_event", False)),
        start_after=start_after,
        ramp_up=ramp_up,
        recovery=recovery,
        targets=_targets(raw),
        response_required=raw.get("response_required", "always") != "never",
    )
    return validate(event)


def validate(event: DrEvent) -> DrEvent | EventProblem:
    """Return the event, or the problem that forbids honouring it."""

    def problem(code: ProblemCode, detail: str) -> EventProblem:
        return EventProblem(code, event.event_id, detail)

    if event.status is EventStatus.CANCELLED:
        return event  # a cancellation needs no valid schedule
    for what, value in (
        ("tolerance", event.start_after),
        ("ramp-up period", event.ramp_up),
        ("recovery period", event.recovery),
    ):
        if value < timedelta(0):
            return problem(ProblemCode.CONTRADICTORY, f"negative {what}: {value}")
    if event.duration < timedelta(0):
        return problem(
            ProblemCode.CONTRADICTORY, f"negative duration: {event.duration}"
        )
    for signal in event.signals:
        for interval in signal.intervals:
            if interval.duration <= timedelta(0):
                return problem(
                    ProblemCode.NO_DURATION,
                    f"signal {signal.name} has an interval without duration",
                )
            if interval.start < event.start or interval.end > event.end:
                return problem(
                    ProblemCode.CONTRADICTORY,
                    f"signal {signal.name} has an interval "
                    f"({interval.start.isoformat()} for {interval.duration}) outside "
                    f"the active period ({event.start.isoformat()} for {event.duration})",
                )
            if signal.name == "SIMPLE" and interval.value not in SIMPLE_LEVELS:
                return problem(
                    ProblemCode.OUT_OF_RANGE,
                    f"SIMPLE signal level {interval.value:g} is not one of 0, 1, 2, 3",
                )
        ordered = sorted(signal.intervals, key=lambda i: i.start)
        for before, after in itertools.pairwise(ordered):
            if after.start < before.end:
                return problem(
                    ProblemCode.CONTRADICTORY,
                    f"signal {signal.name} has overlapping intervals",
                )
    return event


# --- the schedule -----------------------------------------------------------------


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
