"""A miner as a room heater: a thermostat per miner (the `climate` platform).

A site's limits are the site's: a limit named for one miner would hold the
whole site, so the heater sets none. It starts and stops its own miner
exactly as the miner's Mining switch does, through the site's curtailer (the
one path that commands a miner): a start is refused while the site's limits
leave no room for it -- a demand-response limit of 0 always wins -- and the
heater then shows which limit binds (`blocked_by`). Off: it no longer acts
(the miner is left as it is). The mode and target survive a restart.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from homeassistant.components.climate import ClimateEntity, ClimateEntityDescription
from homeassistant.components.climate.const import (
    ATTR_HVAC_MODE,
    ClimateEntityFeature,
    HVACAction,
    HVACMode,
)
from homeassistant.const import (
    ATTR_TEMPERATURE,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.restore_state import RestoreEntity

from ..const import LOGGER
from ..models import HashGridConfigEntry
from .const import CONF_ROOM_TEMPERATURE
from .coordinator import MinerSlot, MiningSiteCoordinator
from .entity import MinerEntity
from .planner import Action
from .runtime import site_runtime

#: Below target - hysteresis the heater starts its miner; above target +
#: hysteresis it stops it; in between it leaves it as it is.
HYSTERESIS_C = 0.5
DEFAULT_TARGET_C = 20.0
MIN_TARGET_C = 5.0
MAX_TARGET_C = 35.0
ATTR_BLOCKED_BY = "blocked_by"
ATTR_ROOM_SENSOR = "room_temperature_entity"


def wanted(
    mode: HVACMode, room: float | None, target: float, mining: bool | None
) -> Action | None:
    """What the thermostat asks of its miner now: start, stop, or nothing."""
    if mode is not HVACMode.HEAT or room is None or mining is None:
        return None
    if room < target - HYSTERESIS_C and not mining:
        return "resume"
    if room > target + HYSTERESIS_C and mining:
        return "stop"
    return None


class MinerHeater(MinerEntity, ClimateEntity, RestoreEntity):
    """A thermostat that heats a room with its miner, within the site's limits."""

    _attr_hvac_modes = [HVACMode.HEAT, HVACMode.OFF]
    _attr_supported_features = (
        ClimateEntityFeature.TARGET_TEMPERATURE
        | ClimateEntityFeature.TURN_ON
        | ClimateEntityFeature.TURN_OFF
    )
    _attr_target_temperature_step = 0.5
    _attr_min_temp = MIN_TARGET_C
    _attr_max_temp = MAX_TARGET_C
    follows_state_read = True

    def __init__(
        self,
        coordinator: MiningSiteCoordinator,
        slot: MinerSlot,
        description: ClimateEntityDescription,
    ) -> None:
        """A new heater is off, at the default target, until told otherwise."""
        super().__init__(coordinator, slot, description)
        self._room_entity: str | None = slot.subentry.data.get(CONF_ROOM_TEMPERATURE)
        self._attr_hvac_mode = HVACMode.OFF
        self._attr_target_temperature = DEFAULT_TARGET_C
        self._attr_current_temperature = None
        self._blocked_by: str | None = None
        self._lock = asyncio.Lock()
        self._again = False

    @property
    def temperature_unit(self) -> str:
        """Return the system's unit (the room sensor's, as HA shows it)."""
        return self.hass.config.units.temperature_unit

    @property
    def hvac_action(self) -> HVACAction | None:
        """Heating while the miner mines; else idle (heat) or off."""
        reading = self.slot.reading
        if reading is None:
            return None
        if reading.is_mining:
            return HVACAction.HEATING
        return HVACAction.IDLE if self.hvac_mode is HVACMode.HEAT else HVACAction.OFF

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The room sensor, and the site limit that keeps the heater off, if one does."""
        return {ATTR_ROOM_SENSOR: self._room_entity, ATTR_BLOCKED_BY: self._blocked_by}

    async def async_added_to_hass(self) -> None:
        """Restore mode and target; follow the room sensor and the miner."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None:
            if last.state in (HVACMode.HEAT, HVACMode.OFF):
                self._attr_hvac_mode = HVACMode(last.state)
            target = last.attributes.get(ATTR_TEMPERATURE)
            if isinstance(target, int | float) and math.isfinite(target):
                self._attr_target_temperature = float(target)
        # After the miner's own listener (the state write): act on each reading.
        listeners = self.slot.listeners
        listeners[self._miner_read] = True

        @callback
        def _forget() -> None:
            listeners.pop(self._miner_read, None)

        self.async_on_remove(_forget)
        if self._room_entity:
            self._read_room()
            self.async_on_remove(
                async_track_state_change_event(
                    self.hass, self._room_entity, self._room_changed
                )
            )
        self._act_soon()

    def _read_room(self) -> None:
        """Take the room's temperature from its sensor (None while it has none)."""
        state = self.hass.states.get(self._room_entity) if self._room_entity else None
        value: float | None = None
        if state is not None and state.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE):
            try:
                value = float(state.state)
            except ValueError:
                value = None
            if value is not None and not math.isfinite(value):
                value = None
        self._attr_current_temperature = value

    @callback
    def _room_changed(self, event: Event[EventStateChangedData]) -> None:
        self._read_room()
        self.async_write_ha_state()
        self._act_soon()

    @callback
    def _miner_read(self) -> None:
        self._act_soon()

    @callback
    def _act_soon(self) -> None:
        """Act in the background; while an action is under way, once more after it."""
        if self._lock.locked():
            self._again = True
            return
        self.coordinator.config_entry.async_create_background_task(
            self.hass, self._async_act(), f"hashgrid_heater_{self.slot.subentry_id}"
        )

    async def _async_act(self) -> None:
        """Start or stop the miner as the room asks (one action at a time)."""
        async with self._lock:
            self._again = True
            while self._again:
                self._again = False
                await self._async_act_once()

    async def _async_act_once(self) -> None:
        reading = self.slot.reading
        action = wanted(
            self.hvac_mode or HVACMode.OFF,
            self.current_temperature,
            self.target_temperature or DEFAULT_TARGET_C,
            None if reading is None else reading.is_mining,
        )
        blocked = await self._command(action) if action is not None else None
        if blocked != self._blocked_by and self.entity_id:
            self._blocked_by = blocked
            self.async_write_ha_state()

    async def _command(self, action: Action) -> str | None:
        """Start or stop as the Mining switch does; the binding limit, if refused."""
        slot = self.slot
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        power_w: float | None = None
        if action == "resume" and slot.info is not None and slot.info.can_set_power:
            power_w = slot.power_target_w
        try:
            # A miner that does not obey is logged (and repaired) by the curtailer.
            await curtailer.async_command_miner(slot, action, power_w)
        except ServiceValidationError:
            # The site's limits leave no room: the heater yields, and says why.
            return curtailer.budget().binding
        except HomeAssistantError as err:
            LOGGER.warning("Heater %s could not %s: %s", self.entity_id, action, err)
        return None

    async def async_set_hvac_mode(self, hvac_mode: HVACMode) -> None:
        """Heat (act now) or off (no longer act)."""
        self._attr_hvac_mode = HVACMode(hvac_mode)
        self.async_write_ha_state()
        await self._async_act()

    async def async_set_temperature(self, **kwargs: Any) -> None:
        """Set the target (and the mode, if given); act on it now."""
        if (target := kwargs.get(ATTR_TEMPERATURE)) is not None:
            self._attr_target_temperature = float(target)
        if (mode := kwargs.get(ATTR_HVAC_MODE)) is not None:
            self._attr_hvac_mode = HVACMode(mode)
        self.async_write_ha_state()
        await self._async_act()


async def async_setup_climates(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a heater to each miner that can stop (the Mining switch's miners)."""
    coordinator = site_runtime(entry).coordinator
    for slot in coordinator.slots.values():
        if slot.info is None or slot.info.can_stop:
            async_add_entities(
                [
                    MinerHeater(
                        coordinator,
                        slot,
                        ClimateEntityDescription(
                            key="heater", translation_key="heater"
                        ),
                    )
                ],
                config_subentry_id=slot.subentry_id,
            )
