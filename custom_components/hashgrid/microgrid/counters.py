"""Energy totals that only increase, and energy integrated from power (no HA imports).

A device's lifetime counter that reads lower than before is not shown as the
new total: Home Assistant takes a drop on a ``total_increasing`` sensor for a
meter reset and would count the whole climb back as new energy. A lower value
is unknown (logged once) until the counter reaches its highest value again,
or until it has stayed lower for ``reset_after`` readings in a row (a replaced
or reset meter): then the lower value is the new baseline (logged once).

A device that keeps no energy counters (a Victron GX's system registers tell
power only) gets them from :class:`PowerIntegrator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import logging

_LOGGER = logging.getLogger(__name__)


class IncreasingTotals:
    """Checks named totals reading after reading."""

    def __init__(self, source: str, reset_after: int = 60) -> None:
        """``source`` names the device in the log lines."""
        self.source = source
        self.reset_after = reset_after
        self._high: dict[str, float] = {}
        self._lower: dict[str, int] = {}

    def check(self, name: str, value: float | None) -> float | None:
        """The value to show for ``name`` now (None: unknown)."""
        if value is None:
            return None
        high = self._high.get(name)
        if high is None or value >= high:
            self._high[name] = value
            if self._lower.pop(name, 0):
                _LOGGER.info("%s: %s counts up again (%s)", self.source, name, value)
            return value
        lower = self._lower.get(name, 0) + 1
        if lower >= self.reset_after:
            _LOGGER.warning(
                "%s: %s has read %s (below %s) %s times in a row: taken as reset",
                self.source,
                name,
                value,
                high,
                lower,
            )
            self._high[name] = value
            self._lower.pop(name)
            return value
        if lower == 1:
            _LOGGER.warning(
                "%s: %s went backwards (%s after %s); unknown until it counts "
                "past %s again",
                self.source,
                name,
                value,
                high,
                high,
            )
        self._lower[name] = lower
        return None


class PowerIntegrator:
    """Energy counters (kWh) integrated from power readings (W), one per name.

    Between two readings at most ``max_gap_s`` apart the energy added is the
    trapezoid of the two powers. Across a longer gap (an outage: polls failed,
    or the integration was stopped) nothing is added: the power in between is
    not known, and guessing it would invent energy. A name whose power is
    unknown at either end of an interval adds nothing for that interval.
    """

    def __init__(self, names: Iterable[str], max_gap_s: float) -> None:
        """Start every counter at 0 kWh (restore them in :attr:`energy_kwh`)."""
        self.energy_kwh: dict[str, float] = dict.fromkeys(names, 0.0)
        self.max_gap_s = max_gap_s
        self._last: tuple[float, dict[str, float | None]] | None = None

    def add(self, powers: Mapping[str, float | None], now: float) -> dict[str, float]:
        """Feed the powers read at ``now`` (s); the counters of the known ones."""
        last, self._last = self._last, (now, dict(powers))
        dt = None if last is None else now - last[0]
        out: dict[str, float] = {}
        for name, watts in powers.items():
            if watts is None:
                continue
            before = None if last is None else last[1].get(name)
            if before is not None and dt is not None and 0 < dt <= self.max_gap_s:
                self.energy_kwh[name] += (before + watts) / 2 * dt / 3.6e6
            out[name] = round(self.energy_kwh[name], 6)
        return out

    def restart(self) -> None:
        """The next reading starts afresh (nothing is added up to it)."""
        self._last = None
