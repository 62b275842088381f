"""A site's named limits in a real Home Assistant, against simulated miners."""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_OFF
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
)

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining.const import EVENT_CURTAILMENT
from simulators.miner import Fleet

from .conftest import connect
from .test_site import entity_id, miner_uid


async def set_limit(
    hass: HomeAssistant, site: ConfigEntry, source: str, power_kw: float, **extra
) -> dict:
    """Call hashgrid.set_limit and return its response."""
    return await hass.services.async_call(
        DOMAIN,
        "set_limit",
        {
            "config_entry_id": site.entry_id,
            "source": source,
            "power_kw": power_kw,
            "stagger": 0,
            **extra,
        },
        blocking=True,
        return_response=True,
    )


async def clear_limit(hass: HomeAssistant, site: ConfigEntry, source: str) -> dict:
    """Call hashgrid.clear_limit and return its response."""
    return await hass.services.async_call(
        DOMAIN,
        "clear_limit",
        {"config_entry_id": site.entry_id, "source": source, "stagger": 0},
        blocking=True,
        return_response=True,
    )


def shown(hass: HomeAssistant, site: ConfigEntry) -> tuple[str, str, dict]:
    """What the site shows: effective budget (kW), binding source, limits."""
    budget = hass.states.get(
        entity_id(hass, "sensor", f"{site.entry_id}_effective_budget")
    )
    binding = hass.states.get(
        entity_id(hass, "sensor", f"{site.entry_id}_binding_limit")
    )
    return budget.state, binding.state, binding.attributes["limits"]


async def test_limits_compose_and_clearing_restores_only_to_the_next(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """DR at 0 binds; a person's resume leaves it; clearing DR restores only
    up to the solar limit; clearing that restores the rest."""
    lux, ant, _axe = fleet.miners  # priorities 10, 50, 90
    events = async_capture_events(hass, EVENT_CURTAILMENT)
    states = site.runtime_data.coordinator.miner_states()
    # Room for the Antminer (and the Bitaxe), not for the LuxOS too.
    solar_kw = round((states[1].max_power_w + states[2].power_w + 100) / 1000, 2)
    await set_limit(hass, site, "solar", solar_kw)
    assert ant.mining
    assert not lux.mining
    response = await set_limit(hass, site, "demand_response", 0)
    assert response["binding"] == "demand_response"
    assert response["budget_w"] == 0
    assert not lux.mining
    assert not ant.mining
    assert shown(hass, site)[:2] == ("0.0", "demand_response")
    assert set(shown(hass, site)[2]) == {"solar", "demand_response"}
    assert events[-1].data["binding"] == "demand_response"

    # "resume" clears the manual limit only: demand response still binds.
    response = await hass.services.async_call(
        DOMAIN,
        "resume",
        {"config_entry_id": site.entry_id, "stagger": 0},
        blocking=True,
        return_response=True,
    )
    assert response["binding"] == "demand_response"
    assert not lux.mining
    assert not ant.mining
    site_switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": site_switch}, blocking=True
        )
    assert err.value.translation_key == "site_limit_binds"
    assert hass.states.get(site_switch).state == STATE_OFF
    assert not ant.mining

    response = await clear_limit(hass, site, "demand_response")
    assert response["binding"] == "solar"
    assert response["budget_w"] == pytest.approx(solar_kw * 1000)
    assert ant.mining
    assert not lux.mining  # not "unlimited": solar still binds
    assert shown(hass, site)[1] == "solar"

    response = await clear_limit(hass, site, "solar")
    assert response["binding"] == "fleet"
    assert response["budget_w"] is None
    assert lux.mining
    assert ant.mining
    budget_kw, binding, limits = shown(hass, site)
    assert binding == "fleet"
    assert limits == {}
    assert float(budget_kw) > 5  # the fleet's maximum


async def test_limits_persist_and_expire(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Limits outlive a reload; one with a duration expires, even after it."""
    lux, ant, _ = fleet.miners
    await set_limit(hass, site, "heat_pump", 0.5)
    await set_limit(hass, site, "price", 0, duration={"seconds": 2})
    assert not lux.mining
    assert await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    budget_kw, binding, limits = shown(hass, site)
    assert (budget_kw, binding) == ("0.0", "price")
    assert limits["price"]["expires"] is not None
    assert limits["heat_pump"] == {"power_kw": 0.5, "expires": None}
    assert not lux.mining

    # Real time (the miners' commands and read-backs take real I/O).
    expired = asyncio.Event()

    @callback
    def _expired(_event: Event) -> None:
        expired.set()

    hass.bus.async_listen_once(EVENT_CURTAILMENT, _expired)
    async with asyncio.timeout(15):
        await expired.wait()
    await hass.async_block_till_done(wait_background_tasks=True)
    budget_kw, binding, limits = shown(hass, site)
    assert (budget_kw, binding) == ("0.5", "custom")
    assert set(limits) == {"heat_pump"}
    # 0.5 kW lets no S19-class miner run.
    assert not lux.mining
    assert not ant.mining


async def test_a_miners_own_switch_respects_the_limits(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Under a 0 kW limit, switching one miner on by hand is refused, clearly."""
    lux = fleet.miners[0]
    await set_limit(hass, site, "demand_response", 0)
    switch = entity_id(hass, "switch", f"{miner_uid(site, 0)}_mining")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": switch}, blocking=True
        )
    assert err.value.translation_key == "miner_limit_binds"
    assert err.value.translation_placeholders["source"] == "demand response"
    assert not lux.mining
    assert hass.states.get(switch).state == STATE_OFF
    await clear_limit(hass, site, "demand_response")
    assert lux.mining


