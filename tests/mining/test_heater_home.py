"""An Avalon Nano 3S as a heater: its work modes as heat steps, the eco preset,
HA's climate services and voice, and its state (snapshot)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from homeassistant.components.climate.const import HVACAction, HVACMode
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, intent
from homeassistant.setup import async_setup_component
import pytest
from syrupy.assertion import SnapshotAssertion

from simulators.miner import SimulatedMiner, running_fleet
from tests.net import addr

from .conftest import TIME_SCALE, miner_subentry, setup_site
from .test_heater import until
from .test_site import entity_id
from .test_site_limits import clear_limit, set_limit

BASE = addr("2.191")
ROOM = "sensor.garage_temperature"


def room(hass: HomeAssistant, celsius: float) -> None:
    """Set the room sensor's temperature."""
    hass.states.async_set(
        ROOM, str(celsius), {"unit_of_measurement": "°C", "device_class": "temperature"}
    )


@pytest.fixture
async def nano(loopback: None) -> AsyncIterator[SimulatedMiner]:
    """An Avalon Nano 3S (low 70 W, medium 100 W, high 140 W)."""
    async with running_fleet(
        1, BASE, ("avalon_nano3s",), time_scale=TIME_SCALE
    ) as fleet:
        yield fleet.miners[0]


@pytest.fixture
async def site(hass: HomeAssistant, nano: SimulatedMiner) -> AsyncIterator[ConfigEntry]:
    """The Nano heats the garage (no minimum on/off time: real time here)."""
    room(hass, 17.0)
    entry = await setup_site(
        hass,
        [
            await miner_subentry(
                nano.ip, room_temperature_entity=ROOM, heater_min_cycle_min=0
            )
        ],
    )
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


def heater_id(hass: HomeAssistant, site: ConfigEntry) -> str:
    subentry = next(iter(site.subentries.values()))
    return entity_id(hass, "climate", f"{subentry.unique_id}_heater")


def heater(hass: HomeAssistant, site: ConfigEntry) -> State:
    state = hass.states.get(heater_id(hass, site))
    assert state is not None
    return state


async def call(hass: HomeAssistant, site: ConfigEntry, service: str, **data) -> None:
    await hass.services.async_call(
        "climate",
        service,
        {"entity_id": heater_id(hass, site), **data},
        blocking=True,
    )


def shows(hass: HomeAssistant, site: ConfigEntry, **want: object) -> Callable[[], bool]:
    """True once the heater's attributes show all of `want`."""
    return lambda: all(
        heater(hass, site).attributes.get(k) == v for k, v in want.items()
    )


