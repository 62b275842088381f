"""Energy totals that only increase (no Home Assistant imports).

A device's lifetime counter that reads lower than before is not shown as the
new total: Home Assistant takes a drop on a ``total_increasing`` sensor for a
meter reset and would count the whole climb back as new energy. A lower value
is unknown (logged once) until the counter reaches its highest value again,
or until it has stayed lower for ``reset_after`` readings in a row (a replaced
or reset meter): then the lower value is the new baseline (logged once).
"""

from __future__ import annotations

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
