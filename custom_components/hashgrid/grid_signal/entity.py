"""The base entity of the grid signal part: one device (the VEN) per entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..const import DOMAIN
from .coordinator import GridSignalCoordinator


def grid_signal_device_info(coordinator: GridSignalCoordinator) -> DeviceInfo:
    """Return the VEN's device."""
    entry = coordinator.config_entry
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="HashGrid",
        model="OpenADR 2.0b VEN",
    )


class GridSignalEntity(CoordinatorEntity[GridSignalCoordinator]):
    """An entity of the VEN; available with the known schedule, VTN or not."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: GridSignalCoordinator, description: EntityDescription
    ) -> None:
        """Attach to the VEN's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.config_entry.entry_id}_{description.key}"
        self._attr_device_info = grid_signal_device_info(coordinator)

    @property
    def available(self) -> bool:
        """Return True: the schedule stays known while the VTN is away."""
        return True
