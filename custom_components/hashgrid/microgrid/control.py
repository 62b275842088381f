"""Numbers of a microgrid device: export limit, battery limits, ESS grid setpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..const import DOMAIN
from ..models import HashGridConfigEntry
from .const import ESS_SETPOINT_LIMIT_W
from .coordinator import MicrogridCoordinator, MicrogridData
from .entity import MicrogridEntity
from .errors import MicrogridError, OutOfRange
from .runtime import MicrogridRuntime, microgrid_runtime
from .sunspec import SunSpecDevice


def _sunspec_has(runtime: MicrogridRuntime, *model_ids: int) -> bool:
    device = runtime.coordinator.device
    return (
        runtime.coordinator.sunspec is not None
        and device is not None
        and all(m in device.models for m in model_ids)
    )


def _sunspec(runtime: MicrogridRuntime) -> SunSpecDevice:
    assert runtime.coordinator.sunspec is not None
    return runtime.coordinator.sunspec


async def _set_setpoint(runtime: MicrogridRuntime, watts: float) -> None:
    """Hold the setpoint on the GX (0 W is a setpoint like any other)."""
    assert runtime.keeper is not None
    await runtime.keeper.set(watts)


@dataclass(frozen=True, kw_only=True)
class MicrogridNumberEntityDescription(NumberEntityDescription):
    """A control: its value and range from the last poll, how to write it."""

    value_fn: Callable[[MicrogridData], float | None]
    min_fn: Callable[[MicrogridData], float]
    max_fn: Callable[[MicrogridData], float | None]
    exists_fn: Callable[[MicrogridRuntime], bool]
    set_fn: Callable[[MicrogridRuntime, float], Awaitable[None]]


NUMBERS: tuple[MicrogridNumberEntityDescription, ...] = (
    MicrogridNumberEntityDescription(
        key="export_limit",
        translation_key="export_limit",
        value_fn=lambda d: d.export_limit_w,
        min_fn=lambda _: 0.0,
        max_fn=lambda d: d.max_power_w,
        exists_fn=lambda rt: (
            _sunspec_has(rt, 702, 704) and rt.coordinator.data.max_power_w is not None
        ),
        set_fn=lambda rt, w: _sunspec(rt).set_export_limit(w),
    ),
    MicrogridNumberEntityDescription(
        key="max_charge_power",
        translation_key="max_charge_power",
        value_fn=lambda d: d.max_charge_w,
        min_fn=lambda _: 0.0,
        max_fn=lambda d: d.battery_max_charge_w,
        exists_fn=lambda rt: (
            _sunspec_has(rt, 124)
            and rt.coordinator.data.battery_max_charge_w is not None
        ),
        set_fn=lambda rt, w: _sunspec(rt).set_max_charge_power(w),
    ),
    MicrogridNumberEntityDescription(
        key="max_discharge_power",
        translation_key="max_discharge_power",
        value_fn=lambda d: d.max_discharge_w,
        min_fn=lambda _: 0.0,
        max_fn=lambda d: d.battery_max_discharge_w,
        exists_fn=lambda rt: (
            _sunspec_has(rt, 124)
            and rt.coordinator.data.battery_max_discharge_w is not None
        ),
        set_fn=lambda rt, w: _sunspec(rt).set_max_discharge_power(w),
    ),
    MicrogridNumberEntityDescription(
        key="ess_grid_setpoint",
        translation_key="ess_grid_setpoint",
        value_fn=lambda d: d.ess_grid_setpoint_w,
        min_fn=lambda _: -float(ESS_SETPOINT_LIMIT_W),
        max_fn=lambda _: float(ESS_SETPOINT_LIMIT_W),
        exists_fn=lambda rt: rt.keeper is not None,
        set_fn=_set_setpoint,
    ),
)


class MicrogridNumber(MicrogridEntity, NumberEntity):
    """A power setting of the device; refuses values outside its range."""

    entity_description: MicrogridNumberEntityDescription
    _attr_device_class = NumberDeviceClass.POWER
    _attr_native_unit_of_measurement = UnitOfPower.WATT
    _attr_mode = NumberMode.BOX
    _attr_native_step = 1

    def __init__(
        self,
        coordinator: MicrogridCoordinator,
        description: MicrogridNumberEntityDescription,
        runtime: MicrogridRuntime,
    ) -> None:
        """Keep the runtime (the writers live there)."""
        super().__init__(coordinator, description)
        self.runtime = runtime

    @property
    def native_min_value(self) -> float:
        """Return the lowest value the device accepts."""
        return self.entity_description.min_fn(self.coordinator.data)

    @property
    def native_max_value(self) -> float:
        """Return the highest value the device accepts (from its nameplate)."""
        return self.entity_description.max_fn(self.coordinator.data) or 0.0

    @property
    def native_value(self) -> float | None:
        """Return the setting as the device reports it."""
        return self.entity_description.value_fn(self.coordinator.data)

    async def async_set_native_value(self, value: float) -> None:
        """Write the setting; out of range is refused before anything is written."""
        low, high = self.native_min_value, self.native_max_value
        placeholders = {
            "entity": self.entity_id,
            "value": f"{value:g}",
            "min": f"{low:g}",
            "max": f"{high:g}",
        }
        if not low <= value <= high:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="microgrid_value_out_of_range",
                translation_placeholders=placeholders,
            )
        try:
            await self.entity_description.set_fn(self.runtime, value)
        except OutOfRange as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="microgrid_value_refused",
                translation_placeholders={**placeholders, "error": str(err)},
            ) from err
        except MicrogridError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="microgrid_write_failed",
                translation_placeholders={**placeholders, "error": str(err)},
            ) from err
        await self.coordinator.async_request_refresh()


async def async_setup_numbers(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the controls the device has."""
    runtime = microgrid_runtime(entry)
    async_add_entities(
        MicrogridNumber(runtime.coordinator, d, runtime)
        for d in NUMBERS
        if d.exists_fn(runtime)
    )
