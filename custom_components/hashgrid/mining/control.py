"""Switches, numbers and buttons of a mining site: the controls."""

from __future__ import annotations

import asyncio
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
from .curtailment import Curtailer, MinerOutcome, source_text, until_text
from .entity import MinerEntity, SiteEntity
from .errors import MinerError
from .limits import SOURCE_MANUAL
from .planner import Action
from .runtime import site_runtime


def _commandable(slot: MinerSlot, action: str) -> MinerClient:
    """Return the miner's client; a translated error if it takes no command."""
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
    return slot.client


async def _command(
    slot: MinerSlot, action: str, call: Callable[[MinerClient], Awaitable[bool]]
) -> None:
    """Send one command to a miner; a failure is a translated error."""
    placeholders = {"miner": slot.subentry.title, "action": action}
    client = _commandable(slot, action)
    try:
        ok = await call(client)
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

# After a restart, wait this long before holding the limits again.
RESTART_ENFORCE_DELAY_S = 60.0


def _check(slot: MinerSlot, outcome: MinerOutcome) -> None:
    """A miner that did not obey its own control: a translated error."""
    if outcome.success:
        return
    raise HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="miner_command_failed",
        translation_placeholders={
            "miner": slot.subentry.title,
            "action": outcome.action,
            "error": outcome.error or "",
        },
    )


async def _through_curtailer(
    entity: MinerEntity,
    action: Action,
    power_w: float | None = None,
    *,
    work_mode: str | None = None,
) -> None:
    """A miner's own control: through the site's curtailer (limits, read-back)."""
    slot = entity.slot
    _commandable(slot, action)
    curtailer = site_runtime(entity.coordinator.config_entry).curtailer
    _check(
        slot,
        await curtailer.async_command_miner(slot, action, power_w, work_mode=work_mode),
    )


class MinerMiningSwitch(MinerEntity, SwitchEntity):
    """Mining on/off for a firmware that can stop (through the curtailer)."""

    follows_state_read = True

    @property
    def is_on(self) -> bool | None:
        """Return True while the miner hashes."""
        return None if self.slot.reading is None else self.slot.reading.is_mining

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Resume mining, if the site's limits leave room for it."""
        target = self.slot.power_target_w
        if self.slot.info is None or not self.slot.info.can_set_power:
            target = None
        await _through_curtailer(self, "resume", target)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop mining (the miner sleeps)."""
        await _through_curtailer(self, "stop")


class MinerPowerTargetNumber(MinerEntity, NumberEntity):
    """The firmware's power target, within its range and the site's limits."""

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
        """Set the power target (a stopped miner keeps it for its resume)."""
        reading = self.slot.reading
        if reading is not None and not reading.is_mining:
            # Stopped: only the target changes (it starts nothing).
            await _command(
                self.slot, "set_power_target", lambda c: c.set_power_target(value)
            )
            self.slot.power_target_w = value
            await self.coordinator.async_poll_miner(self.slot, state_only=True)
            return
        await _through_curtailer(self, "set_power", value)


class MinerRestartButton(MinerEntity, ButtonEntity):
    """Restart the miner."""

    _attr_device_class = ButtonDeviceClass.RESTART
    _attr_entity_category = EntityCategory.CONFIG

    async def async_press(self) -> None:
        """Restart it (in the curtailer's turn); the limits are enforced after."""
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        async with self.coordinator.commanding:
            await _command(self.slot, "restart", lambda c: c.restart())
        if curtailer.budget().limited:
            self.coordinator.config_entry.async_create_background_task(
                self.hass,
                _enforce_later(curtailer),
                "hashgrid_enforce_after_restart",
            )


async def _enforce_later(curtailer: Curtailer) -> None:
    """After a restart (which may resume mining), hold the limits again."""
    await asyncio.sleep(RESTART_ENFORCE_DELAY_S)
    await curtailer.async_enforce()


# --- site controls ----------------------------------------------------------


class SiteMiningSwitch(SiteEntity, SwitchEntity):
    """Mining for the whole site: off sets the manual limit to 0, on clears it.

    On while the effective budget lets miners run; it stays off (and says
    why) when another limit still holds the site at 0.
    """

    @property
    def is_on(self) -> bool:
        """Return True unless a limit holds the site at 0."""
        return self.coordinator.budget_w > 0

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Clear the manual limit; restore up to the next binding limit."""
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        await curtailer.async_clear_limit(SOURCE_MANUAL)
        budget = curtailer.budget()
        if budget.limited and budget.power_w <= 0:
            assert budget.limit is not None
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="site_limit_binds",
                translation_placeholders={
                    "site": self.coordinator.config_entry.title,
                    "source": source_text(budget.binding),
                    "until": until_text(budget.limit),
                },
            )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Set the manual limit to 0: every miner that can stop stops at once."""
        await site_runtime(self.coordinator.config_entry).curtailer.async_set_limit(
            SOURCE_MANUAL, 0
        )


class SitePowerBudgetNumber(SiteEntity, NumberEntity):
    """The site's manual limit in kW; the maximum means no manual limit.

    Setting it sets the manual limit (like `hashgrid.set_power_budget`); the
    other sources' limits still hold (see the Effective budget sensor).
    """

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
        """Return the manual limit (the maximum while there is none)."""
        manual = self.coordinator.limits.get(SOURCE_MANUAL)
        if manual is None:
            return self.native_max_value
        return min(manual.power_w / 1000, self.native_max_value)

    async def async_set_native_value(self, value: float) -> None:
        """Set the manual limit (the maximum clears it)."""
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
