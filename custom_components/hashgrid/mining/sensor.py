"""Sensors of a mining site: per miner, and the site totals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
import math
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    REVOLUTIONS_PER_MINUTE,
    EntityCategory,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from ..models import HashGridConfigEntry
from .client import MinerReading
from .coordinator import MinerSlot, SiteData
from .entity import MinerEntity, SiteEntity
from .limits import BINDING_OPTIONS
from .runtime import site_runtime

HASHRATE = "TH/s"
EFFICIENCY = "J/TH"

type StateValue = float | int | str | datetime | None


@dataclass(frozen=True, kw_only=True)
class MinerSensorEntityDescription(SensorEntityDescription):
    """A miner sensor: its value from the miner's slot."""

    value_fn: Callable[[MinerSlot, MinerReading], StateValue]
    # Shows what a curtailment's read-back reads (hashrate, power …).
    follows_state_read: bool = False
    # Made only when the first reading has what it needs (some firmwares never
    # report power, for example); always made for a miner not yet read.
    exists_fn: Callable[[MinerReading], bool] = lambda _: True


@dataclass(frozen=True, kw_only=True)
class SiteSensorEntityDescription(SensorEntityDescription):
    """A site sensor: its value from the whole site's poll."""

    value_fn: Callable[[SiteData], StateValue]
    attrs_fn: Callable[[SiteData], dict[str, Any]] | None = None


def _max(values: Sequence[float]) -> float | None:
    return max(values) if values else None


def _boot_time(uptime_s: float | None) -> datetime | None:
    if uptime_s is None:
        return None
    boot = dt_util.utcnow() - timedelta(seconds=uptime_s)
    # Whole minutes, so the state does not change at every poll.
    return boot.replace(second=0, microsecond=0)


MINER_SENSORS: tuple[MinerSensorEntityDescription, ...] = (
    MinerSensorEntityDescription(
        key="hashrate",
        follows_state_read=True,
        translation_key="hashrate",
        native_unit_of_measurement=HASHRATE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda _, r: r.hashrate_ths,
    ),
    MinerSensorEntityDescription(
        key="power",
        follows_state_read=True,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda _, r: r.power_w,
        exists_fn=lambda r: r.power_w is not None,
    ),
    MinerSensorEntityDescription(
        key="energy",
        follows_state_read=True,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda slot, _: round(slot.energy_kwh, 6),
        exists_fn=lambda r: r.power_w is not None,
    ),
    MinerSensorEntityDescription(
        key="efficiency",
        follows_state_read=True,
        entity_registry_enabled_default=False,
        translation_key="efficiency",
        native_unit_of_measurement=EFFICIENCY,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda _, r: r.efficiency_j_th,
        exists_fn=lambda r: r.efficiency_j_th is not None,
    ),
    MinerSensorEntityDescription(
        key="board_temperature",
        translation_key="board_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda _, r: _max(r.board_temps_c),
        exists_fn=lambda r: bool(r.board_temps_c),
    ),
    MinerSensorEntityDescription(
        key="chip_temperature",
        entity_registry_enabled_default=False,
        translation_key="chip_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda _, r: _max(r.chip_temps_c),
        exists_fn=lambda r: bool(r.chip_temps_c),
    ),
    MinerSensorEntityDescription(
        key="fan_speed",
        entity_registry_enabled_default=False,
        translation_key="fan_speed",
        native_unit_of_measurement=REVOLUTIONS_PER_MINUTE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda _, r: _max(r.fan_rpms),
        exists_fn=lambda r: bool(r.fan_rpms),
    ),
    MinerSensorEntityDescription(
        key="boot_time",
        entity_registry_enabled_default=False,
        translation_key="boot_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _, r: _boot_time(r.uptime_s),
    ),
    MinerSensorEntityDescription(
        key="pool",
        entity_registry_enabled_default=False,
        translation_key="pool",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _, r: r.pool_url,
    ),
    MinerSensorEntityDescription(
        key="errors",
        entity_registry_enabled_default=False,
        translation_key="errors",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda _, r: len(r.errors),
    ),
)

