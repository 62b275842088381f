"""Miners as heaters: a thermostat per miner, in a real HA against simulated miners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeassistant.components.climate.const import HVACAction, HVACMode
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntry
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.hashgrid.mining.climate import settings_of
from custom_components.hashgrid.mining.heater import Settings
from simulators.miner import Fleet

from .conftest import miner_subentry, setup_site
from .test_site import entity_id, miner_uid
from .test_site_limits import clear_limit, set_limit

ROOM = "sensor.garage_temperature"


def room(hass: HomeAssistant, celsius: float) -> None:
    """Set the room sensor's temperature."""
    hass.states.async_set(
        ROOM,
        str(celsius),
        {"unit_of_measurement": "°C", "device_class": "temperature"},
    )


async def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait (real time: real sockets) until check() holds."""
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110  (the miners are no HA state)
            await asyncio.sleep(0.05)


@pytest.fixture
async def heated(hass: HomeAssistant, fleet: Fleet) -> ConfigEntry:
    """The three miners; the LuxOS one heats the garage (its room sensor)."""
    room(hass, 19.0)
    lux, ant, axe = fleet.miners
    return await setup_site(
        hass,
        [
            # No minimum on/off time: these tests run in real time.
            await miner_subentry(
                lux.ip,
                priority=10,
                room_temperature_entity=ROOM,
                heater_min_cycle_min=0,
            ),
            await miner_subentry(ant.ip, priority=50),
            await miner_subentry(axe.ip, priority=90),
        ],
    )


def heater_id(hass: HomeAssistant, site: ConfigEntry) -> str:
    """The LuxOS miner's heater."""
    return entity_id(hass, "climate", f"{miner_uid(site, 0)}_heater")


def heater(hass: HomeAssistant, site: ConfigEntry) -> State:
    """The LuxOS miner's heater's state."""
    state = hass.states.get(heater_id(hass, site))
    assert state is not None
    return state


async def set_heat(hass: HomeAssistant, site: ConfigEntry, target: float) -> None:
    """Heat to the target (one call, as a person would)."""
    await hass.services.async_call(
        "climate",
        "set_temperature",
        {
            "entity_id": heater_id(hass, site),
            "temperature": target,
            "hvac_mode": "heat",
        },
        blocking=True,
    )


async def test_heater_holds_the_room(
    hass: HomeAssistant, heated: ConfigEntry, fleet: Fleet
) -> None:
    """Warm room → the miner stops; cold room → it mines; off → no longer acts."""
    lux, ant, axe = fleet.miners
    state = heater(hass, heated)
    # A new heater is off (it acts only once told to heat) and shows the room.
    assert state.state == HVACMode.OFF
    assert state.attributes["current_temperature"] == 19.0
    assert state.attributes["hvac_action"] == HVACAction.HEATING  # it mines
    assert state.attributes["room_temperature_entity"] == ROOM
    assert set(state.attributes["hvac_modes"]) == {HVACMode.HEAT, HVACMode.OFF}

    room(hass, 22.0)
    await set_heat(hass, heated, 20.0)
    assert not lux.mining
    assert ant.mining  # only its own miner: no site limit
    assert axe.mining
    await until(lambda: heater(hass, heated).attributes["hvac_action"] == "idle")
    assert heater(hass, heated).state == HVACMode.HEAT
    assert not heated.runtime_data.coordinator.limits.active(0)

    # Within the hysteresis: left as it is.
    room(hass, 19.8)
    await hass.async_block_till_done()
    await asyncio.sleep(0.3)
    assert not lux.mining

    room(hass, 19.0)
    await until(lambda: lux.mining)
    await until(lambda: heater(hass, heated).attributes["hvac_action"] == "heating")

    room(hass, 20.3)
    await hass.async_block_till_done()
    await asyncio.sleep(0.3)
    assert lux.mining

    room(hass, 21.0)
    await until(lambda: not lux.mining)

    # Off: the heater no longer acts, whatever the room.
    await hass.services.async_call(
        "climate", "turn_off", {"entity_id": heater_id(hass, heated)}, blocking=True
    )
    room(hass, 15.0)
    await hass.async_block_till_done()
    await asyncio.sleep(0.3)
    assert not lux.mining
    state = heater(hass, heated)
    assert state.state == HVACMode.OFF
    assert state.attributes["hvac_action"] == HVACAction.OFF


