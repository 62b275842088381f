"""The shortfall binary sensor of a microgrid device."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .entity import MicrogridEntity
from .runtime import microgrid_runtime

#: No device class: "Problem"/"OK" read wrong beside a positive surplus still
#: below the threshold; its states are named in the translations instead.
SHORTFALL = BinarySensorEntityDescription(key="shortfall", translation_key="shortfall")


class ShortfallBinarySensor(MicrogridEntity, BinarySensorEntity):
    """On while the surplus has stayed below the threshold (with hysteresis)."""

    @property
    def is_on(self) -> bool:
        """Return the shortfall flag of the last poll."""
        return self.coordinator.data.shortfall


async def async_setup_binary_sensors(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the shortfall flag when the device tells generation and load."""
    coordinator = microgrid_runtime(entry).coordinator
    if coordinator.data.surplus is not None:
        async_add_entities([ShortfallBinarySensor(coordinator, SHORTFALL)])
