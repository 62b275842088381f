"""One bad miner never stops or fools the site (issue 19, mining part).

A real Home Assistant, real pyasic, simulated miners that lie, flood or
answer at another miner's address: the other miners are curtailed and
confirmed, the liar is reported, the site stays loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import logging
import math
import time
import tracemalloc
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining.control import _command as control_command
from custom_components.hashgrid.mining.coordinator import run_in_lanes
from custom_components.hashgrid.mining.transport import MAX_REPLY_BYTES
from simulators.miner import Fleet, running_fleet
from tests.net import addr

from .conftest import TIME_SCALE, miner_subentry, setup_site
from .test_site import entity_id, miner_uid, poll

BASE = addr("14.1")


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """Four miners that can all be curtailed: the site gets the first three.

    LuxOS, Antminer stock, LuxOS (the liar, a firmware that reports its
    power) and a spare LuxOS outside the site (to swap addresses with).
    """
    async with running_fleet(
        4, BASE, ("luxos", "antminer", "luxos", "luxos"), time_scale=TIME_SCALE
    ) as running:
        yield running


@pytest.fixture
async def site(hass: HomeAssistant, fleet: Fleet) -> ConfigEntry:
    """The site of the first three miners, priorities 10 / 50 / 90."""
    subentries = [
        await miner_subentry(miner.ip, priority=priority)
        for miner, priority in zip(fleet.miners[:3], (10, 50, 90), strict=True)
    ]
    return await setup_site(hass, subentries)


async def swap_with_spare(fleet: Fleet) -> None:
    """DHCP gives the liar's address to the spare miner, and the spare's to it."""
    await fleet.swap_addresses(fleet.miners[2], fleet.miners[3])


async def claim_anothers_serial(fleet: Fleet) -> None:
    """The liar claims the serial of the site's first miner."""
    fleet.miners[2].lie["serial"] = fleet.miners[0].serial


async def flood(fleet: Fleet) -> None:
    """The liar answers every request with bytes that never end."""
    fleet.miners[2].flood = True


def lie(**figures: Any) -> Any:
    async def _lie(fleet: Fleet) -> None:
        fleet.miners[2].lie.update(figures)

    return _lie


# What the liar does, and how it shows: its power unknown, or unavailable.
LIES = {
    "power -5 W": (lie(power_w=-5), STATE_UNKNOWN),
    "power NaN": (lie(power_w=math.nan), STATE_UNKNOWN),
    "power 'abc'": (lie(power_w="abc"), STATE_UNKNOWN),
    "power 1e308 W": (lie(power_w=1e308), STATE_UNKNOWN),
    "hashrate 1e308 TH/s": (lie(hashrate_ths=1e308, power_w=-1), STATE_UNKNOWN),
    "flood": (flood, STATE_UNAVAILABLE),
    "another miner's serial": (claim_anothers_serial, STATE_UNAVAILABLE),
    "swapped address": (swap_with_spare, STATE_UNAVAILABLE),
}


async def curtail(hass: HomeAssistant, entry: ConfigEntry) -> dict[str, Any]:
    """Curtail the site; return the action's response."""
    return await hass.services.async_call(
        DOMAIN,
        "curtail",
        {"config_entry_id": entry.entry_id},
        blocking=True,
        return_response=True,
    )


