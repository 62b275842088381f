"""A home site in Home Assistant: Avalon Nano 3S, Whatsminer, AxeOS 2.14.

What a user sees and does: the work mode select, the mining switches and the
power target, the site curtailed and resumed with every miner confirmed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.miner import Fleet, running_fleet
from tests.net import addr

from .conftest import TIME_SCALE, miner_subentry, setup_site

BASE = addr("2.101")


@pytest.fixture
async def home(loopback: None) -> AsyncIterator[Fleet]:
    """Avalon Nano 3S, Whatsminer M30S+, Bitaxe on AxeOS 2.14."""
    async with running_fleet(
        3, BASE, ("avalon_nano3s", "whatsminer", "bitaxe"), time_scale=TIME_SCALE
    ) as running:
        running.miners[2].personality.version = "v2.14.0"
        yield running


@pytest.fixture
async def site(hass: HomeAssistant, home: Fleet) -> ConfigEntry:
    """The three miners in one site."""
    return await setup_site(
        hass, [await miner_subentry(m.ip, priority=50) for m in home.miners], "Home"
    )


def entity(hass: HomeAssistant, site: ConfigEntry, index: int, key: str) -> str:
    """The entity id of the index-th miner's entity `key` (platform.key)."""
    platform, _, suffix = key.partition(".")
    subentry = list(site.subentries.values())[index]
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{subentry.unique_id}_{suffix}"
    )
    assert found is not None, key
    return found


async def test_avalon_work_mode_select(
    hass: HomeAssistant, site: ConfigEntry, home: Fleet
) -> None:
    nano = home.miners[0]
    select_id = entity(hass, site, 0, "select.work_mode")
    state = hass.states.get(select_id)
    assert state is not None
    assert state.state == "high"
    assert state.attributes["options"] == ["low", "medium", "high"]
    assert (
        state.name == f"{site.subentries[next(iter(site.subentries))].title} Work mode"
    )
    await hass.services.async_call(
        "select",
        "select_option",
        {ATTR_ENTITY_ID: select_id, "option": "medium"},
        blocking=True,
    )
    assert nano.power_target_w == 100
    assert hass.states.get(select_id).state == "medium"
    # The power target follows (a work mode is a power step).
    number_id = entity(hass, site, 0, "number.power_target")
    assert float(hass.states.get(number_id).state) == 100
    await hass.services.async_call(
        "number",
        "set_value",
        {ATTR_ENTITY_ID: number_id, "value": 90},
        blocking=True,
    )
    assert nano.power_target_w == 70  # the highest mode at or below 90 W
    assert hass.states.get(select_id).state == "low"
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "select",
            "select_option",
            {ATTR_ENTITY_ID: select_id, "option": "turbo"},
            blocking=True,
        )
    # Only firmwares with work modes have one (Avalon, Whatsminer; not AxeOS).
    registry = er.async_get(hass)
    for index in (2,):
        uid = list(site.subentries.values())[index].unique_id
        assert not registry.async_get_entity_id("select", DOMAIN, f"{uid}_work_mode")


async def test_each_miner_stops_and_resumes_from_its_switch(
    hass: HomeAssistant, site: ConfigEntry, home: Fleet
) -> None:
    for index, sim in enumerate(home.miners):
        switch_id = entity(hass, site, index, "switch.mining")
        assert hass.states.get(switch_id).state == STATE_ON
        await hass.services.async_call(
            "switch", "turn_off", {ATTR_ENTITY_ID: switch_id}, blocking=True
        )
        assert sim.mining is False, sim
        assert hass.states.get(switch_id).state == STATE_OFF
        await hass.services.async_call(
            "switch", "turn_on", {ATTR_ENTITY_ID: switch_id}, blocking=True
        )
        assert sim.mining is True, sim
        assert hass.states.get(switch_id).state == STATE_ON


async def test_whatsminer_power_target(
    hass: HomeAssistant, site: ConfigEntry, home: Fleet
) -> None:
    number_id = entity(hass, site, 1, "number.power_target")
    await hass.services.async_call(
        "number", "set_value", {ATTR_ENTITY_ID: number_id, "value": 2500}, blocking=True
    )
    assert home.miners[1].power_target_w == 2500
    assert float(hass.states.get(number_id).state) == 2500


async def test_mixed_home_fleet_curtailed_and_resumed(
    hass: HomeAssistant, site: ConfigEntry, home: Fleet
) -> None:
    response = await hass.services.async_call(
        DOMAIN,
        "curtail",
        {"config_entry_id": site.entry_id},
        blocking=True,
        return_response=True,
    )
    outcomes = {m["host"]: m for m in response["miners"]}
    assert {ip: o["success"] for ip, o in outcomes.items()} == {
        m.ip: True for m in home.miners
    }
    assert not any(m.mining for m in home.miners)
    response = await hass.services.async_call(
        DOMAIN,
        "resume",
        {"config_entry_id": site.entry_id, "stagger": 0},
        blocking=True,
        return_response=True,
    )
    assert all(m["success"] for m in response["miners"])
    assert len(response["miners"]) == 3
    assert all(m.mining for m in home.miners)
