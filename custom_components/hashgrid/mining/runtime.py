"""The runtime data of a mining site entry."""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any

from ..models import HashGridConfigEntry, KindRuntime, runtime_as
from .coordinator import MiningSiteCoordinator
from .curtailment import Curtailer


@dataclass
class MiningSiteRuntime(KindRuntime):
    """A site's coordinator and its curtailer."""

    coordinator: MiningSiteCoordinator
    curtailer: Curtailer

    async def async_shutdown(self) -> None:
        """Stop timers and write the site's store (counters, limits, peaks)."""
        self.curtailer.async_shutdown()
        await self.coordinator.async_save_store()

    def diagnostics(self) -> dict[str, Any]:
        """Return each miner's identification and last reading."""
        data = self.coordinator.data
        return {
            "budget_w": None
            if math.isinf(self.curtailer.budget_w)
            else self.curtailer.budget_w,
            "limits": self.coordinator.limits.as_dict()["limits"],
            "site": None
            if data is None
            else {k: v for k, v in asdict(data).items() if k != "miners"},
            "miners": {
                slot.subentry_id: {
                    "info": None if slot.info is None else asdict(slot.info),
                    "reading": None if slot.reading is None else asdict(slot.reading),
                    "error": slot.error,
                    "energy_kwh": slot.energy_kwh,
                }
                for slot in self.coordinator.slots.values()
            },
        }


def site_runtime(entry: HashGridConfigEntry) -> MiningSiteRuntime:
    """Return the entry's mining runtime (the platforms' typed view)."""
    return runtime_as(entry, MiningSiteRuntime)
