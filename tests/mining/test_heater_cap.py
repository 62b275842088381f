"""A heater's step is a cap the site's planner honours: a site limit set or
cleared never raises the heater's miner above the step the heater chose, nor
resumes a miner the heater stopped; off releases the cap; a restart keeps it."""

from __future__ import annotations

import asyncio

from homeassistant.components.climate.const import HVACAction, HVACMode
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.hashgrid.mining.coordinator import (
    MinerSlot,
    MiningSiteCoordinator,
)
from simulators.miner import SimulatedMiner

from .test_heater import until
from .test_heater_home import call, heater, nano, room, shows, site
from .test_site_limits import clear_limit, set_limit

__all__ = ["nano", "site"]  # the fixtures


def slot_of(site: ConfigEntry) -> MinerSlot:
    return next(iter(site.runtime_data.coordinator.slots.values()))


async def stays(check, seconds: float = 0.6) -> None:
    """Assert that check() holds all along for a while (real time)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        assert check()
        await asyncio.sleep(0.05)


async def test_limit_changes_keep_the_heaters_step(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """At the low step with the room in its band, a limit cleared or raised
    leaves the miner at low (the planner used to raise it to high)."""
    await call(hass, site, "set_temperature", temperature=22.0, hvac_mode="heat")
    await until(shows(hass, site, heat_step="high"))
    # A limit holds it at low; the room cold, it would climb once it may.
    await set_limit(hass, site, "price", 0.08)
    await until(shows(hass, site, heat_step="low", blocked_by="price"))
    assert slot_of(site).heat_max_w == 140
    # The room warms into its band: low is the heater's own step now.
    room(hass, 22.0)
    await until(lambda: slot_of(site).heat_max_w == 70)

    await clear_limit(hass, site, "price")
    await hass.async_block_till_done()
    await stays(lambda: nano.mining and nano.power_target_w == 70)
    await until(shows(hass, site, heat_step="low", blocked_by=None))
    await set_limit(hass, site, "solar", 0.5)
    await hass.async_block_till_done()
    await stays(lambda: nano.mining and nano.power_target_w == 70)
    assert heater(hass, site).attributes["heat_step"] == "low"
    assert heater(hass, site).attributes["hvac_action"] == HVACAction.HEATING

    # The site's limits still cap it: DR 0 stops it.
    await set_limit(hass, site, "demand_response", 0)
    assert not nano.mining
    await until(shows(hass, site, hvac_action=HVACAction.IDLE))
    await until(lambda: slot_of(site).heat_max_w == 0)


async def test_a_stopped_heater_is_not_resumed(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """Stopped because the room is warm: no limit change resumes it; off
    releases the cap (the planner may resume it again)."""
    room(hass, 25.0)
    await call(hass, site, "set_temperature", temperature=22.0, hvac_mode="heat")
    await until(lambda: not nano.mining)
    assert slot_of(site).heat_max_w == 0
    await set_limit(hass, site, "solar", 0.5)
    await hass.async_block_till_done()
    await stays(lambda: not nano.mining)
    await clear_limit(hass, site, "solar")
    await hass.async_block_till_done()
    await stays(lambda: not nano.mining)
    await set_limit(hass, site, "manual", 1.0)
    await hass.async_block_till_done()
    await stays(lambda: not nano.mining)
    state = heater(hass, site)
    assert state.attributes["hvac_action"] == HVACAction.IDLE
    assert state.attributes["blocked_by"] is None

    # Off: the cap is released; the next limit change resumes the miner.
    await call(hass, site, "turn_off")
    assert heater(hass, site).state == HVACMode.OFF
    assert slot_of(site).heat_max_w is None
    await clear_limit(hass, site, "manual")
    await until(lambda: nano.mining)


async def test_restart_keeps_the_cap(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """A restart with a limit to enforce again does not resume the miner the
    heater stopped (the cap is kept); once off, a restart forgets it."""
    room(hass, 25.0)
    await call(hass, site, "set_temperature", temperature=22.0, hvac_mode="heat")
    await until(lambda: not nano.mining)
    await set_limit(hass, site, "solar", 0.5)

    await hass.config_entries.async_unload(site.entry_id)
    await hass.async_block_till_done()
    # The site's store keeps the cap (before the heater is back).
    kept = MiningSiteCoordinator(hass, site)
    await kept.async_load_store()
    assert [s.heat_max_w for s in kept.slots.values()] == [0]
    assert await hass.config_entries.async_setup(site.entry_id)
    assert slot_of(site).heat_max_w == 0
    await hass.async_block_till_done()
    await stays(lambda: not nano.mining, 1.0)
    assert heater(hass, site).state == HVACMode.HEAT

    await call(hass, site, "turn_off")
    await hass.config_entries.async_unload(site.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(site.entry_id)
    await hass.async_block_till_done()
    assert slot_of(site).heat_max_w is None
    await until(lambda: nano.mining)  # the solar limit is enforced again


async def test_a_disabled_heater_releases_the_cap(
    hass: HomeAssistant, site: ConfigEntry, nano: SimulatedMiner
) -> None:
    """A heater disabled while it holds its miner stopped is never added
    again, so its stored cap no longer holds the miner back."""
    room(hass, 25.0)
    await call(hass, site, "set_temperature", temperature=22.0, hvac_mode="heat")
    await until(lambda: not nano.mining)
    await set_limit(hass, site, "solar", 0.5)

    registry = er.async_get(hass)
    registry.async_update_entity(
        heater(hass, site).entity_id, disabled_by=er.RegistryEntryDisabler.USER
    )
    await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done()
    assert slot_of(site).heat_max_w is None
    await until(lambda: nano.mining)  # the solar limit alone decides
