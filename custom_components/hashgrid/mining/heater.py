"""A miner as a room heater: the thermostat's decisions (pure logic).

No Home Assistant, no I/O. The climate entity (``climate.py``) gives the
room's temperature, the target, the miner's heat steps and what the site's
limits allow; :func:`decide` says which step the miner should run at now (or
that it should stop), and when to ask again if a minimum time holds a change
back.

Heat steps
----------
A miner heats in *steps*, lowest power first (:func:`heat_steps`):

- its firmware's work modes (Avalon low/medium/high; Whatsminer low/normal/
  high), each at its power;
- else, a miner that takes a continuous power target: :data:`TARGET_STEPS`
  targets evenly spaced from its minimum to its maximum power;
- else (stop-only firmware): one step, its full power.

Below the lowest step the miner is stopped.

Control (a staged thermostat with a dead band)
----------------------------------------------
With target T and hysteresis h:

- stopped: starts when the room is below T - h -- at the step it last ran at
  (the room needed that much then), but no higher than the limits allow --
  once it has been off for ``min_off_s``;
- running: above T + h it stops once it has run for ``min_on_s`` (until
  then it steps down); above T + h/2 it steps down one step, below T - h/2
  up one step, at most one step per ``step_interval_s``; in between it holds.
  So the miner settles on the step whose heat matches the room's loss, and
  stops only when even the lowest step is too much;
- a limit lower than the step it runs at: down to the highest step allowed
  at once (stopped if none is), whatever the minimum times -- a
  demand-response event does not wait.

``capped`` tells the caller that a limit holds the heater below what the
room asks for (it then says which limit: ``blocked_by``).

Times are seconds on one clock the caller chooses (HA's: POSIX seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import math
from typing import Final

#: Defaults: ±0.5 °C around the target; 5 minutes on and off at least; one
#: step per 2 minutes (a room's air changes over minutes, its walls over hours).
DEFAULT_HYSTERESIS_C: Final = 0.5
DEFAULT_MIN_CYCLE_S: Final = 300.0
DEFAULT_STEP_INTERVAL_S: Final = 120.0
#: A miner with a continuous power target heats in this many steps.
TARGET_STEPS: Final = 3

#: The miner's options of its heater (the miner's reconfigure step).
CONF_HYSTERESIS: Final = "heater_hysteresis"
CONF_MIN_CYCLE: Final = "heater_min_cycle_min"

#: Presets: none (heat within the site's limits) and eco (only on solar power).
PRESET_NONE: Final = "none"
PRESET_ECO: Final = "eco"
#: What holds the heater back when eco has no solar power to use.
BLOCKED_SOLAR: Final = "solar"


@dataclass(frozen=True, slots=True)
class HeatStep:
    """One heat step: its name, what the miner draws at it, its work mode."""

    name: str
    power_w: float
    work_mode: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The thermostat's settings (the miner's options)."""

    hysteresis_c: float = DEFAULT_HYSTERESIS_C
    min_on_s: float = DEFAULT_MIN_CYCLE_S
    min_off_s: float = DEFAULT_MIN_CYCLE_S
    step_interval_s: float = DEFAULT_STEP_INTERVAL_S


@dataclass(frozen=True, slots=True)
class Decision:
    """The step wanted now (None: stopped), when to decide again, whether capped."""

    step: int | None
    wait_until: float | None = None
    capped: bool = False


def heat_steps(
    *,
    work_modes: Iterable[tuple[str, float]] = (),
    min_power_w: float | None = None,
    max_power_w: float,
    targetable: bool = False,
) -> tuple[HeatStep, ...]:
    """Return a miner's heat steps, lowest first (see the module docstring).

    Work modes above ``max_power_w`` (a user's maximum) are left out, but the
    lowest mode always stays (a miner heats at least at its lowest mode).
    """
    modes = sorted(
        (HeatStep(name, power, name) for name, power in work_modes),
        key=lambda s: s.power_w,
    )
    if modes:
        within = [m for m in modes if m.power_w <= max_power_w + 0.5]
        return tuple(within or modes[:1])
    if targetable and min_power_w is not None and min_power_w < max_power_w:
        span = max_power_w - min_power_w
        powers = [
            round(min_power_w + span * i / (TARGET_STEPS - 1))
            for i in range(TARGET_STEPS)
        ]
        return tuple(HeatStep(f"{p} W", float(p)) for p in powers)
    return (HeatStep(f"{round(max_power_w)} W", max_power_w),)


def step_of(
    steps: tuple[HeatStep, ...], *, work_mode: str | None, power_w: float | None
) -> int:
    """Return the step a running miner is at: its work mode, else nearest power."""
    for index, step in enumerate(steps):
        if work_mode is not None and step.work_mode == work_mode:
            return index
    if power_w is None or not math.isfinite(power_w):
        return len(steps) - 1
    return min(range(len(steps)), key=lambda i: abs(steps[i].power_w - power_w))


def decide(
    settings: Settings,
    *,
    now: float,
    room_c: float | None,
    target_c: float,
    current: int | None,
    top: int,
    allowed: int,
    resume_at: int = 0,
    switched_at: float = -math.inf,
    stepped_at: float = -math.inf,
) -> Decision:
    """Return the step the miner should run at now (None: stopped).

    ``current`` is the step it runs at (None: stopped), ``top`` its highest
    step, ``allowed`` the highest step the limits leave room for (-1: none),
    ``resume_at`` the step to start at, ``switched_at`` when it last started
    or stopped and ``stepped_at`` when its step last changed.
    """
    h = settings.hysteresis_c
    if current is not None and current > allowed:
        return Decision(allowed if allowed >= 0 else None, capped=True)
    if room_c is None:
        return Decision(current)
    if current is None:
        if room_c >= target_c - h:
            return Decision(None)
        if allowed < 0:
            return Decision(None, capped=True)
        if now < (free := switched_at + settings.min_off_s):
            return Decision(None, wait_until=free)
        start = max(0, min(resume_at, top))
        return Decision(min(start, allowed), capped=start > allowed)
    next_step = stepped_at + settings.step_interval_s
    if room_c > target_c + h:
        if now >= (free := switched_at + settings.min_on_s):
            return Decision(None)
        if current == 0:
            return Decision(current, wait_until=free)
        if now >= next_step:
            return Decision(current - 1, wait_until=free)
        return Decision(current, wait_until=min(free, next_step))
    if room_c > target_c + h / 2 and current > 0:
        if now < next_step:
            return Decision(current, wait_until=next_step)
        return Decision(current - 1)
    if room_c < target_c - h / 2 and current < top:
        if current + 1 > allowed:
            return Decision(current, capped=True)
        if now < next_step:
            return Decision(current, wait_until=next_step)
        return Decision(current + 1)
    return Decision(current)