async def test_a_site_limit_of_zero_wins(
    hass: HomeAssistant, heated: ConfigEntry, fleet: Fleet
) -> None:
    """A DR limit of 0 holds the heater off (it says so); cleared, it heats."""
    lux, ant, _axe = fleet.miners  # the Bitaxe cannot stop
    await set_limit(hass, heated, "demand_response", 0)
    assert not lux.mining
    assert not ant.mining

    room(hass, 17.0)
    await set_heat(hass, heated, 21.0)
    assert not lux.mining
    state = heater(hass, heated)
    assert state.attributes["blocked_by"] == "demand_response"
    assert state.attributes["hvac_action"] == HVACAction.IDLE
    # A colder room, a new reading: still held off.
    room(hass, 16.0)
    await heated.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    await asyncio.sleep(0.3)
    assert not lux.mining

    await clear_limit(hass, heated, "demand_response")
    await until(lambda: lux.mining)
    await until(lambda: heater(hass, heated).attributes["blocked_by"] is None)


async def test_restart_keeps_target_and_mode(
    hass: HomeAssistant, heated: ConfigEntry, fleet: Fleet
) -> None:
    """Mode, preset and target are restored after a restart; it acts again."""
    lux = fleet.miners[0]
    room(hass, 23.0)
    await set_heat(hass, heated, 21.5)
    assert not lux.mining
    await hass.services.async_call(
        "climate",
        "set_preset_mode",
        {"entity_id": heater_id(hass, heated), "preset_mode": "eco"},
        blocking=True,
    )

    await hass.config_entries.async_unload(heated.entry_id)
    await hass.async_block_till_done()
    lux.physics.set_mining(True)  # someone woke it while HA was down
    assert await hass.config_entries.async_setup(heated.entry_id)
    await hass.async_block_till_done()

    state = heater(hass, heated)
    assert state.state == HVACMode.HEAT
    assert state.attributes["temperature"] == 21.5
    assert state.attributes["preset_mode"] == "eco"
    await until(lambda: not lux.mining)  # the room is warm: it stops again


async def test_room_sensor_chosen_in_reconfigure(
    hass: HomeAssistant, fleet: Fleet
) -> None:
    """The miner's reconfigure step takes the room sensor; the heater reads it."""
    room(hass, 18.5)
    site = await setup_site(hass, [await miner_subentry(fleet.miners[0].ip)])
    state = heater(hass, site)
    assert state.attributes["current_temperature"] is None
    subentry = next(iter(site.subentries.values()))
    result = await hass.config_entries.subentries.async_init(
        (site.entry_id, "miner"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    assert "room_temperature_entity" in result["data_schema"].schema
    assert "heater_hysteresis" in result["data_schema"].schema
    assert "heater_min_cycle_min" in result["data_schema"].schema
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "priority": 50,
            "room_temperature_entity": ROOM,
            "heater_hysteresis": 1.0,
            "heater_min_cycle_min": 10,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    data = site.subentries[subentry.subentry_id].data
    assert data["room_temperature_entity"] == ROOM
    assert settings_of(data) == Settings(1.0, 600.0, 600.0)
    await until(lambda: heater(hass, site).attributes["current_temperature"] == 18.5)

    # Cleared again: the heater has no room.
    result = await hass.config_entries.subentries.async_init(
        (site.entry_id, "miner"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"priority": 50}
    )
    await hass.async_block_till_done()
    data = site.subentries[subentry.subentry_id].data
    assert "room_temperature_entity" not in data
    assert "heater_hysteresis" not in data
    assert settings_of(data) == Settings()  # the defaults: 0.5 °C, 5 min
    await until(lambda: heater(hass, site).attributes["current_temperature"] is None)