async def test_eco_heats_only_on_solar(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """Eco: no solar limit, no heat; within the solar limit, the step that fits;
    the preset none heats from any power the site's limits allow."""
    await call(hass, site, "set_preset_mode", preset_mode="eco")
    await call(hass, site, "set_temperature", temperature=21.0, hvac_mode="heat")
    # The room is cold, but the site has no solar power to give: it stops.
    await until(lambda: not nano.mining)
    await until(shows(hass, site, blocked_by="solar", hvac_action=HVACAction.IDLE))

    # 80 W of solar: the low mode (70 W) fits, medium does not.
    await set_limit(hass, site, "solar", 0.08)
    await until(lambda: nano.mining)
    await until(shows(hass, site, heat_step="low", blocked_by="solar"))
    assert heater(hass, site).attributes["hvac_action"] == HVACAction.HEATING
    assert nano.power_target_w == 70

    # 200 W: the room is cold, the heater climbs to high; nothing holds it.
    await set_limit(hass, site, "solar", 0.2)
    await until(shows(hass, site, heat_step="high", blocked_by=None))
    assert nano.power_target_w == 140

    # The sun goes: no solar limit at all: eco stops (the site would allow it).
    await clear_limit(hass, site, "solar")
    await until(lambda: not nano.mining)
    await until(shows(hass, site, blocked_by="solar"))

    # Preset none: heats from the grid, within the site's (no) limits.
    await call(hass, site, "set_preset_mode", preset_mode="none")
    await until(lambda: nano.mining)
    await until(shows(hass, site, blocked_by=None, heat_step="high"))


async def test_site_limit_caps_the_step(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """A site limit between two modes: the heater asks only for the mode that
    fits (and says which limit holds it); cleared, it steps up again."""
    await call(hass, site, "set_temperature", temperature=22.0, hvac_mode="heat")
    await set_limit(hass, site, "price", 0.11)
    await until(shows(hass, site, heat_step="medium", blocked_by="price"))
    assert nano.mining
    assert nano.power_target_w == 100
    await clear_limit(hass, site, "price")
    await until(shows(hass, site, heat_step="high", blocked_by=None))


async def test_steps_down_before_it_stops(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """Above T + h/2 a step down at a time (work modes); above T + h it stops."""
    await call(hass, site, "set_temperature", temperature=20.0, hvac_mode="heat")
    assert heater(hass, site).attributes["heat_step"] == "high"
    room(hass, 20.3)
    await until(shows(hass, site, heat_step="medium"))
    assert nano.mining
    assert nano.power_target_w == 100
    room(hass, 21.0)
    await until(lambda: not nano.mining)
    await until(shows(hass, site, hvac_action=HVACAction.IDLE, heat_step=None))
    # Cold again: it starts at the step it last ran at.
    room(hass, 19.0)
    await until(lambda: nano.mining)
    await until(shows(hass, site, heat_step="medium"))


async def test_climate_services_and_voice(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """HA's climate actions and the voice intent work as for any thermostat."""
    await call(hass, site, "set_hvac_mode", hvac_mode="heat")
    assert heater(hass, site).state == HVACMode.HEAT
    await call(hass, site, "set_temperature", temperature=16.0)
    assert heater(hass, site).attributes["temperature"] == 16.0
    await until(lambda: not nano.mining)  # 17 °C is warm enough now
    await call(hass, site, "set_preset_mode", preset_mode="eco")
    assert heater(hass, site).attributes["preset_mode"] == "eco"
    with pytest.raises(ServiceValidationError):
        await call(hass, site, "set_preset_mode", preset_mode="boost")
    await call(hass, site, "set_preset_mode", preset_mode="none")
    await call(hass, site, "turn_off")
    assert heater(hass, site).state == HVACMode.OFF
    await call(hass, site, "turn_on")
    assert heater(hass, site).state == HVACMode.HEAT

    # "Set the garage heater to 21 degrees": HA's own climate intent.
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "intent", {})
    await hass.async_block_till_done()  # the climate intents are registered
    er.async_get(hass).async_update_entity(
        heater_id(hass, site), aliases={"Garage heater"}
    )
    async_expose_entity(hass, "conversation", heater_id(hass, site), True)
    response = await intent.async_handle(
        hass,
        "test",
        "HassClimateSetTemperature",
        {"name": {"value": "Garage heater"}, "temperature": {"value": 21}},
        assistant="conversation",
    )
    assert response.response_type is intent.IntentResponseType.ACTION_DONE
    assert heater(hass, site).attributes["temperature"] == 21.0
    await until(lambda: nano.mining)  # 17 °C is cold for 21


async def test_state(
    hass: HomeAssistant,
    site: ConfigEntry,
    nano: SimulatedMiner,
    snapshot: SnapshotAssertion,
) -> None:
    """The heater's state and attributes, off and heating (names hold the
    run's address, so the snapshot leaves the friendly name out)."""

    def shown() -> dict:
        state = heater(hass, site)
        return {
            "state": state.state,
            **{k: v for k, v in state.attributes.items() if k != "friendly_name"},
        }

    assert shown() == snapshot(name="off")
    await set_limit(hass, site, "solar", 0.11)
    await call(hass, site, "set_temperature", temperature=21.5, hvac_mode="heat")
    await until(shows(hass, site, heat_step="medium", blocked_by="solar"))
    assert shown() == snapshot(name="heating_capped_by_solar")
