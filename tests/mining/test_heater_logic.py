"""The heater's thermostat (mining/heater.py) and the room model (simulators/room.py)."""

from __future__ import annotations

import math

import pytest

from custom_components.hashgrid.mining.heater import (
    HeatStep,
    Settings,
    decide,
    heat_steps,
    step_of,
)
from simulators.room import HeatedRoom, Room, daily_outside

S = Settings(hysteresis_c=0.5, min_on_s=300, min_off_s=300, step_interval_s=120)
T = 20.0


def at(room: float, current: int | None, **kw: float) -> int | None:
    """The step wanted at time 1000 (the last change long ago), 3 steps, all allowed."""
    args: dict = {"top": 2, "allowed": 2, "switched_at": 0.0, "stepped_at": 0.0}
    args.update(kw)
    return decide(S, now=1000.0, room_c=room, target_c=T, current=current, **args).step


def test_heat_steps() -> None:
    """Work modes (by power, within a user's maximum), targets, or full power."""
    avalon = heat_steps(
        work_modes=[("high", 140.0), ("low", 70.0), ("medium", 100.0)],
        min_power_w=70.0,
        max_power_w=140.0,
        targetable=True,
    )
    assert [s.name for s in avalon] == ["low", "medium", "high"]
    assert avalon[0] == HeatStep("low", 70.0, "low")
    capped = heat_steps(work_modes=[("low", 70.0), ("high", 140.0)], max_power_w=100)
    assert [s.name for s in capped] == ["low"]
    # A user's maximum below every mode: still its lowest mode.
    assert heat_steps(work_modes=[("low", 70.0)], max_power_w=50.0)[0].name == "low"
    lux = heat_steps(min_power_w=1000.0, max_power_w=3000.0, targetable=True)
    assert [s.power_w for s in lux] == [1000.0, 2000.0, 3000.0]
    assert all(s.work_mode is None for s in lux)
    assert heat_steps(max_power_w=3250.0) == (HeatStep("3250 W", 3250.0),)
    assert len(heat_steps(min_power_w=10, max_power_w=20, targetable=False)) == 1


def test_step_of() -> None:
    """The step a miner runs at: its work mode, else the nearest power."""
    steps = heat_steps(min_power_w=1000.0, max_power_w=3000.0, targetable=True)
    assert step_of(steps, work_mode=None, power_w=1900.0) == 1
    assert step_of(steps, work_mode=None, power_w=2900.0) == 2
    assert step_of(steps, work_mode=None, power_w=None) == 2
    modes = heat_steps(work_modes=[("low", 70.0), ("high", 140.0)], max_power_w=140)
    assert step_of(modes, work_mode="low", power_w=140.0) == 0


def test_hysteresis_starts_and_stops() -> None:
    """Stopped: starts below T - h; running: stops above T + h."""
    assert at(19.4, None) == 0
    assert at(19.6, None) is None
    assert at(19.4, None, resume_at=2) == 2  # where it last ran
    assert at(20.6, 0) is None
    assert at(20.6, 2) is None
    assert at(20.4, 0) == 0


def test_dead_band_steps_one_at_a_time() -> None:
    """Below T - h/2 up a step, above T + h/2 down one; in between it holds."""
    assert at(19.7, 0) == 1
    assert at(19.7, 1) == 2
    assert at(19.7, 2) == 2  # the top
    assert at(20.3, 2) == 1
    assert at(20.3, 0) == 0  # the lowest step stops only above T + h
    assert at(20.0, 1) == 1
    assert at(19.8, 1) == 1
    assert at(20.2, 1) == 1
    assert at(19.0, 0) == 1  # never two steps at once


def test_minimum_times() -> None:
    """No start within min_off of a stop, no stop within min_on of a start,
    no step within step_interval of the last; each says when to ask again."""
    early = decide(
        S,
        now=1000.0,
        room_c=19.0,
        target_c=T,
        current=None,
        top=2,
        allowed=2,
        switched_at=800.0,
    )
    assert early.step is None
    assert early.wait_until == 1100.0
    late = decide(
        S,
        now=1000.0,
        room_c=21.0,
        target_c=T,
        current=0,
        top=2,
        allowed=2,
        switched_at=800.0,
        stepped_at=800.0,
    )
    assert late.step == 0
    assert late.wait_until == 1100.0
    # Too warm but not on long enough: down a step meanwhile.
    assert at(21.0, 2, switched_at=800.0) == 1
    step = decide(
        S,
        now=1000.0,
        room_c=19.7,
        target_c=T,
        current=0,
        top=2,
        allowed=2,
        stepped_at=950.0,
    )
    assert step.step == 0
    assert step.wait_until == 1070.0
    assert at(19.7, 0, stepped_at=880.0) == 1


