"""The demo's leak: miners mining past the solar limit while HA thought them stopped."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from simulators.miner import Fleet

from .conftest import connect
from .test_site_limits import set_limit


async def test_a_miner_planned_stopped_that_mines_is_stopped(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The stock S21 (stop-only, no power reported) is stopped by the solar
    limit, then mines again without HA knowing (woken by another tool, or a
    resume whose read-back a newer budget cancelled). The next budget that
    keeps it stopped reads it back and stops it: a miner planned stopped is
    confirmed stopped, not assumed."""
    _lux, ant, _axe = fleet.miners
    await set_limit(hass, site, "solar", 2)
    assert not ant.mining
    client = await connect(ant.ip)
    assert await client.resume()
    assert ant.mining
    response = await set_limit(hass, site, "solar", 1.5)
    assert not ant.mining
    outcomes = {m["host"]: m for m in response["miners"]}
    assert outcomes[ant.ip]["action"] == "stop"
    assert outcomes[ant.ip]["success"] is True


async def test_polls_keep_their_schedule_while_the_budget_changes(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The solar limit changes every few seconds, each time commanding a
    miner: the regular poll keeps its schedule (not pushed back by every
    read-back), so a miner changed behind HA's back (the Bitaxe, never
    commanded here) is read again within the poll interval."""
    lux, ant, axe = fleet.miners
    coordinator = site.runtime_data.coordinator
    slot = coordinator.slots[list(site.subentries)[2]]
    assert slot.reading is not None
    before = slot.reading.hashrate_ths
    assert before
    await set_limit(hass, site, "solar", 5.5)
    assert ant.mining
    assert lux.mining
    assert coordinator._unsub_refresh is not None
    timer = coordinator._unsub_refresh.__self__
    due = timer.when()
    axe.physics.set_mining(False)  # behind HA's back
    for budget in (6.0, 5.5, 6.0, 5.5, 6.0, 5.5):  # each commands the LuxOS
        response = await set_limit(hass, site, "solar", budget)
        assert [m["host"] for m in response["miners"]] == [lux.ip]
        await asyncio.sleep(0.3)  # over a second of budget changes
    assert coordinator._unsub_refresh is not None
    assert coordinator._unsub_refresh.__self__.when() == due
    # The poll, when it was due before the budget changes.
    await asyncio.sleep(0.05)
    read_before = slot.read_at
    async_fire_time_changed(
        hass,
        dt_util.utcnow() + timedelta(seconds=due - hass.loop.time() + 0.01),
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert slot.read_at is not None
    assert slot.read_at != read_before
    assert slot.reading.hashrate_ths < before / 2, (axe.hashrate_ths, before)


async def test_a_miner_first_read_while_ramping_is_planned_at_its_full_draw(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The stock S21 reports no power: the planner counts it at its peak
    estimate (hashrate x the model's J/TH). First read while it ramped up
    (19 TH/s: 333 W), that peak must still rise to its full draw, or the
    planner keeps both S21s mining under a 1.5 kW solar limit, 'at 333 W'."""
    _lux, ant, _axe = fleet.miners
    coordinator = site.runtime_data.coordinator
    slot = coordinator.slots[list(site.subentries)[1]]
    slot.peak_power_w = 333.0  # read once while ramping up (kept in the store)
    await coordinator.async_refresh()
    assert ant.mining
    assert slot.state().max_power_w > 3000
    await set_limit(hass, site, "solar", 1.5)
    assert not ant.mining


async def test_a_miner_seen_first_while_ramping_is_planned_at_its_rated_draw(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The demo at boot: two stock S21s first read while ramping up (15 TH/s,
    planned at 262 W each) drew 3.5 kW each, 3 kW past a 6.9 kW solar limit,
    until the next poll. With no peak known yet, a miner that reports no
    power counts at its rated hashrate (the firmware's ideal rate) times its
    model's J/TH."""
    _lux, ant, _axe = fleet.miners
    coordinator = site.runtime_data.coordinator
    slot = coordinator.slots[list(site.subentries)[1]]
    assert slot.info is not None
    expected = slot.info.expected_hashrate_ths
    assert expected == pytest.approx(ant.spec.nominal_ths, rel=0.05)
    rated = expected * slot.j_per_th()
    assert slot.reading is not None
    slot.peak_power_w = 0.0
    slot.reading = dataclasses.replace(slot.reading, hashrate_ths=15.0)
    assert slot.state().max_power_w == pytest.approx(rated)
    assert rated >= 0.95 * ant.spec.nominal_w