SITE_SENSORS: tuple[SiteSensorEntityDescription, ...] = (
    SiteSensorEntityDescription(
        key="total_hashrate",
        translation_key="total_hashrate",
        native_unit_of_measurement=HASHRATE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda d: d.total_hashrate_ths,
    ),
    SiteSensorEntityDescription(
        key="total_power",
        translation_key="total_power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda d: d.total_power_w,
        # Miners that report no power are counted at an estimate: say how much.
        attrs_fn=lambda d: {
            "estimated_power": round(d.estimated_power_w, 1),
            "estimated_miners": d.estimated_miners,
        },
    ),
    SiteSensorEntityDescription(
        key="total_energy",
        translation_key="total_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda d: round(d.energy_kwh, 6),
    ),
    SiteSensorEntityDescription(
        key="miners_mining",
        translation_key="miners_mining",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: d.mining,
    ),
    SiteSensorEntityDescription(
        key="miners_curtailed",
        translation_key="miners_curtailed",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: d.curtailed,
    ),
)


class MinerSensor(MinerEntity, SensorEntity):
    """A sensor of one miner."""

    entity_description: MinerSensorEntityDescription

    @property
    def follows_state_read(self) -> bool:  # type: ignore[override]
        """Return True for what a curtailment's read-back reads."""
        return self.entity_description.follows_state_read

    @property
    def native_value(self) -> StateValue:
        """Return the value from the miner's last reading."""
        if (reading := self.slot.reading) is None:
            return None
        return self.entity_description.value_fn(self.slot, reading)


class SiteSensor(SiteEntity, SensorEntity):
    """A sensor of the whole site."""

    entity_description: SiteSensorEntityDescription

    @property
    def native_value(self) -> StateValue:
        """Return the value from the site's last poll."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return what the description adds (e.g. the estimated share)."""
        if (attrs_fn := self.entity_description.attrs_fn) is None:
            return None
        return attrs_fn(self.coordinator.data)


class SiteEffectiveBudgetSensor(SiteEntity, SensorEntity):
    """The site's effective budget: its smallest limit, at most the fleet's draw."""

    _attr_device_class = SensorDeviceClass.POWER
    _attr_native_unit_of_measurement = UnitOfPower.KILO_WATT
    _attr_suggested_display_precision = 2

    @property
    def native_value(self) -> float | None:
        """Return the effective budget in kW."""
        budget = site_runtime(self.coordinator.config_entry).curtailer.budget()
        return None if math.isinf(budget.power_w) else round(budget.power_w / 1000, 3)


class SiteBindingLimitSensor(SiteEntity, SensorEntity):
    """Which source's limit binds (fixed options), and every active limit."""

    _attr_device_class = SensorDeviceClass.ENUM
    _attr_options = list(BINDING_OPTIONS)

    @property
    def native_value(self) -> str:
        """Return the binding source (`custom` for a user-named one)."""
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        return curtailer.budget().binding_option

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the binding source's name and every active limit with its expiry."""
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        now = dt_util.utcnow().timestamp()
        return {
            "source": curtailer.budget().binding,
            "limits": {
                limit.source: {
                    "power_kw": round(limit.power_w / 1000, 3),
                    "expires": None
                    if limit.expires_at is None
                    else dt_util.utc_from_timestamp(limit.expires_at).isoformat(),
                }
                for limit in curtailer.limits.active(now)
            },
        }


async def async_setup_sensors(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the site's sensors, then each miner's (under its subentry)."""
    coordinator = site_runtime(entry).coordinator
    async_add_entities(SiteSensor(coordinator, d) for d in SITE_SENSORS)
    async_add_entities(
        [
            SiteEffectiveBudgetSensor(
                coordinator,
                SensorEntityDescription(
                    key="effective_budget", translation_key="effective_budget"
                ),
            ),
            SiteBindingLimitSensor(
                coordinator,
                SensorEntityDescription(
                    key="binding_limit", translation_key="binding_limit"
                ),
            ),
        ]
    )
    for slot in coordinator.slots.values():
        async_add_entities(
            (
                MinerSensor(coordinator, slot, d)
                for d in MINER_SENSORS
                if slot.reading is None or d.exists_fn(slot.reading)
            ),
            config_subentry_id=slot.subentry_id,
        )
