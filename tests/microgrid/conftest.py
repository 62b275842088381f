"""Fixtures of the microgrid HA tests: the simulated site and entries on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.microgrid import const
from simulators.microgrid import MicrogridSite, running_microgrid

INVERTER_SERIAL = "HGSIM-INV-0001"
GENSET_SERIAL = "HGSIM-GEN-0001"
GX_SERIAL = "c0619ab1d2e3"

# The surplus follows each poll at once (no delays) in these tests.
IMMEDIATE = {
    "policy": "mining_first",
    "target_soc": 80.0,
    "shortfall_threshold_w": 0.0,
    "shortfall_on_delay_s": 0.0,
    "shortfall_off_delay_s": 0.0,
}


@pytest.fixture
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modbus answers are awaited 0.3 s (3 s in production)."""
    monkeypatch.setattr(const, "REQUEST_TIMEOUT", 0.3)


@pytest.fixture
async def grid(
    socket_enabled: None, fast_timeouts: None
) -> AsyncIterator[MicrogridSite]:
    """The simulated site at noon; the model moves only when a test advances it."""
    async with running_microgrid(tick_interval=None) as site:
        site.advance(60)
        yield site


async def add_entry(
    hass: HomeAssistant,
    site: MicrogridSite,
    *,
    unit_id: int = 1,
    device: str = "sunspec",
    serial: str = INVERTER_SERIAL,
    title: str = "Hybrid",
    options: dict[str, Any] | None = None,
) -> ConfigEntry:
    """Add a microgrid entry for one unit of the simulator and set it up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=title,
        data={
            "kind": "microgrid",
            "host": "127.0.0.1",
            "port": site.port,
            "unit_id": unit_id,
            "device": device,
        },
        options=IMMEDIATE if options is None else options,
        unique_id=serial,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def unload_all(hass: HomeAssistant) -> None:
    """Unload every loaded HashGrid entry (closes connections, stops timers)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def inverter(
    hass: HomeAssistant, grid: MicrogridSite
) -> AsyncIterator[ConfigEntry]:
    """The SunSpec hybrid inverter (unit 1) as an entry."""
    yield await add_entry(hass, grid)
    await unload_all(hass)
