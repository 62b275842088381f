"""Sensors of a microgrid device: power flows, energy counters, surplus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfPower,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .coordinator import MicrogridData
from .entity import MicrogridEntity
from .runtime import microgrid_runtime


@dataclass(frozen=True, kw_only=True)
class MicrogridSensorEntityDescription(SensorEntityDescription):
    """A microgrid sensor: its value from the last poll.

    Made only when the first poll has a value for it (``exists_fn`` defaults
    to that), so a device without a battery gets no battery sensors.
    """

    value_fn: Callable[[MicrogridData], float | None]
    exists_fn: Callable[[MicrogridData], bool] | None = None


def _power(
    key: str, value_fn: Callable[[MicrogridData], float | None]
) -> MicrogridSensorEntityDescription:
    return MicrogridSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=value_fn,
    )


def _energy(
    key: str, value_fn: Callable[[MicrogridData], float | None]
) -> MicrogridSensorEntityDescription:
    return MicrogridSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=2,
        value_fn=value_fn,
    )


SENSORS: tuple[MicrogridSensorEntityDescription, ...] = (
    _power("pv_power", lambda d: d.pv_power_w),
    _energy("pv_energy", lambda d: d.pv_energy_kwh),
    MicrogridSensorEntityDescription(
        key="battery_soc",
        translation_key="battery_soc",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda d: d.battery_soc_pct,
    ),
    _power("battery_power", lambda d: d.battery_power_w),
    MicrogridSensorEntityDescription(
        key="battery_current",
        translation_key="battery_current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda d: d.battery_current_a,
    ),
    _energy("battery_charged_energy", lambda d: d.battery_charged_kwh),
    _energy("battery_discharged_energy", lambda d: d.battery_discharged_kwh),
    MicrogridSensorEntityDescription(
        key="dc_bus_voltage",
        translation_key="dc_bus_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda d: d.dc_bus_voltage_v,
    ),
    _power("grid_power", lambda d: d.grid_power_w),
    _energy("grid_import_energy", lambda d: d.grid_import_kwh),
    _energy("grid_export_energy", lambda d: d.grid_export_kwh),
    _power("load_power", lambda d: d.load_power_w),
    _power("dc_load_power", lambda d: d.dc_load_power_w),
    _power("inverter_power", lambda d: d.inverter_power_w),
    _energy("inverter_energy", lambda d: d.inverter_energy_kwh),
    _power("generator_power", lambda d: d.generator_power_w),
    _energy("generator_energy", lambda d: d.generator_energy_kwh),
    _power("surplus_power", lambda d: d.surplus_w),
)


class MicrogridSensor(MicrogridEntity, SensorEntity):
    """A sensor of the microgrid device."""

    entity_description: MicrogridSensorEntityDescription

    @property
    def native_value(self) -> float | None:
        """Return the value from the last poll."""
        return self.entity_description.value_fn(self.coordinator.data)


def _exists(description: MicrogridSensorEntityDescription, data: MicrogridData) -> bool:
    if description.exists_fn is not None:
        return description.exists_fn(data)
    return description.value_fn(data) is not None


async def async_setup_sensors(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors the device's first poll has values for."""
    coordinator = microgrid_runtime(entry).coordinator
    async_add_entities(
        MicrogridSensor(coordinator, d) for d in SENSORS if _exists(d, coordinator.data)
    )