def test_limits_win() -> None:
    """A limit below the step it runs at: down at once, whatever the times;
    a start or a step up beyond what is allowed waits, and says it is capped."""
    capped = decide(
        S,
        now=1000.0,
        room_c=19.0,
        target_c=T,
        current=2,
        top=2,
        allowed=0,
        switched_at=999.0,
        stepped_at=999.0,
    )
    assert capped.step == 0
    assert capped.capped
    stop = decide(S, now=1000.0, room_c=19.0, target_c=T, current=1, top=2, allowed=-1)
    assert stop.step is None
    assert stop.capped
    held = decide(
        S, now=1000.0, room_c=19.0, target_c=T, current=None, top=2, allowed=-1
    )
    assert held.step is None
    assert held.capped
    up = decide(S, now=1000.0, room_c=19.7, target_c=T, current=0, top=2, allowed=0)
    assert up.step == 0
    assert up.capped
    start = decide(
        S,
        now=1000.0,
        room_c=19.0,
        target_c=T,
        current=None,
        top=2,
        allowed=1,
        resume_at=2,
    )
    assert start.step == 1
    assert start.capped
    # A warm room wants nothing: nothing holds it back.
    warm = decide(
        S, now=1000.0, room_c=21.0, target_c=T, current=None, top=2, allowed=-1
    )
    assert not warm.capped
    assert at(19.0, 1, allowed=1) == 1


def test_no_room_reading_holds() -> None:
    """Without a room temperature the heater changes nothing (but limits win)."""
    assert at(None, 1) == 1  # type: ignore[arg-type]
    assert at(None, None) is None  # type: ignore[arg-type]
    assert at(None, 2, allowed=0) == 0  # type: ignore[arg-type]


def test_room_model() -> None:
    """1R1C: exact exponential approach to T_out + P/UA with τ = C/UA."""
    room = Room(temperature_c=20.0, outside_c=5.0, loss_w_per_k=7.0)
    assert room.time_constant_s == pytest.approx(250_000 / 7)
    assert room.equilibrium_c(140.0) == pytest.approx(25.0)
    # One τ with no heat: 1/e of the way to the outside.
    room.step(room.time_constant_s, 0.0)
    assert room.temperature_c == pytest.approx(5.0 + 15.0 / math.e)
    # Steps add up exactly (the solution, not an integration).
    a, b = Room(18.0), Room(18.0)
    a.step(3600.0, 100.0)
    for _ in range(60):
        b.step(60.0, 100.0)
    assert a.temperature_c == pytest.approx(b.temperature_c)
    # The heat balance: C·dT = (P - UA·(T - T_out))·dt for a short step.
    c = Room(18.0, outside_c=6.0)
    c.step(1.0, 140.0)
    assert (c.temperature_c - 18.0) * 250_000 == pytest.approx(140 - 7 * 12, rel=1e-3)
    with pytest.raises(ValueError):
        Room(loss_w_per_k=0)
    with pytest.raises(ValueError):
        c.step(-1.0, 0.0)


def test_heated_room_meters_its_heater() -> None:
    """HeatedRoom heats with the mean power the meter counted since its last step."""
    now, wh = [0.0], [0.0]
    heated = HeatedRoom(Room(18.0, outside_c=6.0), lambda: wh[0], lambda: now[0])
    now[0], wh[0] = 3600.0, 100.0  # 100 W for an hour
    reference = Room(18.0, outside_c=6.0)
    reference.step(3600.0, 100.0)
    assert heated.advance() == pytest.approx(reference.temperature_c)
    assert heated.heat_w == pytest.approx(100.0)
    assert daily_outside(5 * 3600.0) == pytest.approx(2.0)
    assert daily_outside(17 * 3600.0) == pytest.approx(10.0)
