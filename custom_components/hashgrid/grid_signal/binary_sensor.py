"""Binary sensors of a grid signal entry: DR event active, VTN connected."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .coordinator import GridSignalCoordinator
from .dr_event import SignalKind
from .entity import GridSignalEntity
from .runtime import grid_signal_runtime


def _active(c: GridSignalCoordinator) -> bool:
    return c.schedule.in_force(c.now(), participating_only=True) is not None


def _active_attributes(c: GridSignalCoordinator) -> Mapping[str, Any]:
    now = c.now()
    scheduled = c.schedule.in_force(now, participating_only=True)
    if scheduled is None:
        return {}
    return {
        "event_id": scheduled.event_id,
        "phase": scheduled.phase(now),
        "start": scheduled.start.isoformat(),
        "end": None if scheduled.event.open_ended else scheduled.end.isoformat(),
        "level": scheduled.value_at(SignalKind.LEVEL, now),
        "modification_number": scheduled.event.modification_number,
        "market_context": scheduled.event.market_context,
    }


@dataclass(frozen=True, kw_only=True)
class GridSignalBinarySensorEntityDescription(BinarySensorEntityDescription):
    """A flag of the schedule or of the connection."""

    value_fn: Callable[[GridSignalCoordinator], bool]
    attributes_fn: Callable[[GridSignalCoordinator], Mapping[str, Any]] = lambda _: {}


BINARY_SENSORS: tuple[GridSignalBinarySensorEntityDescription, ...] = (
    GridSignalBinarySensorEntityDescription(
        key="event_active",
        translation_key="dr_event_active",
        value_fn=_active,
        attributes_fn=_active_attributes,
    ),
    GridSignalBinarySensorEntityDescription(
        key="vtn_connected",
        translation_key="vtn_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda c: bool(c.data),
    ),
)


class GridSignalBinarySensor(GridSignalEntity, BinarySensorEntity):
    """On while an event HashGrid takes part in is in force (ramp-up included)."""

    entity_description: GridSignalBinarySensorEntityDescription

    @property
    def is_on(self) -> bool:
        """Return the flag now."""
        return self.entity_description.value_fn(self.coordinator)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Return the event in force, if any."""
        return self.entity_description.attributes_fn(self.coordinator)


async def async_setup_binary_sensors(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the event flag and the connectivity flag."""
    coordinator = grid_signal_runtime(entry).coordinator
    async_add_entities(GridSignalBinarySensor(coordinator, d) for d in BINARY_SENSORS)
