"""Switches, numbers and buttons of a mining site: the controls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import math
from typing import Any

from homeassistant.components.button import (
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.components.button.const import ButtonDeviceClass
from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import CONF_HOST, EntityCategory, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..const import DOMAIN
from ..models import HashGridConfigEntry
from .client import MinerClient, MinerInfo
from .coordinator import MinerSlot
from .entity import MinerEntity, SiteEntity
from .errors import MinerError
from .runtime import site_runtime


async def _command(
    slot: MinerSlot, action: str, call: Callable[[MinerClient], Awaitable[bool]]
) -> None:
    """Send one command to a miner; a failure is a translated error."""
    placeholders = {"miner": slot.subentry.title, "action": action}
    if slot.wrong_miner:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="miner_wrong_identity",
            translation_placeholders={
                **placeholders,
                "host": slot.subentry.data[CONF_HOST],
            },
        )
    if slot.client is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="miner_unavailable",
            translation_placeholders=placeholders,
        )
    try:
        ok = await call(slot.client)
    except MinerError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="miner_command_failed",
            translation_placeholders={**placeholders, "error": str(err)},
        ) from err
    if not ok:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="miner_command_refused",
            translation_placeholders=placeholders,
        )


# --- miner controls ---------------------------------------------------------


class MinerMiningSwitch(MinerEntity, SwitchEntity):
    """Mining on/off for a firmware that can stop."""

    follows_state_read = True

    @property
    def is_on(self) -> bool | None:
        """Return True while the miner hashes."""
        return None if self.slot.reading is None else self.slot.reading.is_mining

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Resume mining."""
        await _command(self.slot, "resume", lambda c: c.resume())
        await self.coordinator.async_request_refresh()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop mining (the miner sleeps)."""
        await _command(self.slot, "stop", lambda c: c.stop())
        await self.coordinator.async_request_refresh()


class MinerPowerTargetNumber(MinerEntity, NumberEntity):
    """The firmware's power target, within its range."""

    _attr_device_class = NumberDeviceClass.POWER
    _attr_native_unit_of_measurement = UnitOfPower.WATT
    _attr_mode = NumberMode.BOX
    _attr_native_step = 1
    follows_state_read = True

    def __init__(self, *args: Any, info: MinerInfo) -> None:
        """Take the range from the identified firmware."""
        super().__init__(*args)
        self._attr_native_min_value = info.min_power_w or 0
        self._attr_native_max_value = info.max_power_w or 10000

    @property
    def native_value(self) -> float | None:
        """Return the power target (the firmware's, or the last we set)."""
        if (reading := self.slot.reading) is None:
            return None
        return reading.power_target_w or self.slot.power_target_w

    async def async_set_native_value(self, value: float) -> None:
        """Set the power target."""
        await _command(
            self.slot, "set_power_target", lambda c: c.set_power_target(value)
        )
        self.slot.power_target_w = value
        await self.coordinator.async_request_refresh()


class MinerRestartButton(MinerEntity, ButtonEntity):
    """Restart the miner."""

    _attr_device_class = ButtonDeviceClass.RESTART
    _attr_entity_category = EntityCategory.CONFIG

    async def async_press(self) -> None:
        """Restart it."""
        await _command(self.slot, "restart", lambda c: c.restart())


# --- site controls ----------------------------------------------------------


class SiteMiningSwitch(SiteEntity, SwitchEntity):
    """Mining for the whole site: off curtails every miner, on restores them."""

    @property
    def is_on(self) -> bool:
        """Return True unless the site is fully curtailed."""
        return self.coordinator.budget_w > 0

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Restore every miner (staggered)."""
        await site_runtime(self.coordinator.config_entry).curtailer.async_set_budget(
            math.inf
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Curtail every miner at once."""
        await site_runtime(self.coordinator.config_entry).curtailer.async_set_budget(0)


class SitePowerBudgetNumber(SiteEntity, NumberEntity):
    """The site's power budget in kW; the maximum means unlimited."""

    _attr_device_class = NumberDeviceClass.POWER
    _attr_native_unit_of_measurement = UnitOfPower.KILO_WATT
    _attr_mode = NumberMode.BOX
    _attr_native_min_value = 0
    _attr_native_step = 0.01

    @property
    def native_max_value(self) -> float:
        """Return the fleet's combined maximum power (at least 1 kW)."""
        return max(1.0, math.ceil(self.coordinator.data.max_power_w / 10) / 100)

    @property
    def native_value(self) -> float:
        """Return the budget (the maximum while unlimited)."""
        budget = self.coordinator.budget_w
        return self.native_max_value if math.isinf(budget) else budget / 1000

    async def async_set_native_value(self, value: float) -> None:
        """Set the budget: curtail or restore to fit it."""
        budget_w = math.inf if value >= self.native_max_value else value * 1000
        await site_runtime(self.coordinator.config_entry).curtailer.async_set_budget(
            budget_w
        )


async def async_setup_switches(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the site's mining switch and one per miner that can stop."""
    coordinator = site_runtime(entry).coordinator
    async_add_entities(
        [
            SiteMiningSwitch(
                coordinator,
                SwitchEntityDescription(
                    key="site_mining", translation_key="site_mining"
                ),
            )
        ]
    )
    for slot in coordinator.slots.values():
        if slot.info is None or slot.info.can_stop:
            async_add_entities(
                [
                    MinerMiningSwitch(
                        coordinator,
                        slot,
                        SwitchEntityDescription(key="mining", translation_key="mining"),
                    )
                ],
                config_subentry_id=slot.subentry_id,
            )


async def async_setup_numbers(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the site's power budget and each miner's power target."""
    coordinator = site_runtime(entry).coordinator
    async_add_entities(
        [
            SitePowerBudgetNumber(
                coordinator,
                NumberEntityDescription(
                    key="power_budget", translation_key="power_budget"
                ),
            )
        ]
    )
    for slot in coordinator.slots.values():
        if slot.info is not None and slot.info.can_set_power:
            async_add_entities(
                [
                    MinerPowerTargetNumber(
                        coordinator,
                        slot,
                        NumberEntityDescription(
                            key="power_target", translation_key="power_target"
                        ),
                        info=slot.info,
                    )
                ],
                config_subentry_id=slot.subentry_id,
            )


async def async_setup_buttons(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each miner's restart button."""
    coordinator = site_runtime(entry).coordinator
    for slot in coordinator.slots.values():
        async_add_entities(
            [
                MinerRestartButton(
                    coordinator, slot, ButtonEntityDescription(key="restart")
                )
            ],
            config_subentry_id=slot.subentry_id,
        )
