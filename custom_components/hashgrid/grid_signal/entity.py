"""The base entity of the grid signal part: one device (the VEN) per entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo

from ..entity import HubEntity, entry_device_info
from .coordinator import GridSignalCoordinator


def grid_signal_device_info(coordinator: GridSignalCoordinator) -> DeviceInfo:
    """Return the VEN's device."""
    return entry_device_info(coordinator.config_entry, "OpenADR 2.0b VEN")


class GridSignalEntity(HubEntity[GridSignalCoordinator]):
    """An entity of the VEN; available with the known schedule, VTN or not."""

    hub_device_info = staticmethod(grid_signal_device_info)

    @property
    def available(self) -> bool:
        """Return True: the schedule stays known while the VTN is away."""
        return True
