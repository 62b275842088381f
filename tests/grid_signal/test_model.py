"""The HA-free event model: validation problems, the schedule, the store format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.hashgrid.grid_signal.dr_event import (
    OPT_IN,
    OPT_OUT,
    Change,
    DrEvent,
    EventProblem,
    ProblemCode,
    SignalKind,
)
from custom_components.hashgrid.grid_signal.parse import parse_event
from custom_components.hashgrid.grid_signal.schedule import Schedule, start_offset

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def raw_event(
    *,
    event_id: Any = "e1",
    modification: Any = 0,
    status: str = "far",
    start: Any = T,
    duration: Any = 30 * M,
    intervals: list[dict[str, Any]] | None = None,
    signal_name: str = "SIMPLE",
    signal_type: str = "level",
    **period: Any,
) -> dict[str, Any]:
    """An event as openleadr parses it."""
    return {
        "event_descriptor": {
            "event_id": event_id,
            "modification_number": modification,
            "event_status": status,
            "market_context": "oadr://x",
        },
        "active_period": {"dtstart": start, "duration": duration, **period},
        "event_signals": [
            {
                "signal_name": signal_name,
                "signal_type": signal_type,
                "intervals": intervals
                if intervals is not None
                else [{"duration": duration, "signal_payload": 2.0, "uid": 0}],
            }
        ],
        "targets": [{"ven_id": "ven-1"}],
        "response_required": "always",
    }


def valid(raw: dict[str, Any]) -> DrEvent:
    """Parse an event that must be valid."""
    event = parse_event(raw)
    assert isinstance(event, DrEvent), event
    return event


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (raw_event(event_id=None), ProblemCode.MALFORMED),
        (raw_event(modification="x"), ProblemCode.MALFORMED),
        (raw_event(status="weird"), ProblemCode.MALFORMED),
        (raw_event(start="yesterday"), ProblemCode.MALFORMED),
        (raw_event(intervals=[]), ProblemCode.MALFORMED),
        (
            raw_event(intervals=[{"duration": 30 * M, "signal_payload": "x"}]),
            ProblemCode.MALFORMED,
        ),
        ({"nothing": "here"}, ProblemCode.MALFORMED),
        (raw_event(duration=None), ProblemCode.NO_DURATION),
        (raw_event(duration=-M), ProblemCode.CONTRADICTORY),
        (
            raw_event(
                duration=10 * M,
                intervals=[{"duration": 20 * M, "signal_payload": 1.0}],
            ),
            ProblemCode.CONTRADICTORY,
        ),
        (
            raw_event(
                intervals=[
                    {"dtstart": T, "duration": 20 * M, "signal_payload": 1.0},
                    {"dtstart": T + 10 * M, "duration": 20 * M, "signal_payload": 1.0},
                ]
            ),
            ProblemCode.CONTRADICTORY,
        ),
        (
            raw_event(tolerance={"tolerate": {"startafter": -M}}),
            ProblemCode.CONTRADICTORY,
        ),
        (
            raw_event(intervals=[{"duration": 30 * M, "signal_payload": 4.0}]),
            ProblemCode.OUT_OF_RANGE,
        ),
        (
            raw_event(intervals=[{"duration": 30 * M, "signal_payload": 1.5}]),
            ProblemCode.OUT_OF_RANGE,
        ),
    ],
)
def test_problems(raw: dict[str, Any], code: ProblemCode) -> None:
    """Each kind of bad event is a typed problem, never an exception."""
    problem = parse_event(raw)
    assert isinstance(problem, EventProblem)
    assert problem.code is code
    assert problem.detail


def test_a_cancellation_needs_no_valid_schedule() -> None:
    """A cancelled event is accepted even with no duration."""
    event = valid(raw_event(status="cancelled", duration=timedelta(0)))
    assert event.status == "cancelled"


def test_intervals_follow_each_other_and_set_the_level() -> None:
    """Intervals without a start follow the previous one."""
    event = valid(
        raw_event(
            duration=20 * M,
            intervals=[
                {"duration": 10 * M, "signal_payload": 1.0},
                {"duration": 10 * M, "signal_payload": 3.0},
            ],
        )
    )
    schedule = Schedule(seed="ven")
    schedule.upsert(event, participate=True)
    assert schedule.value_at(SignalKind.LEVEL, T + 5 * M) == 1.0
    assert schedule.value_at(SignalKind.LEVEL, T + 15 * M) == 3.0
    assert schedule.value_at(SignalKind.LEVEL, T + 20 * M) is None
    assert schedule.next_boundary(T) == T + 10 * M


def test_randomised_start_is_stable_and_within_the_tolerance() -> None:
    """The offset depends on VEN, event and modification only."""
    event = valid(raw_event(tolerance={"tolerate": {"startafter": 10 * M}}))
    offsets = {start_offset("ven", event) for _ in range(3)}
    assert len(offsets) == 1
    offset = offsets.pop()
    assert timedelta(0) <= offset <= 10 * M
    other = {start_offset(f"ven{n}", event) for n in range(20)}
    assert len(other) > 1


def test_ramp_up_puts_the_event_in_force_early() -> None:
    """From start - ramp-up the event is in force, with the first level."""
    event = valid(raw_event(ramp_up=5 * M))
    schedule = Schedule(seed="ven")
    _change, scheduled = schedule.upsert(event, participate=True)
    assert schedule.in_force(T - 6 * M) is None
    assert scheduled.phase(T - 5 * M) == "ramp_up"
    assert schedule.value_at(SignalKind.LEVEL, T - 5 * M) == 2.0
    assert scheduled.phase(T) == "active"
    assert schedule.next_start(T - 10 * M) is scheduled


def test_upsert_changes_and_opts() -> None:
    """New, unchanged, modified, cancelled; a user's opt-out survives changes."""
    schedule = Schedule(seed="ven")
    event = valid(raw_event())
    assert schedule.upsert(event, participate=True)[0] is Change.NEW
    assert schedule.upsert(event, participate=True)[0] is Change.UNCHANGED
    schedule.set_opt("e1", OPT_OUT, by_user=True)
    change, scheduled = schedule.upsert(
        valid(raw_event(modification=1)), participate=True
    )
    assert change is Change.MODIFIED
    assert scheduled.opt == OPT_OUT
    assert schedule.in_force(T + M, participating_only=True) is None
    assert schedule.in_force(T + M) is scheduled
    change, scheduled = schedule.upsert(
        valid(raw_event(modification=2, status="cancelled")), participate=True
    )
    assert change is Change.CANCELLED
    assert schedule.in_force(T + M) is None
    assert schedule.live() == []


