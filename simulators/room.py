"""A room heated by a miner: a one-node (1R1C) thermal model. No Home Assistant.

Model
-----
The room is one thermal node: its air with the furniture and the inner
layer of its walls, at one temperature T, with heat capacity C (J/K), losing
heat to the outside (temperature T_out) through one conductance UA (W/K):

    C · dT/dt = P - UA · (T - T_out)

P is the heat put in: an ASIC miner turns all the electric power it draws into
heat (it does no other work), so P is the miner's power. Over a step in which
P and T_out hold, the exact solution is used (no integration error, any step
length):

    T(t + dt) = T_eq + (T(t) - T_eq) · exp(-dt / τ),  T_eq = T_out + P / UA,
    τ = C / UA.

This is the simplest of the grey-box models of a building's heat dynamics
(the "Ti" model of Bacher & Madsen, "Identifying suitable models for the heat
dynamics of buildings", Energy and Buildings 43 (2011)); ISO 13790's simple
hourly method (5R1C) reduces to it with one node and no solar or internal
gains. It ignores the sun, people, and the slow mass of the building behind
the inner wall layer.

Default parameters (assumptions, for a small spare room or home office)
----------------------------------------------------------------------
- 12 m² floor, 2.5 m high (30 m³); one outside wall of 7.5 m², of which a
  1.5 m² window.
- UA = 7 W/K: wall 6 m² x U 0.28 W/(m²·K) + window 1.5 m² x U 1.3 W/(m²·K)
  (the reference U-values of Germany's EnEV 2014 for a new home) plus
  ventilation 0.3 air changes/h x 30 m³ x 0.34 Wh/(m³·K) (air's volumetric
  heat capacity, as EN 12831 counts it): 1.7 + 2.0 + 3.1 ≈ 7 W/K.
- C = 250 kJ/K: the air is 36 kJ/K (30 m³ x 1.2 kg/m³ x 1005 J/(kg·K)); the
  furniture and the first centimetres of the inner surfaces that follow it
  within hours count about six times that (an assumption: ISO 13790's "very
  light" class, 80 kJ/(m²·K) of floor, would be 960 kJ/K with the whole wall
  mass, which reacts over days, not hours). τ = C/UA ≈ 10 h.
- An Avalon Nano 3S (70/100/140 W at low/medium/high) then holds the room
  about 10/14/20 K above the outside: enough for 20 °C on a cool day (outside
  around 6 °C), not at its lowest step -- so the thermostat has to step.
- The outside follows a day's sine (:func:`daily_outside`): coldest at 05:00.

API
---
- :class:`Room` ``(temperature_c=18.0, *, outside_c=6.0, loss_w_per_k=7.0,
  heat_capacity_j_per_k=250_000.0)``; :meth:`Room.step` ``(dt_s, heat_w,
  outside_c=None) -> float`` (the new temperature).
- :class:`HeatedRoom` ``(room, energy_wh, clock, outside=None)``: a room heated
  by whatever ``energy_wh()`` meters (a simulated miner's ``energy_wh``);
  :meth:`HeatedRoom.advance` steps it to ``clock()`` with the mean power drawn
  since the last step, the outside from ``outside(t)`` if given.
- :func:`daily_outside` ``(t_s, mean_c=6.0, swing_c=4.0, coldest_h=5.0)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math

DAY_S = 86400.0


def daily_outside(
    t_s: float, mean_c: float = 6.0, swing_c: float = 4.0, coldest_h: float = 5.0
) -> float:
    """Return the outside temperature at `t_s` seconds past midnight (a sine)."""
    phase = 2 * math.pi * ((t_s / 3600.0 - coldest_h) / 24.0)
    return mean_c - swing_c * math.cos(phase)


@dataclass
class Room:
    """One room as a single thermal node (see the module docstring)."""

    temperature_c: float = 18.0
    outside_c: float = 6.0
    loss_w_per_k: float = 7.0
    heat_capacity_j_per_k: float = 250_000.0

    def __post_init__(self) -> None:
        """Reject a room that is no physics (no loss or no capacity)."""
        if not (self.loss_w_per_k > 0 and self.heat_capacity_j_per_k > 0):
            raise ValueError("loss and heat capacity must be positive")

    @property
    def time_constant_s(self) -> float:
        """Return τ = C / UA, in seconds."""
        return self.heat_capacity_j_per_k / self.loss_w_per_k

    def equilibrium_c(self, heat_w: float) -> float:
        """Return where the room settles with `heat_w` put in."""
        return self.outside_c + heat_w / self.loss_w_per_k

    def step(self, dt_s: float, heat_w: float, outside_c: float | None = None) -> float:
        """Let `dt_s` seconds pass with `heat_w` put in; return the temperature."""
        if dt_s < 0 or not math.isfinite(dt_s):
            raise ValueError(f"invalid step {dt_s!r}")
        if outside_c is not None:
            self.outside_c = outside_c
        settle = self.equilibrium_c(max(0.0, heat_w))
        decay = math.exp(-dt_s / self.time_constant_s)
        self.temperature_c = settle + (self.temperature_c - settle) * decay
        return self.temperature_c


class HeatedRoom:
    """A room heated by a metered heater (a simulated miner), on a clock."""

    def __init__(
        self,
        room: Room,
        energy_wh: Callable[[], float],
        clock: Callable[[], float],
        outside: Callable[[float], float] | None = None,
    ) -> None:
        """Start metering now."""
        self.room = room
        self._energy_wh = energy_wh
        self._clock = clock
        self._outside = outside
        self._t = clock()
        self._wh = energy_wh()
        self.heat_w = 0.0

    @property
    def temperature_c(self) -> float:
        """Return the room's temperature."""
        return self.room.temperature_c

    def advance(self) -> float:
        """Step the room to the clock's now, with the mean power since the last."""
        now, wh = self._clock(), self._energy_wh()
        dt = now - self._t
        if dt > 0:
            self.heat_w = (wh - self._wh) * 3600.0 / dt
            outside = None if self._outside is None else self._outside(now)
            self.room.step(dt, self.heat_w, outside)
        self._t, self._wh = now, wh
        return self.room.temperature_c
