"""Sensors of a grid signal entry: signal level, price, setpoints, load capacity,
next event start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .coordinator import GridSignalCoordinator
from .dr_event import SignalKind
from .entity import GridSignalEntity
from .runtime import grid_signal_runtime


def _level(c: GridSignalCoordinator) -> int:
    value = c.schedule.value_at(SignalKind.LEVEL, c.now())
    return 0 if value is None else int(value)


def _next_start(c: GridSignalCoordinator) -> datetime | None:
    scheduled = c.schedule.next_start(c.now())
    return None if scheduled is None else scheduled.start


@dataclass(frozen=True, kw_only=True)
class GridSignalSensorEntityDescription(SensorEntityDescription):
    """A value of the schedule at the current time."""

    value_fn: Callable[[GridSignalCoordinator], float | int | datetime | None]
    exists_fn: Callable[[GridSignalCoordinator], bool] = lambda _: True


SENSORS: tuple[GridSignalSensorEntityDescription, ...] = (
    GridSignalSensorEntityDescription(
        key="signal_level",
        translation_key="signal_level",
        value_fn=_level,
    ),
    GridSignalSensorEntityDescription(
        key="price",
        translation_key="signal_price",
        value_fn=lambda c: c.schedule.value_at(SignalKind.PRICE, c.now()),
        exists_fn=lambda c: SignalKind.PRICE in c.schedule.kinds(),
    ),
    GridSignalSensorEntityDescription(
        key="setpoint",
        translation_key="signal_setpoint",
        value_fn=lambda c: c.schedule.value_at(SignalKind.SETPOINT, c.now()),
        exists_fn=lambda c: SignalKind.SETPOINT in c.schedule.kinds(),
    ),
    GridSignalSensorEntityDescription(
        key="load_setpoint",
        translation_key="load_setpoint",
        value_fn=lambda c: c.schedule.value_at(SignalKind.LOAD_SETPOINT, c.now()),
        exists_fn=lambda c: SignalKind.LOAD_SETPOINT in c.schedule.kinds(),
    ),
    GridSignalSensorEntityDescription(
        key="load_capacity",
        translation_key="load_capacity",
        value_fn=lambda c: c.schedule.value_at(SignalKind.LOAD_CAPACITY, c.now()),
        exists_fn=lambda c: SignalKind.LOAD_CAPACITY in c.schedule.kinds(),
    ),
    GridSignalSensorEntityDescription(
        key="next_event_start",
        translation_key="next_event_start",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_next_start,
    ),
)


class GridSignalSensor(GridSignalEntity, SensorEntity):
    """A value of the schedule now."""

    entity_description: GridSignalSensorEntityDescription

    @property
    def native_value(self) -> float | int | datetime | None:
        """Return the value now."""
        return self.entity_description.value_fn(self.coordinator)


async def async_setup_sensors(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors; price and setpoint once the program sends them."""
    coordinator = grid_signal_runtime(entry).coordinator
    added: set[str] = set()

    @callback
    def _add_new() -> None:
        new = [d for d in SENSORS if d.key not in added and d.exists_fn(coordinator)]
        if new:
            added.update(d.key for d in new)
            async_add_entities(GridSignalSensor(coordinator, d) for d in new)

    _add_new()
    entry.async_on_unload(coordinator.async_add_listener(_add_new))
