"""Surplus power for mining, and a shortfall flag that does not flap.

Pure logic, no Home Assistant imports.

Surplus = generation - load - what the battery should take, where the battery
takes only out of a positive balance (it never makes the site import):

- ``battery_first``: below the target SoC the battery takes up to its maximum
  charge power; mining gets what is left.
- ``mining_first``: the battery takes nothing from the surplus; it charges from
  whatever mining leaves.

A negative surplus is a deficit: the loads need more than generation gives.

An inverter serves its AC loads up to its rated AC power: generation beyond
what its AC side can still deliver (a DC-coupled hybrid with more PV than its
rating) is no surplus for an AC load such as a miner, which would draw that
much from the grid instead (the demo's inverter: 8 kW of PV, 6 kW AC).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import math


class BatteryPolicy(StrEnum):
    """Who gets the balance first."""

    BATTERY_FIRST = "battery_first"
    MINING_FIRST = "mining_first"


@dataclass(frozen=True, slots=True)
class Surplus:
    """Result of :func:`compute_surplus`;
    ``surplus_w + battery_w + ac_limited_w == net_w``."""

    net_w: float  # generation - load
    battery_w: float  # reserved for battery charging (>= 0)
    surplus_w: float  # left for mining; < 0 is a deficit
    ac_limited_w: float = 0.0  # beyond what the inverter's AC side can deliver


def battery_reservation_w(
    policy: BatteryPolicy,
    battery_soc_pct: float | None,
    target_soc_pct: float,
    battery_max_charge_w: float,
) -> float:
    """What the battery should take from a positive balance.

    With ``battery_first`` and an unknown SoC the battery is assumed to need
    charging (the safe side for an off-grid site).
    """
    if policy is BatteryPolicy.MINING_FIRST:
        return 0.0
    if battery_soc_pct is not None and battery_soc_pct >= target_soc_pct:
        return 0.0
    return max(0.0, battery_max_charge_w)


def compute_surplus(
    generation_w: float,
    load_w: float,
    *,
    policy: BatteryPolicy = BatteryPolicy.BATTERY_FIRST,
    battery_soc_pct: float | None = None,
    target_soc_pct: float = 100.0,
    battery_max_charge_w: float = 0.0,
    ac_headroom_w: float | None = None,
) -> Surplus:
    """Surplus for mining from generation (PV + genset) and the other loads.

    ``ac_headroom_w``: what the inverter's AC side can still deliver (its rated
    AC power less the AC load it serves); None: not limited.
    """
    for name, value in (
        ("generation_w", generation_w),
        ("load_w", load_w),
        ("battery_max_charge_w", battery_max_charge_w),
        ("target_soc_pct", target_soc_pct),
        ("ac_headroom_w", 0.0 if ac_headroom_w is None else ac_headroom_w),
    ):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if battery_soc_pct is not None and not math.isfinite(battery_soc_pct):
        raise ValueError("battery_soc_pct must be finite or None")
    net = generation_w - load_w
    reserve = battery_reservation_w(
        policy, battery_soc_pct, target_soc_pct, battery_max_charge_w
    )
    battery = min(max(net, 0.0), reserve)
    surplus = net - battery
    if ac_headroom_w is not None and surplus > ac_headroom_w:
        return Surplus(
            net_w=net,
            battery_w=battery,
            surplus_w=ac_headroom_w,
            ac_limited_w=surplus - ac_headroom_w,
        )
    return Surplus(net_w=net, battery_w=battery, surplus_w=surplus)


class ShortfallDetector:
    """Shortfall flag with a hysteresis band and on/off delays.

    The flag turns on once the surplus has stayed below ``threshold_w`` for
    ``on_delay_s`` without interruption, and off once it has stayed at or above
    ``threshold_w + hysteresis_w`` for ``off_delay_s``. Any sample that breaks
    the condition restarts the wait, so noise around the threshold never flips
    the flag, and two changes are always at least the new state's delay apart.
    """

    def __init__(
        self,
        threshold_w: float = 0.0,
        *,
        on_delay_s: float = 60.0,
        off_delay_s: float = 300.0,
        hysteresis_w: float = 0.0,
        initial: bool = False,
    ) -> None:
        """Configure; times are in seconds of whatever clock feeds :meth:`update`."""
        if on_delay_s < 0 or off_delay_s < 0 or hysteresis_w < 0:
            raise ValueError("delays and hysteresis must be >= 0")
        self.threshold_w = threshold_w
        self.on_delay_s = on_delay_s
        self.off_delay_s = off_delay_s
        self.hysteresis_w = hysteresis_w
        self.active = initial
        self.changed_at: float | None = None
        self._pending_since: float | None = None
        self._last: float | None = None

    def update(self, surplus_w: float, now: float) -> bool:
        """Feed one sample taken at ``now``; return the flag."""
        if self._last is not None and now < self._last:
            raise ValueError("time went backwards")
        self._last = now
        if math.isnan(surplus_w):
            self._pending_since = None  # no information: keep the state, restart
            return self.active
        if self.active:
            wants_change = surplus_w >= self.threshold_w + self.hysteresis_w
            delay = self.off_delay_s
        else:
            wants_change = surplus_w < self.threshold_w
            delay = self.on_delay_s
        if not wants_change:
            self._pending_since = None
            return self.active
        if self._pending_since is None:
            self._pending_since = now
        if now - self._pending_since >= delay:
            self.active = not self.active
            self.changed_at = now
            self._pending_since = None
        return self.active

    def reset(self, active: bool = False) -> None:
        """Forget history."""
        self.active = active
        self.changed_at = None
        self._pending_since = None
        self._last = None