@pytest.mark.parametrize("misbehave", list(LIES), ids=list(LIES))
async def test_one_lying_miner_never_stops_the_others_being_curtailed(
    hass: HomeAssistant,
    site: ConfigEntry,
    fleet: Fleet,
    misbehave: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The other two are stopped and confirmed; the liar is reported; loaded."""
    act, liar_shows = LIES[misbehave]
    good = fleet.miners[:2]
    liar_power = entity_id(hass, "sensor", f"{miner_uid(site, 2)}_power")
    liar_energy = entity_id(hass, "sensor", f"{miner_uid(site, 2)}_energy")
    site_power = entity_id(hass, "sensor", f"{site.entry_id}_total_power")
    caplog.set_level(logging.INFO, logger="custom_components.hashgrid")
    await act(fleet)

    for _ in range(3):  # every poll, not only the first, keeps the site going
        await asyncio.sleep(0.05)
        await poll(hass, site)
    coordinator = site.runtime_data.coordinator
    assert coordinator.last_update_success
    assert hass.states.get(liar_power).state == liar_shows
    energy = hass.states.get(liar_energy).state
    assert energy == STATE_UNAVAILABLE or math.isfinite(float(energy))
    assert math.isfinite(float(hass.states.get(site_power).state))

    response = await curtail(hass, site)

    outcomes = {m["host"]: m for m in response["miners"]}
    for miner in good:
        assert not miner.mining
        assert outcomes[miner.ip]["success"] is True, outcomes
    for miner in good:
        switch = entity_id(
            hass, "switch", f"{miner_uid(site, fleet.miners.index(miner))}_mining"
        )
        assert hass.states.get(switch).state == "off"
    assert site.state is ConfigEntryState.LOADED
    # The liar is reported: once in the log, whatever the number of polls.
    liar = f"{BASE[:-1]}3"
    if liar_shows == STATE_UNKNOWN:
        assert caplog.text.count(f"Miner {liar} reports an impossible") >= 1
        assert caplog.text.count(f"Miner {liar} reports an impossible power ") <= 1
    else:
        assert liar not in outcomes  # unreachable: never commanded
        assert caplog.text.count(f"Miner {liar} is unavailable") == 1


async def test_a_flood_is_cut_off_at_the_reply_limit(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A flooding miner costs a poll a few MiB and a moment, not GB and 10 s."""
    await flood(fleet)
    tracemalloc.start()
    try:
        started = time.monotonic()
        await poll(hass, site)
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert took < 5.0
    assert peak < 8 * MAX_REPLY_BYTES
    liar = site.runtime_data.coordinator.slots[list(site.subentries)[2]]
    assert "ReplyTooLarge" in (liar.error or "")


async def test_another_miner_at_the_address_is_never_commanded(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """A repair issue says so; commands are refused; it ends when it is back."""
    liar, spare = fleet.miners[2], fleet.miners[3]
    liar_ip = liar.ip
    sub_id = list(site.subentries)[2]
    issue_id = f"miner_wrong_identity_{sub_id}"
    switch = entity_id(hass, "switch", f"{miner_uid(site, 2)}_mining")

    await swap_with_spare(fleet)
    assert spare.ip == liar_ip
    await poll(hass, site)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "miner_wrong_identity"
    assert issue.translation_placeholders["host"] == liar_ip
    assert hass.states.get(switch).state == STATE_UNAVAILABLE

    # Its switch is unavailable (HA sends it nothing); its own command path
    # refuses too, with a translated error.
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": switch}, blocking=True
    )
    slot = site.runtime_data.coordinator.slots[sub_id]
    with pytest.raises(HomeAssistantError) as err:
        await control_command(slot, "stop", lambda c: c.stop())
    assert err.value.translation_key == "miner_wrong_identity"
    await curtail(hass, site)
    assert spare.mining  # the machine at the address was never told anything
    assert liar.mining
    await poll(hass, site)  # still the wrong miner: still one issue
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    await fleet.swap_addresses(liar, spare)  # the right miner answers again
    await poll(hass, site)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    # The stored budget (curtailed) holds for it again once it is back.
    await hass.services.async_call(
        DOMAIN,
        "resume",
        {"config_entry_id": site.entry_id, "stagger": 0},
        blocking=True,
    )
    response = await curtail(hass, site)
    outcomes = {m["host"]: m for m in response["miners"]}
    assert outcomes[liar_ip]["success"] is True
    assert not liar.mining
    assert spare.mining


async def restart_with(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet, **figures: Any
) -> None:
    """Curtail, let the liar lie and a good miner wake up, then restart."""
    await curtail(hass, site)
    assert not any(m.mining for m in fleet.miners[:3])
    await hass.config_entries.async_unload(site.entry_id)
    await hass.async_block_till_done()
    fleet.miners[2].lie.update(figures)
    # While HashGrid was down, someone woke a good miner up: the stored
    # budget must stop it again.
    fleet.miners[0].physics.set_mining(True)
    assert await hass.config_entries.async_setup(site.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.parametrize(
    "figures",
    [{"preset_w": -50}, {"preset_w": math.nan}, {"serial": 12345}],
    ids=["preset -50 W", "preset NaN", "numeric serial"],
)
async def test_a_restart_with_a_bad_miner_loads_and_reapplies_the_budget(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet, figures: dict[str, Any]
) -> None:
    """The site loads, the stored budget is enforced, the bad miner is planned."""
    await restart_with(hass, site, fleet, **figures)

    assert site.state is ConfigEntryState.LOADED
    assert not fleet.miners[0].mining  # the stored budget, re-applied
    assert not fleet.miners[1].mining
    coordinator = site.runtime_data.coordinator
    bad = coordinator.slots[list(site.subentries)[2]]
    # Its identity still holds (a numeric serial is unknown; the MAC learnt
    # when it was identified before confirms it), its lie is left out.
    assert bad.info is not None
    assert bad.reading is not None
    assert bad.info.min_power_w is None or bad.info.min_power_w > 0
    assert all(state.max_power_w >= 0 for state in coordinator.miner_states())
    response = await hass.services.async_call(
        DOMAIN,
        "resume",
        {"config_entry_id": site.entry_id, "stagger": 0},
        blocking=True,
        return_response=True,
    )
    assert all(m["success"] for m in response["miners"]), response
    assert all(m.mining for m in fleet.miners[:3])


async def test_a_miner_failing_in_any_way_stays_in_its_slot(
    hass: HomeAssistant,
    site: ConfigEntry,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error HashGrid never heard of, in a poll or a command: that miner only."""
    coordinator = site.runtime_data.coordinator
    bad = coordinator.slots[list(site.subentries)[2]]
    assert bad.client is not None

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError("'int' object has no attribute 'strip'")

    monkeypatch.setattr(bad.client, "poll", broken)
    monkeypatch.setattr(bad.client, "stop", broken)
    await poll(hass, site)
    assert coordinator.last_update_success
    assert not bad.available
    response = await curtail(hass, site)
    assert not fleet.miners[0].mining
    assert not fleet.miners[1].mining
    assert site.state is ConfigEntryState.LOADED
    assert all(m["success"] for m in response["miners"]), response


async def test_lanes_cancel_and_await_each_other_on_error() -> None:
    """No lane outlives run_in_lanes: an error cancels the others first."""
    started: list[int] = []
    finished: list[int] = []
    cancelled: list[int] = []

    async def run(item: int) -> None:
        started.append(item)
        if item == 1:
            await asyncio.sleep(0)
            raise ValueError("power -5.0 out of range")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        finished.append(item)

    with pytest.raises(ValueError):
        await run_in_lanes(list(range(6)), run, 3)
    assert sorted(started) == [0, 1, 2]
    assert sorted(cancelled) == [0, 2]
    assert finished == []
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in others if "lane" in repr(t.get_coro())]
