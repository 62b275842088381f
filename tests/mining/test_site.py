"""A mining site in a real Home Assistant, against simulated miners (real pyasic)."""

from __future__ import annotations

import asyncio
import logging

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
import voluptuous as vol

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining.const import EVENT_CURTAILMENT
from simulators.miner import Fleet

from .conftest import miner_subentry, setup_site


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """Return the entity id of a HashGrid entity by its unique id."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


def miner_uid(entry: ConfigEntry, index: int) -> str:
    """Return the unique id (serial or MAC) of the entry's index-th miner."""
    subentry = list(entry.subentries.values())[index]
    assert subentry.unique_id is not None
    return subentry.unique_id


async def poll(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Poll the site now, as its 10 s timer would (real time, real sockets)."""
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_entities_show_what_the_miners_report(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Each miner is a device with live values; the site sums them."""
    assert site.state is ConfigEntryState.LOADED
    lux, _ant, _axe = fleet.miners
    lux_uid = miner_uid(site, 0)

    hashrate = float(
        hass.states.get(entity_id(hass, "sensor", f"{lux_uid}_hashrate")).state
    )
    assert hashrate == pytest.approx(lux.hashrate_ths, rel=0.2)
    assert hashrate > 50
    power = hass.states.get(entity_id(hass, "sensor", f"{lux_uid}_power"))
    assert float(power.state) == pytest.approx(lux.power_w, rel=0.2)
    assert power.attributes["unit_of_measurement"] == "W"
    energy = hass.states.get(entity_id(hass, "sensor", f"{lux_uid}_energy"))
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["device_class"] == "energy"
    assert (
        hass.states.get(entity_id(hass, "switch", f"{lux_uid}_mining")).state
        == STATE_ON
    )

    # Stop-only firmware: a switch but no power target; Bitaxe: neither.
    registry = er.async_get(hass)
    ant_uid, axe_uid = miner_uid(site, 1), miner_uid(site, 2)
    assert registry.async_get_entity_id("switch", DOMAIN, f"{ant_uid}_mining")
    assert not registry.async_get_entity_id("number", DOMAIN, f"{ant_uid}_power_target")
    assert registry.async_get_entity_id("number", DOMAIN, f"{lux_uid}_power_target")
    assert not registry.async_get_entity_id("switch", DOMAIN, f"{axe_uid}_mining")

    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, lux_uid), site.entry_id
    )
    assert device is not None
    assert (device.model or "").lower() == lux.model.lower()
    assert device.serial_number
    assert device.via_device_id is not None

    total = float(
        hass.states.get(
            entity_id(hass, "sensor", f"{site.entry_id}_total_hashrate")
        ).state
    )
    assert total == pytest.approx(sum(m.hashrate_ths for m in fleet.miners), rel=0.2)
    mining = hass.states.get(
        entity_id(hass, "sensor", f"{site.entry_id}_miners_mining")
    )
    assert mining.state == "3"
    assert (
        hass.states.get(entity_id(hass, "switch", f"{site.entry_id}_site_mining")).state
        == STATE_ON
    )


async def test_unreachable_miner_becomes_unavailable_and_returns(
    hass: HomeAssistant,
    site: ConfigEntry,
    fleet: Fleet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Never 0, never stale: unavailable while gone, one log line each way."""
    lux = fleet.miners[0]
    power_id = entity_id(hass, "sensor", f"{miner_uid(site, 0)}_power")
    energy_id = entity_id(hass, "sensor", f"{miner_uid(site, 0)}_energy")
    other_id = entity_id(hass, "sensor", f"{miner_uid(site, 1)}_hashrate")
    caplog.set_level(logging.INFO, logger="custom_components.hashgrid")

    lux.unreachable = True
    await poll(hass, site)
    await poll(hass, site)
    assert hass.states.get(power_id).state == STATE_UNAVAILABLE
    assert hass.states.get(energy_id).state == STATE_UNAVAILABLE
    assert hass.states.get(other_id).state not in (STATE_UNAVAILABLE, "0", "0.0")
    assert caplog.text.count(f"Miner {lux.ip} is unavailable") == 1

    lux.unreachable = False
    await poll(hass, site)
    await poll(hass, site)
    assert float(hass.states.get(power_id).state) > 100
    assert caplog.text.count(f"Miner {lux.ip} is back") == 1


async def test_update_entity_reads_that_miner(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """homeassistant.update_entity on a miner's entity reads that miner now."""
    assert await async_setup_component(hass, "homeassistant", {})
    lux, ant, _axe = fleet.miners
    lux_power = entity_id(hass, "sensor", f"{miner_uid(site, 0)}_power")
    lux_switch = entity_id(hass, "switch", f"{miner_uid(site, 0)}_mining")
    ant_hashrate = entity_id(hass, "sensor", f"{miner_uid(site, 1)}_hashrate")
    lux.unreachable = ant.unreachable = True

    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": lux_power}, blocking=True
    )

    # Every entity of that miner shows it; the other miners are not read.
    assert hass.states.get(lux_power).state == STATE_UNAVAILABLE
    assert hass.states.get(lux_switch).state == STATE_UNAVAILABLE
    assert hass.states.get(ant_hashrate).state != STATE_UNAVAILABLE


