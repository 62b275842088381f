"""A miner as a room heater: a thermostat per miner (the `climate` platform).

The thermostat's decisions are `heater.py`'s (pure logic): it steps the miner
through its heat steps -- work modes, power targets, stop -- to hold the room
at the target, with a hysteresis and minimum on/off times (the miner's
options). This entity feeds it the room sensor, the miner's readings and what
the site's limits leave room for, and carries its decisions out.

A site's limits are the site's: a limit named for one miner would hold the
whole site, so the heater sets none. It commands its own miner exactly as the
miner's Mining switch and Work mode select do, through the site's curtailer
(the one path that commands a miner), and asks only for a step the site's
limits leave room for -- a demand-response limit of 0 always wins. The eco
preset heats only within the site's solar limit (none set: no solar power to
heat with). When a limit holds it back, `blocked_by` names it. While it
heats, the step it chose is a cap the site's planner honours (the slot's
`heat_max_w`, set before each command): a limit set or cleared never raises
the miner above it nor resumes a miner the heater stopped, while a lower limit
still lowers or stops it. Off: it no longer acts and releases the cap (the
miner is left as it is). Mode, preset, target and cap survive a restart.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from homeassistant.components.climate import ClimateEntity, ClimateEntityDescription
from homeassistant.components.climate.const import (
    ATTR_HVAC_MODE,
    ATTR_PRESET_MODE,
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
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.restore_state import RestoreEntity

from ..const import DOMAIN, LOGGER
from ..models import HashGridConfigEntry
from .const import CONF_ROOM_TEMPERATURE
from .coordinator import MinerSlot, MiningSiteCoordinator, signal_miner_state
from .curtailment import TARGET_TOLERANCE_W, now_ts
from .entity import MinerEntity
from .heater import (
    BLOCKED_SOLAR,
    CONF_HYSTERESIS,
    CONF_MIN_CYCLE,
    PRESET_ECO,
    PRESET_NONE,
    Decision,
    HeatStep,
    Settings,
    decide,
    heat_steps,
    step_of,
)
from .limits import SOURCE_SOLAR
from .planner import Action
from .runtime import site_runtime

DEFAULT_TARGET_C = 20.0
MIN_TARGET_C = 5.0
MAX_TARGET_C = 35.0
ATTR_BLOCKED_BY = "blocked_by"
ATTR_ROOM_SENSOR = "room_temperature_entity"
ATTR_HEAT_STEP = "heat_step"


def settings_of(options: Any) -> Settings:
    """The thermostat's settings from a miner's options (defaults if unset)."""
    settings = Settings()
    hysteresis = options.get(CONF_HYSTERESIS)
    cycle_min = options.get(CONF_MIN_CYCLE)
    if isinstance(hysteresis, int | float) and 0 < hysteresis <= 5:
        settings = Settings(hysteresis_c=float(hysteresis))
    if isinstance(cycle_min, int | float) and 0 <= cycle_min <= 120:
        cycle_s = float(cycle_min) * 60
        settings = Settings(settings.hysteresis_c, cycle_s, cycle_s)
    return settings


class MinerHeater(MinerEntity, ClimateEntity, RestoreEntity):
    """A thermostat that heats a room with its miner, within the site's limits."""

    _attr_hvac_modes = [HVACMode.HEAT, HVACMode.OFF]
    _attr_preset_modes = [PRESET_NONE, PRESET_ECO]
    _attr_supported_features = (
        ClimateEntityFeature.TARGET_TEMPERATURE
        | ClimateEntityFeature.PRESET_MODE
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
        data = slot.subentry.data
        self._room_entity: str | None = data.get(CONF_ROOM_TEMPERATURE)
        self._settings = settings_of(data)
        self._attr_hvac_mode = HVACMode.OFF
        self._attr_preset_mode = PRESET_NONE
        self._attr_target_temperature = DEFAULT_TARGET_C
        self._attr_current_temperature = None
        self._blocked_by: str | None = None
        self._lock = asyncio.Lock()
        self._again = False
        # What the heater saw of its miner: started or stopped, and its step,
        # and when each last changed (for the minimum times).
        self._was_mining: bool | None = None
        self._last_step: int | None = None
        self._resume_at = 0
        self._switched_at = -math.inf
        self._stepped_at = -math.inf

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
        """The room sensor, the step it heats at, and the limit holding it back."""
        return {
            ATTR_ROOM_SENSOR: self._room_entity,
            ATTR_HEAT_STEP: self._step_name(),
            ATTR_BLOCKED_BY: self._blocked_by,
        }

    def _steps(self) -> tuple[HeatStep, ...]:
        """The miner's heat steps (its work modes, power targets, or full power)."""
        state = self.slot.state()
        info = self.slot.info
        modes = info.work_modes if info is not None else ()
        return heat_steps(
            work_modes=[(m.name, m.power_w) for m in modes],
            min_power_w=state.min_power_w,
            max_power_w=state.max_power_w,
            targetable=state.targetable,
        )

    def _current_step(self, steps: tuple[HeatStep, ...]) -> int | None:
        """The step the miner runs at (None: stopped or unknown)."""
        reading = self.slot.reading
        if reading is None or not reading.is_mining:
            return None
        return step_of(
            steps,
            work_mode=reading.work_mode,
            power_w=self.slot.power_target_w
            or reading.power_target_w
            or reading.power_w,
        )

    def _step_name(self) -> str | None:
        if self.slot.reading is None or self.slot.info is None:
            return None
        steps = self._steps()
        current = self._current_step(steps)
        return None if current is None else steps[current].name

    async def async_added_to_hass(self) -> None:
        """Restore mode, preset and target; follow the room, miner and limits."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None:
            if last.state in (HVACMode.HEAT, HVACMode.OFF):
                self._attr_hvac_mode = HVACMode(last.state)
            if last.attributes.get(ATTR_PRESET_MODE) in (PRESET_NONE, PRESET_ECO):
                self._attr_preset_mode = last.attributes[ATTR_PRESET_MODE]
            target = last.attributes.get(ATTR_TEMPERATURE)
            if isinstance(target, int | float) and math.isfinite(target):
                self._attr_target_temperature = float(target)
        if self.hvac_mode is not HVACMode.HEAT:
            # A cap kept from before (the site's store) is the heater's only.
            self.slot.heat_max_w = None
        # After the heater's own state write (connected first, so called
        # first): act on each reading of the miner, read-backs included.
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_miner_state(self.slot.subentry_id), self._miner_read
            )
        )
        # The site's limits changed (or the site was read): act on them. Each
        # poll (every 10 s) so decides again: a minimum time that has passed
        # needs no timer of its own.
        self.async_on_remove(self.coordinator.async_add_listener(self._miner_read))
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
        if self.hvac_mode is HVACMode.HEAT or self._blocked_by is not None:
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
        """Step the miner as the room asks (one action at a time)."""
        async with self._lock:
            self._again = True
            while self._again:
                self._again = False
                await self._async_act_once()

    def _observe(self, now: float, current: int | None) -> None:
        """Note when the miner started, stopped or changed step (by anyone)."""
        mining = current is not None
        if self._was_mining is not None and mining != self._was_mining:
            self._switched_at = now
        if None not in (self._last_step, current) and current != self._last_step:
            self._stepped_at = now
        self._was_mining = mining
        if current is not None:
            self._last_step = self._resume_at = current

    async def _async_act_once(self) -> None:
        reading = self.slot.reading
        blocked: str | None = None
        if (
            self.hvac_mode is HVACMode.HEAT
            and reading is not None
            and self.slot.info is not None
        ):
            now = now_ts()
            steps = self._steps()
            current = self._current_step(steps)
            self._observe(now, current)
            allowed, reason = self._allowed(steps)

            def decision_within(allowed: int) -> Decision:
                return decide(
                    self._settings,
                    now=now,
                    room_c=self.current_temperature,
                    target_c=self.target_temperature or DEFAULT_TARGET_C,
                    current=current,
                    top=len(steps) - 1,
                    allowed=allowed,
                    resume_at=self._resume_at,
                    switched_at=self._switched_at,
                    stepped_at=self._stepped_at,
                )

            decision = wanted = decision_within(allowed)
            if decision.capped:
                blocked = reason
                if not self._eco_in_the_dark():
                    # A site limit holds it back: the planner may give it
                    # what the room asks for once the limit rises (a cold
                    # room: its top step, at once, as for any miner).
                    wanted = decision_within(len(steps) - 1)
                    room_c = self.current_temperature
                    target_c = self.target_temperature or DEFAULT_TARGET_C
                    if (
                        room_c is not None
                        and room_c < target_c - self._settings.hysteresis_c / 2
                    ):
                        wanted = Decision(len(steps) - 1)
            # The step it wants is the planner's cap for this miner (set
            # before commanding: a limit changed meanwhile plans within it).
            self._cap(steps, wanted.step)
            if decision.step != current:
                refused = await self._command(steps, current, decision.step)
                blocked = refused or blocked
                now_at = self._current_step(steps)
                if refused:
                    self._cap(steps, now_at)
                self._observe(now, now_at)
        elif self.hvac_mode is not HVACMode.HEAT:
            # Off: the planner may raise or resume the miner again.
            self.slot.heat_max_w = None
        if blocked != self._blocked_by and self.entity_id:
            self._blocked_by = blocked
            self.async_write_ha_state()

    def _cap(self, steps: tuple[HeatStep, ...], step: int | None) -> None:
        """Hold the site's planner to a step (None: stopped, not resumed)."""
        self.slot.heat_max_w = 0.0 if step is None else steps[step].power_w

    def _eco_in_the_dark(self) -> bool:
        """Eco with no solar limit active (no site limit holds it: eco does)."""
        if self.preset_mode != PRESET_ECO:
            return False
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        solar = curtailer.limits.get(SOURCE_SOLAR)
        return solar is None or not solar.active_at(now_ts())

    def _allowed(self, steps: tuple[HeatStep, ...]) -> tuple[int, str | None]:
        """The highest step the limits leave room for, and what binds above it."""
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        budget = curtailer.budget()
        solar_w: float | None = None
        others_w = 0.0
        if eco := self.preset_mode == PRESET_ECO:
            solar = curtailer.limits.get(SOURCE_SOLAR)
            if solar is not None and solar.active_at(now_ts()):
                solar_w = solar.power_w
            others_w = math.fsum(
                s.power_w
                for s in self.coordinator.miner_states()
                if s.miner_id != self.slot.subentry_id and (s.mining or not s.can_stop)
            )
        reason: str | None = None
        for index in reversed(range(len(steps))):
            power_w = steps[index].power_w
            if curtailer.headroom_refusal(self.slot, power_w) is not None:
                reason = budget.binding_option
            elif eco and (
                solar_w is None or others_w + power_w > solar_w + TARGET_TOLERANCE_W
            ):
                reason = BLOCKED_SOLAR
            else:
                return index, reason
        return -1, reason

    async def _command(
        self, steps: tuple[HeatStep, ...], current: int | None, want: int | None
    ) -> str | None:
        """Bring the miner to a step (None: stop); the binding limit, if refused."""
        info = self.slot.info
        assert info is not None
        if want is None:
            return await self._send("stop")
        step = steps[want]
        if current is None:
            power_w = step.power_w if info.can_set_power else None
            if (refused := await self._send("resume", power_w)) is not None:
                return refused
            if step.work_mode is None or info.power_by_mode:
                return None
        elif step.work_mode is None and not info.can_set_power:
            return None
        return await self._send("set_power", step.power_w, step.work_mode)

    async def _send(
        self, action: Action, power_w: float | None = None, work_mode: str | None = None
    ) -> str | None:
        """One command as the miner's own controls send it; the limit, if refused."""
        curtailer = site_runtime(self.coordinator.config_entry).curtailer
        try:
            # A miner that does not obey is logged (and repaired) by the curtailer.
            await curtailer.async_command_miner(
                self.slot, action, power_w, work_mode=work_mode
            )
        except ServiceValidationError:
            # The site's limits leave no room: the heater yields, and says why.
            return curtailer.budget().binding_option
        except HomeAssistantError as err:
            LOGGER.warning("Heater %s could not %s: %s", self.entity_id, action, err)
        return None

    async def async_set_hvac_mode(self, hvac_mode: HVACMode) -> None:
        """Heat (act now) or off (no longer act)."""
        self._attr_hvac_mode = HVACMode(hvac_mode)
        self.async_write_ha_state()
        await self._async_act()

    async def async_set_preset_mode(self, preset_mode: str) -> None:
        """None (within the site's limits) or eco (only on solar power)."""
        self._attr_preset_mode = preset_mode
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


HEATER = ClimateEntityDescription(key="heater", translation_key="heater")


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
                [MinerHeater(coordinator, slot, HEATER)],
                config_subentry_id=slot.subentry_id,
            )


@callback
def async_release_disabled_heaters(
    hass: HomeAssistant, coordinator: MiningSiteCoordinator
) -> None:
    """Drop the stored cap of each heater the user disabled.

    A disabled heater is never added, so its cap (kept in the site's store)
    must not hold its miner back. Run before the limits are enforced again.
    """
    registry = er.async_get(hass)
    for slot in coordinator.slots.values():
        if slot.heat_max_w is None:
            continue
        unique_id = MinerHeater(coordinator, slot, HEATER).unique_id
        entity_id = registry.async_get_entity_id("climate", DOMAIN, str(unique_id))
        if entity_id and (found := registry.async_get(entity_id)) and found.disabled:
            slot.heat_max_w = None
