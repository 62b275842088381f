"""The runtime data of a grid signal entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import HashGridConfigEntry, KindRuntime, runtime_as
from .coordinator import GridSignalCoordinator


@dataclass
class GridSignalRuntime(KindRuntime):
    """The entry's coordinator (VEN, schedule, store)."""

    coordinator: GridSignalCoordinator

    async def async_shutdown(self) -> None:
        """Stop polling, close the VEN and keep the schedule."""
        await self.coordinator.async_close()

    def diagnostics(self) -> dict[str, Any]:
        """Return the connection state, the schedule and the refused events."""
        return self.coordinator.diagnostics()


def grid_signal_runtime(entry: HashGridConfigEntry) -> GridSignalRuntime:
    """Return the entry's grid signal runtime (the platforms' typed view)."""
    return runtime_as(entry, GridSignalRuntime)
