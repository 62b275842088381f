"""Core-style snapshots of a mining site: entities, states, devices, diagnostics.

The miners' clock stands still and HA's time is frozen, so every figure a
snapshot holds is the same on every run (tests/snapshots.py writes the run's
loopback network as 127.0.x.x).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

from homeassistant.config_entries import ConfigEntry, ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.hashgrid.const import DOMAIN, EntryKind
from simulators.miner import Fleet, running_fleet
from tests.conftest import ManualClock
from tests.snapshots import (
    platforms_of,
    set_up,
    snapshot_devices_and_diagnostics,
    snapshot_entities,
)

from .conftest import BASE, miner_subentry

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def still_utcnow(monkeypatch: pytest.MonkeyPatch) -> None:
    """HA's wall clock stands at NOW (a miner's last boot is now minus uptime).

    Not `freezer`: frozen monotonic time stalls pyasic's identification.
    """
    monkeypatch.setattr(dt_util, "utcnow", lambda: NOW)


@pytest.fixture
async def still_fleet(loopback: None, clock: ManualClock) -> AsyncIterator[Fleet]:
    """The three miners of the site tests, an hour up, on a clock that stands."""
    clock.now = 3600.0
    async with running_fleet(
        3, BASE, ("luxos", "antminer", "bitaxe"), clock=clock
    ) as f:
        yield f


async def _site(hass: HomeAssistant, fleet: Fleet) -> ConfigEntry:
    """ "Garage" with the three miners, under a fixed entry id (unique ids hold it)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id="01SNAPSHOTMININGSITE00000",
        title="Garage",
        data={"kind": "mining_site", "name": "Garage"},
        unique_id="mining_site_garage",
        subentries_data=[
            ConfigSubentryData(
                **await miner_subentry(miner.ip, priority=priority),
                subentry_id=f"01SNAPSHOTMINER{index:010d}",
            )
            for index, (miner, priority) in enumerate(
                zip(fleet.miners, (10, 50, 90), strict=True)
            )
        ],
    )
    return await set_up(hass, entry)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
# No miner of these three has work modes: the select platform makes nothing.
@pytest.mark.parametrize(
    "platform",
    [p for p in platforms_of(EntryKind.MINING_SITE) if p is not Platform.SELECT],
)
async def test_entities(
    hass: HomeAssistant,
    still_fleet: Fleet,
    platform: Platform,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each platform's entities: registry entries and states."""
    await snapshot_entities(
        hass,
        snapshot,
        monkeypatch,
        EntryKind.MINING_SITE,
        platform,
        partial(_site, hass, still_fleet),
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_devices_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    still_fleet: Fleet,
    snapshot: SnapshotAssertion,
) -> None:
    """The site's and its miners' devices, and the whole diagnostics dict."""
    await snapshot_devices_and_diagnostics(
        hass, hass_client, snapshot, partial(_site, hass, still_fleet)
    )