async def test_curtail_and_resume_the_fleet(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """curtail stops every stoppable miner at once; resume restores them."""
    lux, ant, axe = fleet.miners
    events = async_capture_events(hass, EVENT_CURTAILMENT)
    before = dt_util.utcnow()

    response = await hass.services.async_call(
        DOMAIN,
        "curtail",
        {"config_entry_id": site.entry_id},
        blocking=True,
        return_response=True,
    )
    assert not lux.mining
    assert not ant.mining
    assert response["budget_w"] == 0
    outcomes = {m["host"]: m for m in response["miners"]}
    assert set(outcomes[lux.ip]) == {
        "miner",
        "host",
        "action",
        "requested_power_w",
        "success",
        "error",
        "power_w",
    }
    assert outcomes[lux.ip]["action"] == "stop"
    assert outcomes[lux.ip]["success"] is True
    assert outcomes[ant.ip]["success"] is True
    # pyasic can neither stop a Bitaxe nor set its power: it keeps mining.
    assert axe.ip not in outcomes
    assert axe.mining
    assert response["fits"] is False  # the Bitaxe still draws its ~15 W
    assert len(events) == 1
    assert events[0].data["miners"] == response["miners"]
    assert (
        hass.states.get(entity_id(hass, "switch", f"{site.entry_id}_site_mining")).state
        == STATE_OFF
    )
    assert (
        hass.states.get(entity_id(hass, "switch", f"{miner_uid(site, 0)}_mining")).state
        == STATE_OFF
    )
    # The read-back reads only what a command changes; the rest stays known,
    # and is not written again (nothing new was read for it).
    board = hass.states.get(
        entity_id(hass, "sensor", f"{miner_uid(site, 0)}_board_temperature")
    )
    assert board.state not in ("unknown", STATE_UNAVAILABLE)
    assert board.last_reported < before
    hashrate = hass.states.get(
        entity_id(hass, "sensor", f"{miner_uid(site, 0)}_hashrate")
    )
    assert hashrate.last_reported >= before

    response = await hass.services.async_call(
        DOMAIN,
        "resume",
        {"config_entry_id": site.entry_id, "stagger": 0},
        blocking=True,
        return_response=True,
    )
    assert lux.mining
    assert ant.mining
    assert response["budget_w"] is None
    assert all(m["success"] for m in response["miners"]), response


async def test_budget_lowers_power_targets_before_stopping(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A budget a lower power target can meet stops nothing."""
    lux, ant, axe = fleet.miners
    total_w = lux.power_w + ant.power_w + axe.power_w
    budget_kw = (total_w - 300) / 1000
    response = await hass.services.async_call(
        DOMAIN,
        "set_power_budget",
        {"config_entry_id": site.entry_id, "power_kw": budget_kw},
        blocking=True,
        return_response=True,
    )
    assert lux.mining
    assert ant.mining
    actions = {m["host"]: m["action"] for m in response["miners"]}
    assert actions[lux.ip] == "set_power"
    assert "stop" not in actions.values()
    assert lux.power_target_w <= lux.power_w + 300
    assert response["planned_power_w"] <= budget_kw * 1000
    number_id = entity_id(hass, "number", f"{site.entry_id}_power_budget")
    assert float(hass.states.get(number_id).state) == pytest.approx(budget_kw)


async def test_budget_stops_lowest_priority_first(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """When targets do not suffice, the lowest priority miner stops first."""
    lux, ant, _axe = fleet.miners  # priorities 10, 50, 90
    # What the planner counts: stock Antminer reports no power, so HashGrid
    # counts it from its hashrate; room for it and the Bitaxe, not for the LuxOS.
    states = site.runtime_data.coordinator.miner_states()
    budget_kw = (states[1].max_power_w + states[2].power_w + 100) / 1000
    await hass.services.async_call(
        DOMAIN,
        "set_power_budget",
        {"config_entry_id": site.entry_id, "power_kw": budget_kw, "stagger": 0},
        blocking=True,
        return_response=True,
    )
    assert not lux.mining
    assert ant.mining


async def test_each_curtailment_is_one_info_line(
    hass: HomeAssistant,
    site: ConfigEntry,
    fleet: Fleet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A curtailment leaves one INFO line saying what bound and what obeyed."""
    caplog.set_level(logging.INFO, logger="custom_components.hashgrid")
    await hass.services.async_call(
        DOMAIN,
        "curtail",
        {"config_entry_id": site.entry_id},
        blocking=True,
        return_response=True,
    )
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "budget 0.00 kW" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert site.title in lines[0]
    assert "manual" in lines[0]


@pytest.mark.parametrize("power_kw", ["nan", "inf", "-1", "abc", "1e308"])
async def test_absurd_budget_is_refused_and_changes_nothing(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet, power_kw: str
) -> None:
    """NaN passes a plain range check (and max(0, nan) is 0: every miner
    would stop); the action refuses it, and the miners keep mining."""
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN,
            "set_power_budget",
            {"config_entry_id": site.entry_id, "power_kw": power_kw},
            blocking=True,
        )
    assert all(miner.mining for miner in fleet.miners)


async def test_timed_budget_reverts(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A budget with a duration gives way to the previous one after it."""
    lux, ant, _ = fleet.miners
    await hass.services.async_call(
        DOMAIN,
        "set_power_budget",
        {
            "config_entry_id": site.entry_id,
            "power_kw": 0,
            "duration": {"seconds": 1},
            "stagger": 0,
        },
        blocking=True,
    )
    assert not lux.mining
    assert not ant.mining
    # Real time (not frozen): the miners' commands and read-backs take real I/O.
    number_id = entity_id(hass, "number", f"{site.entry_id}_power_budget")

    def unlimited() -> bool:
        state = hass.states.get(number_id)
        return float(state.state) == float(state.attributes["max"])

    assert not unlimited()
    reverted = asyncio.Event()

    @callback
    def _reverted(_event: Event) -> None:
        reverted.set()

    hass.bus.async_listen_once(EVENT_CURTAILMENT, _reverted)
    async with asyncio.timeout(15):
        await reverted.wait()
    await hass.async_block_till_done()
    assert lux.mining
    assert ant.mining
    assert unlimited()


async def test_disobedient_miner_raises_repair_issue(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A miner ignoring commands fails; the others are curtailed regardless."""
    lux, ant, _ = fleet.miners
    ant.ignore_commands = True
    issue_id = f"miner_disobeys_{list(site.subentries)[1]}"
    for attempt in range(3):
        response = await hass.services.async_call(
            DOMAIN,
            "curtail",
            {"config_entry_id": site.entry_id},
            blocking=True,
            return_response=True,
        )
        outcome = {m["host"]: m for m in response["miners"]}
        assert outcome[ant.ip]["success"] is False
        assert not lux.mining
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        assert (issue is not None) == (attempt == 2)
        # Lift the budget again so the next curtail sends commands again.
        await hass.services.async_call(
            DOMAIN,
            "resume",
            {"config_entry_id": site.entry_id, "stagger": 0},
            blocking=True,
        )
    ant.ignore_commands = False
    await hass.services.async_call(
        DOMAIN, "curtail", {"config_entry_id": site.entry_id}, blocking=True
    )
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_miner_switch_and_power_target(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The miner's own controls reach the firmware."""
    lux = fleet.miners[0]
    uid = miner_uid(site, 0)
    switch = entity_id(hass, "switch", f"{uid}_mining")
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True
    )
    assert not lux.mining
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": switch}, blocking=True
    )
    assert lux.mining

    number = entity_id(hass, "number", f"{uid}_power_target")
    state = hass.states.get(number)
    low = float(state.attributes["min"])
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": low}, blocking=True
    )
    assert lux.power_target_w == pytest.approx(low)