async def test_bad_source_is_refused(hass: HomeAssistant, site: ConfigEntry) -> None:
    """A source that is no name is a translated error and changes nothing."""
    with pytest.raises(ServiceValidationError) as err:
        await set_limit(hass, site, "DROP TABLE;", 0)
    assert err.value.translation_key == "invalid_limit_source"
    assert shown(hass, site)[1] == "fleet"


async def test_read_back_verifies_resumes_and_power_targets(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A miner that ignores a resume, or a lower power target, is reported as
    not obeying (read back, not assumed); the others obey regardless."""
    lux, ant, _axe = fleet.miners
    await set_limit(hass, site, "demand_response", 0)
    assert not lux.mining
    assert not ant.mining
    ant.ignore_commands = True
    response = await clear_limit(hass, site, "demand_response")
    outcomes = {m["host"]: m for m in response["miners"]}
    assert outcomes[ant.ip]["action"] == "resume"
    assert outcomes[ant.ip]["success"] is False
    assert outcomes[ant.ip]["error"] == "not mining"
    assert outcomes[lux.ip]["success"] is True
    assert lux.mining
    assert not ant.mining
    ant.ignore_commands = False
    await hass.services.async_call(
        DOMAIN,
        "resume",
        {"config_entry_id": site.entry_id, "stagger": 0},
        blocking=True,
    )

    # The LuxOS ignores a lower power target: said, with what it kept.
    states = {s.miner_id: s for s in site.runtime_data.coordinator.miner_states()}
    lux_id = next(iter(site.subentries))
    lux_state = states[lux_id]
    assert lux_state.min_power_w is not None
    lux.ignore_commands = True
    before = lux.power_target_w
    others = sum(s.power_w for i, s in states.items() if i != lux_id)
    response = await set_limit(
        hass, site, "solar", (others + lux_state.min_power_w + 100) / 1000
    )
    outcomes = {m["host"]: m for m in response["miners"]}
    assert outcomes[lux.ip]["action"] == "set_power"
    assert outcomes[lux.ip]["success"] is False
    assert outcomes[lux.ip]["error"].startswith("power target is ")
    assert lux.power_target_w == before
    lux.ignore_commands = False


async def test_a_miners_power_target_respects_the_limits(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Raising one miner's power target past the binding limit is refused;
    lowering it is always allowed, and read back."""
    lux = fleet.miners[0]
    number = entity_id(hass, "number", f"{miner_uid(site, 0)}_power_target")
    state = hass.states.get(number)
    low, high = float(state.attributes["min"]), float(state.attributes["max"])
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": low}, blocking=True
    )
    assert lux.power_target_w == pytest.approx(low)
    # Room for the others as the planner counts them, and the LuxOS at its low.
    states = site.runtime_data.coordinator.miner_states()
    others = sum(s.max_power_w for s in states[1:])
    await set_limit(hass, site, "solar", (others + low + 50) / 1000)
    assert lux.mining
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            "number", "set_value", {"entity_id": number, "value": high}, blocking=True
        )
    assert err.value.translation_key == "miner_limit_binds"
    assert err.value.translation_placeholders["source"] == "solar"
    assert lux.power_target_w == pytest.approx(low)


async def test_total_power_counts_a_miner_that_reports_none(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The stock Antminer reports no power: the site's Total power counts it
    (estimated, and says so) while it hashes, and at once drops when it stops."""
    lux, ant, axe = fleet.miners
    total_id = entity_id(hass, "sensor", f"{site.entry_id}_total_power")
    state = hass.states.get(total_id)
    measured = lux.power_w + axe.power_w  # what the firmwares report
    assert float(state.state) > measured + 1000  # the S21 is in it
    assert state.attributes["estimated_miners"] == 1
    assert float(state.attributes["estimated_power"]) > 1000
    await set_limit(hass, site, "demand_response", 0)
    assert not ant.mining
    # Read again once the power settled (not at the next 10 s poll): idle
    # draws, not the old ones.
    async with asyncio.timeout(6):
        while float(hass.states.get(total_id).state) >= 200:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    state = hass.states.get(total_id)
    assert state.attributes["estimated_power"] == 15.0  # the S21, idle


async def test_a_restart_enforces_the_stored_limits_again(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Home Assistant restarts with limits in force while the miners were
    changed behind its back (the S21 woken from another tool, the LuxOS at
    its full profile): once the site is set up again, the stored limits are
    enforced on the miners, within a minute."""
    lux, ant, axe = fleet.miners
    await set_limit(hass, site, "price", 5)
    await set_limit(hass, site, "solar", 2)  # the S21 cannot fit; the LuxOS can
    assert not ant.mining
    assert lux.mining
    assert lux.power_w <= 2000
    assert await hass.config_entries.async_unload(site.entry_id)
    await hass.async_block_till_done()
    # While Home Assistant is down: both at full power.
    for host in (ant.ip, lux.ip):
        client = await connect(host)
        assert await client.resume()
    assert await (await connect(lux.ip)).set_power_target(lux.spec.nominal_w)
    await asyncio.sleep(0.1)  # their ramp (1.5 s at 100x)
    assert ant.mining
    assert lux.power_w + ant.power_w > 6000

    assert await hass.config_entries.async_setup(site.entry_id)
    async with asyncio.timeout(60):
        while ant.mining or lux.power_w + ant.power_w + axe.power_w > 2000:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await hass.async_block_till_done(wait_background_tasks=True)
    budget_kw, binding, limits = shown(hass, site)
    assert (budget_kw, binding) == ("2.0", "solar")
    assert set(limits) == {"price", "solar"}
    assert lux.mining  # the budget is used, not merely everything stopped
    assert lux.power_target_w <= 2000
