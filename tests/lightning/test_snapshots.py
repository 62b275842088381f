"""Core-style snapshots of a Lightning node entry: entities, states, devices, diagnostics.

Our simulated node (on its unix socket) has fixed keys, channels and balances,
so every figure is the same on every run.
"""

from __future__ import annotations

from functools import partial

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.hashgrid.const import DOMAIN, EntryKind
from simulators.lightning import LightningSim
from tests.snapshots import (
    platforms_of,
    set_up,
    snapshot_devices_and_diagnostics,
    snapshot_entities,
)

from .conftest import node_data


async def _entry(hass: HomeAssistant, net: LightningSim) -> ConfigEntry:
    """Our node over its socket, under a fixed entry id (the unique ids hold it)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id="01SNAPSHOTLIGHTNING000000",
        title="HASHGRID",
        data=node_data(net, "socket"),
        unique_id=net.node_id,
    )
    return await set_up(hass, entry)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", platforms_of(EntryKind.LIGHTNING_NODE))
async def test_entities(
    hass: HomeAssistant,
    net: LightningSim,
    platform: Platform,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each platform's entities of our node."""
    await snapshot_entities(
        hass,
        snapshot,
        monkeypatch,
        EntryKind.LIGHTNING_NODE,
        platform,
        partial(_entry, hass, net),
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_devices_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    net: LightningSim,
    snapshot: SnapshotAssertion,
) -> None:
    """The node's device and the whole diagnostics dict (its socket path and random ledger id vary)."""
    await snapshot_devices_and_diagnostics(
        hass,
        hass_client,
        snapshot,
        partial(_entry, hass, net),
        "socket_path",
        "address",
        "ledger_id",
    )
