"""Core-style snapshots of a grid signal entry: entities, states, devices, diagnostics.

The VTN is polled by hand (hourly polls) and no event is scheduled, so every
figure is the same on every run.
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
from simulators.grid_signal import SimulatedVtn
from tests.snapshots import (
    platforms_of,
    set_up,
    snapshot_devices_and_diagnostics,
    snapshot_entities,
)

from .conftest import VEN_NAME


async def _entry(hass: HomeAssistant, vtn: SimulatedVtn) -> ConfigEntry:
    """add_entry's entry, under a fixed entry id (the unique ids hold it)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id="01SNAPSHOTGRIDSIGNAL00000",
        title=f"{VEN_NAME} @ 127.0.0.1",
        data={"kind": "grid_signal", "vtn_url": vtn.url, "ven_name": VEN_NAME},
        unique_id=f"{vtn.url}#{VEN_NAME}",
    )
    return await set_up(hass, entry)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", platforms_of(EntryKind.GRID_SIGNAL))
async def test_entities(
    hass: HomeAssistant,
    vtn: SimulatedVtn,
    platform: Platform,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each platform's entities of a VEN registered with the VTN."""
    await snapshot_entities(
        hass,
        snapshot,
        monkeypatch,
        EntryKind.GRID_SIGNAL,
        platform,
        partial(_entry, hass, vtn),
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_devices_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    vtn: SimulatedVtn,
    snapshot: SnapshotAssertion,
) -> None:
    """The VEN's device and the whole diagnostics dict (the VTN's port varies)."""
    await snapshot_devices_and_diagnostics(
        hass, hass_client, snapshot, partial(_entry, hass, vtn), "vtn_url"
    )