def test_store_round_trip_and_prune() -> None:
    """The schedule survives its JSON form; old events are forgotten."""
    schedule = Schedule(seed="ven")
    schedule.upsert(
        valid(raw_event(tolerance={"tolerate": {"startafter": 10 * M}})),
        participate=False,
    )
    restored = Schedule.from_dict("ven", schedule.as_dict())
    assert restored.events == schedule.events
    assert restored.events["e1"].opt == OPT_OUT
    assert Schedule.from_dict("ven", {"events": [{"bad": 1}]}).events == {}
    assert restored.prune(T + timedelta(days=8)) == ["e1"]
    assert OPT_IN != OPT_OUT


def test_open_ended_event_lasts_until_cancelled() -> None:
    """Duration 0: in force until cancelled, the last level held."""
    event = valid(
        raw_event(
            duration=timedelta(0),
            intervals=[{"duration": 30 * M, "signal_payload": 3.0}],
        )
    )
    assert event.open_ended
    schedule = Schedule(seed="s")
    schedule.upsert(event, participate=True)
    later = T + timedelta(days=400)
    assert schedule.in_force(later) is not None
    assert schedule.value_at(SignalKind.LEVEL, later) == 3.0
    stored = Schedule.from_dict("s", schedule.as_dict())
    assert stored.in_force(later) is not None
    cancelled = valid(
        raw_event(status="cancelled", modification=1, duration=timedelta(0))
    )
    schedule.upsert(cancelled, participate=True)
    assert schedule.in_force(later) is None
    assert schedule.prune(later) == ["e1"]
