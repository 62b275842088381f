"""Fixtures of the mining tests: a simulated fleet and a site configured in HA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining.client import (
    MinerClient,
    connect as _connect,
    identify,
)
from custom_components.hashgrid.mining.coordinator import MiningSiteCoordinator
from simulators.miner import Fleet, running_fleet
from tests.net import addr

BASE = addr("2.1")
# Simulated seconds per real second: a miner's power ramp (1.5 s) takes ~15 ms.
TIME_SCALE = 100.0


def three_miners(base: str) -> AbstractAsyncContextManager[Fleet]:
    """Three miners: LuxOS (stop + power target), Antminer stock (stop), Bitaxe."""
    return running_fleet(
        3, base, ("luxos", "antminer", "bitaxe"), time_scale=TIME_SCALE
    )


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """The three miners (see three_miners)."""
    async with three_miners(BASE) as running:
        yield running


async def miner_subentry(host: str, **options: Any) -> ConfigSubentryData:
    """Return the subentry the flow would make for the miner at host."""
    info = await identify(host)
    return ConfigSubentryData(
        data={"host": host, "priority": 50, **options},
        subentry_type="miner",
        title=f"{info.model} ({host})",
        unique_id=info.unique_id,
    )


async def setup_site(
    hass: HomeAssistant, subentries: list[ConfigSubentryData], title: str = "Garage"
) -> ConfigEntry:
    """Add a mining site entry with the given miners and set it up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=title,
        data={"kind": "mining_site", "name": title},
        unique_id=f"mining_site_{title.lower()}",
        subentries_data=subentries,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def setup_fleet_site(hass: HomeAssistant, fleet: Fleet) -> ConfigEntry:
    """Set up "Garage" with the three simulated miners, priorities 10 / 50 / 90."""
    subentries = [
        await miner_subentry(miner.ip, priority=priority)
        for miner, priority in zip(fleet.miners, (10, 50, 90), strict=True)
    ]
    return await setup_site(hass, subentries)


@pytest.fixture
async def site(hass: HomeAssistant, fleet: Fleet) -> AsyncIterator[ConfigEntry]:
    """A site with the whole simulated fleet, priorities 10 / 50 / 90.

    Unloaded before the fleet stops: a poll that connects while a miner's server
    closes is an error in the loop's handler, which fails the test's teardown.
    """
    entry = await setup_fleet_site(hass, fleet)
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


_opened: list[MinerClient] = []


async def connect(host: str, **kwargs: Any) -> MinerClient:
    """Connect to a miner; the client (and its web session) is closed after
    the test."""
    client = await _connect(host, **kwargs)
    _opened.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _opened:
        await _opened.pop().aclose()


async def open_credentials_repair(
    hass: HomeAssistant, coordinator: MiningSiteCoordinator, subentry_id: str
) -> tuple[Any, FlowResult]:
    """After a poll refused for the miner's password: the fixable repair is
    raised, the miner has no reading, and its repair flow opens (the repair
    flow manager and the flow's first form)."""
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    issue_id = f"miner_credentials_{subentry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert coordinator.slots[subentry_id].reading is None
    manager = repairs_flow_manager(hass)
    assert manager is not None
    return manager, await manager.async_init(DOMAIN, data={"issue_id": issue_id})