async def test_command_to_unreachable_miner_is_a_clear_error(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A miner gone since the last poll: a translated error, nothing changes."""
    lux = fleet.miners[0]
    switch = entity_id(hass, "switch", f"{miner_uid(site, 0)}_mining")
    lux.unreachable = True
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": switch}, blocking=True
        )
    assert err.value.translation_key == "miner_command_failed"
    lux.unreachable = False
    assert lux.mining


async def test_service_refuses_wrong_entry(
    hass: HomeAssistant, site: ConfigEntry
) -> None:
    """An unknown site is a translated validation error."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "curtail", {"config_entry_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "entry_not_found"


async def test_energy_and_budget_survive_restart(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Energy integrates power and keeps counting across a reload; a
    curtailment stays in force after it."""
    uid = miner_uid(site, 0)
    energy_id = entity_id(hass, "sensor", f"{uid}_energy")
    coordinator = site.runtime_data.coordinator
    for _ in range(4):  # real time passes between polls
        await asyncio.sleep(0.2)
        await coordinator.async_refresh()
    before = float(hass.states.get(energy_id).state)
    # ~3 kW for ~0.6 s is ~0.5 Wh.
    assert 0.0002 < before < 0.002

    await hass.services.async_call(
        DOMAIN, "curtail", {"config_entry_id": site.entry_id}, blocking=True
    )
    assert await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    after = float(hass.states.get(energy_id).state)
    assert after >= before
    lux = fleet.miners[0]
    assert not lux.mining
    site_switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    assert hass.states.get(site_switch).state == STATE_OFF


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant, hass_client, fleet: Fleet
) -> None:
    """Credentials, MACs and serials never appear in diagnostics."""
    sub = await miner_subentry(fleet.miners[1].ip, username="root", password="s3cret")
    entry = await setup_site(hass, [sub], title="Shed")
    diag = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = str(diag)
    assert "s3cret" not in text
    assert fleet.miners[1].serial not in text
    assert fleet.miners[1].mac.lower() not in text.lower()
    assert diag["runtime"]["miners"]


async def test_power_target_out_of_range_is_refused(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A power target beyond the firmware's range: a clear error, nothing sent."""
    lux = fleet.miners[0]
    number = entity_id(hass, "number", f"{miner_uid(site, 0)}_power_target")
    state = hass.states.get(number)
    before = lux.power_target_w
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "number",
            "set_value",
            {"entity_id": number, "value": float(state.attributes["max"]) + 1},
            blocking=True,
        )
    assert lux.power_target_w == before


async def test_curtail_supersedes_a_staggered_restore(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A curtailment does not wait for a slow, staggered restore to finish."""
    lux, ant, _ = fleet.miners
    await hass.services.async_call(
        DOMAIN, "curtail", {"config_entry_id": site.entry_id}, blocking=True
    )
    assert not lux.mining
    assert not ant.mining
    # Restore one miner every 30 s: the second waits half a minute.
    restoring = hass.async_create_task(
        hass.services.async_call(
            DOMAIN,
            "resume",
            {"config_entry_id": site.entry_id, "stagger": 30},
            blocking=True,
            return_response=True,
        )
    )
    # Wait until the first miner is back (its switch turns on).
    restored = asyncio.Event()
    switches = [
        entity_id(hass, "switch", f"{miner_uid(site, i)}_mining") for i in (0, 1)
    ]

    @callback
    def _switched(event: Event) -> None:
        if (state := event.data["new_state"]) is not None and state.state == "on":
            restored.set()

    unsub = async_track_state_change_event(hass, switches, _switched)
    async with asyncio.timeout(10):
        await restored.wait()
    unsub()
    assert lux.mining or ant.mining
    async with asyncio.timeout(10):
        response = await hass.services.async_call(
            DOMAIN,
            "curtail",
            {"config_entry_id": site.entry_id},
            blocking=True,
            return_response=True,
        )
    assert all(m["success"] for m in response["miners"]), response
    assert not lux.mining
    assert not ant.mining
    superseded = await restoring
    assert superseded["superseded"] is True
    await hass.async_block_till_done()
    # The cancelled restore sends nothing more.
    assert not lux.mining
    assert not ant.mining


async def test_unload_closes_the_miners_connections(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The site's web session (kept-alive connections to the miners) goes with it."""
    coordinator = site.runtime_data.coordinator
    await poll(hass, site)
    session = coordinator._session
    assert session is not None
    assert not session.closed
    assert await hass.config_entries.async_unload(site.entry_id)
    await hass.async_block_till_done()
    assert session.closed
