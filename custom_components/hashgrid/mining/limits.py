"""A site's power limits: named by their source, composed into one budget.

Pure logic: no Home Assistant, no I/O. Many things want to say how much a site
may draw -- a demand-response event, the solar surplus, the price, the
battery's floor, a person. None of them writes the budget: each sets or clears
its own :class:`Limit` (a source name, a power, an optional expiry) and the
site's effective budget is the smallest active limit, never more than the fleet
can draw. Clearing one limit leaves the others: the budget then rises to the
next binding limit, never to "unlimited" while another one holds.

API
---
- :class:`SiteLimits` -- the active limits of one site:
  :meth:`~SiteLimits.set`, :meth:`~SiteLimits.clear`, :meth:`~SiteLimits.expire`,
  :meth:`~SiteLimits.active`, :meth:`~SiteLimits.effective`,
  :meth:`~SiteLimits.next_expiry`, :meth:`~SiteLimits.as_dict` /
  :meth:`SiteLimits.from_dict` (what is stored; bad stored data is skipped).
- :func:`valid_source` -- a source name as accepted (lower-case slug).

Times are POSIX timestamps (seconds); the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import math
import re
from typing import Any, Final

SOURCE_DEMAND_RESPONSE: Final = "demand_response"
SOURCE_SOLAR: Final = "solar"
SOURCE_PRICE: Final = "price"
SOURCE_BATTERY: Final = "battery"
SOURCE_MANUAL: Final = "manual"
#: The sources HashGrid knows by name; a user may add their own.
KNOWN_SOURCES: Final = (
    SOURCE_DEMAND_RESPONSE,
    SOURCE_SOLAR,
    SOURCE_PRICE,
    SOURCE_BATTERY,
    SOURCE_MANUAL,
)
#: What binds when no limit is below what the fleet can draw.
BINDING_FLEET: Final = "fleet"
#: What binds when a user-named limit does (its name is told beside it).
BINDING_CUSTOM: Final = "custom"
#: Every value the binding-source sensor takes.
BINDING_OPTIONS: Final = (BINDING_FLEET, *KNOWN_SOURCES, BINDING_CUSTOM)

#: The largest limit a site takes (1 GW): far above any site.
MAX_LIMIT_W: Final = 1e9
#: At most this many limits per site (each source one; user names are bounded).
MAX_LIMITS: Final = 32
_SOURCE_RE = re.compile(r"[a-z0-9_]{1,32}")


def valid_source(name: Any) -> str | None:
    """Return the source name as accepted (stripped, lower case), or None."""
    if not isinstance(name, str):
        return None
    source = name.strip().lower().replace(" ", "_").replace("-", "_")
    return source if _SOURCE_RE.fullmatch(source) else None


@dataclass(frozen=True, slots=True)
class Limit:
    """One source's limit on the site's power (W), until `expires_at` if set."""

    source: str
    power_w: float
    expires_at: float | None = None

    def __post_init__(self) -> None:
        """Reject a limit that is no power or has no valid name."""
        if valid_source(self.source) != self.source:
            raise ValueError(f"invalid source {self.source!r}")
        if not (
            isinstance(self.power_w, int | float)
            and math.isfinite(self.power_w)
            and 0.0 <= self.power_w <= MAX_LIMIT_W
        ):
            raise ValueError(f"invalid power {self.power_w!r}")
        if self.expires_at is not None and not math.isfinite(self.expires_at):
            raise ValueError(f"invalid expiry {self.expires_at!r}")

    def active_at(self, now: float) -> bool:
        """Return True while the limit holds."""
        return self.expires_at is None or now < self.expires_at

    def as_dict(self) -> dict[str, Any]:
        """Return the limit as stored and reported."""
        return {
            "source": self.source,
            "power_w": self.power_w,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class Budget:
    """The site's effective budget and what binds it.

    ``power_w`` is ``math.inf`` when no limit holds and the fleet's maximum is
    unknown; ``binding`` is the binding limit's source, or
    :data:`BINDING_FLEET` when no limit is below what the fleet can draw.
    """

    power_w: float
    binding: str
    limit: Limit | None = None

    @property
    def limited(self) -> bool:
        """Return True when a limit (not the fleet) binds."""
        return self.limit is not None

    @property
    def binding_option(self) -> str:
        """Return the binding source as one of :data:`BINDING_OPTIONS`."""
        return self.binding if self.binding in BINDING_OPTIONS else BINDING_CUSTOM


class SiteLimits:
    """The active limits of one site, by source."""

    def __init__(self, limits: Iterable[Limit] = ()) -> None:
        """Start with the given limits (a later one of a source replaces)."""
        self._limits: dict[str, Limit] = {}
        for limit in limits:
            self._limits[limit.source] = limit

    def __len__(self) -> int:
        """Return how many limits are held (expired ones included until expired)."""
        return len(self._limits)

    def get(self, source: str) -> Limit | None:
        """Return the source's limit, if it has one."""
        return self._limits.get(source)

    def set(
        self, source: str, power_w: float, expires_at: float | None = None
    ) -> Limit:
        """Set (or replace) a source's limit; ValueError when it is no limit."""
        limit = Limit(source, float(power_w), expires_at)
        if source not in self._limits and len(self._limits) >= MAX_LIMITS:
            raise ValueError("too many limits")
        self._limits[source] = limit
        return limit

    def clear(self, source: str) -> Limit | None:
        """Clear a source's limit; return it (None if it had none)."""
        return self._limits.pop(source, None)

    def expire(self, now: float) -> list[Limit]:
        """Drop the limits expired at `now`; return them."""
        gone = [lim for lim in self._limits.values() if not lim.active_at(now)]
        for limit in gone:
            del self._limits[limit.source]
        return gone

    def active(self, now: float) -> list[Limit]:
        """Return the limits holding at `now`, smallest first (then by name)."""
        return sorted(
            (lim for lim in self._limits.values() if lim.active_at(now)),
            key=lambda lim: (lim.power_w, lim.source),
        )

    def effective(self, now: float, fleet_max_w: float = math.inf) -> Budget:
        """Return the smallest active limit, never more than the fleet can draw."""
        active = self.active(now)
        fleet = fleet_max_w if fleet_max_w > 0 else math.inf
        if active and active[0].power_w < fleet:
            return Budget(active[0].power_w, active[0].source, active[0])
        return Budget(fleet, BINDING_FLEET)

    def next_expiry(self) -> float | None:
        """Return when the next limit expires, if any does."""
        times = [
            lim.expires_at
            for lim in self._limits.values()
            if lim.expires_at is not None
        ]
        return min(times) if times else None

    def as_dict(self) -> dict[str, Any]:
        """Return what is stored."""
        return {"limits": [lim.as_dict() for lim in self._limits.values()]}

    @classmethod
    def from_dict(cls, data: Any) -> SiteLimits:
        """Return the stored limits; an entry that is no valid limit is skipped."""
        limits: list[Limit] = []
        raw = data.get("limits") if isinstance(data, Mapping) else None
        for item in raw if isinstance(raw, list) else ():
            if not isinstance(item, Mapping):
                continue
            try:
                expires = item.get("expires_at")
                limits.append(
                    Limit(
                        str(item.get("source")),
                        float(item.get("power_w")),  # type: ignore[arg-type]
                        None if expires is None else float(expires),
                    )
                )
            except TypeError, ValueError, OverflowError:
                continue
        return cls(limits[:MAX_LIMITS])
