"""Fixtures of the grid signal tests: a real openleadr VTN on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.grid_signal.coordinator import GridSignalCoordinator
from simulators.grid_signal import SimulatedVtn, running_vtn

VEN_NAME = "farm"


@pytest.fixture
async def vtn(socket_enabled: None) -> AsyncIterator[SimulatedVtn]:
    """openleadr's VTN; it asks for hourly polls so that tests poll by hand."""
    async with running_vtn(poll_interval=timedelta(hours=1)) as server:
        yield server


async def add_entry(
    hass: HomeAssistant,
    vtn: SimulatedVtn,
    *,
    ven_name: str = VEN_NAME,
    options: dict[str, Any] | None = None,
) -> ConfigEntry:
    """Add a grid signal entry for the VTN and set it up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{ven_name} @ 127.0.0.1",
        data={"kind": "grid_signal", "vtn_url": vtn.url, "ven_name": ven_name},
        options=options or {},
        unique_id=f"{vtn.url}#{ven_name}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def coordinator_of(entry: ConfigEntry) -> GridSignalCoordinator:
    """Return the entry's coordinator."""
    coordinator: GridSignalCoordinator = entry.runtime_data.coordinator
    return coordinator


async def poll(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Poll the VTN now, as the coordinator's timer would."""
    await coordinator_of(entry).async_refresh()
    await hass.async_block_till_done()


async def move_to(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime
) -> None:
    """Move the frozen clock and fire HA's timers."""
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done()


async def unload_all(hass: HomeAssistant) -> None:
    """Unload every loaded HashGrid entry (closes the VEN's session)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def entry(hass: HomeAssistant, vtn: SimulatedVtn) -> AsyncIterator[ConfigEntry]:
    """A grid signal entry registered with the VTN."""
    yield await add_entry(hass, vtn)
    await unload_all(hass)
