"""Parse and validate the VTN's events (HA-free).

`parse_event` turns one event as `openleadr` parses it (a nested dict) into a
`DrEvent`, or into an `EventProblem` when the event is malformed, contradictory,
has no duration or carries a signal level out of range: it never raises.
`meant_for` says whether an event targets this VEN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import itertools
import math
from typing import Any

from .dr_event import (
    OPEN_ENDED,
    SIMPLE_LEVELS,
    DrEvent,
    EventProblem,
    EventStatus,
    Interval,
    ProblemCode,
    Signal,
)


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
