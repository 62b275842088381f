"""Core-style snapshots of a microgrid entry: entities, states, devices, diagnostics.

The simulated site stands at noon (no ticker), so every figure is the same on
every run.
"""

from __future__ import annotations

from functools import partial

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.hashgrid.const import EntryKind
from simulators.microgrid import MicrogridSite
from tests.snapshots import (
    platforms_of,
    snapshot_devices_and_diagnostics,
    snapshot_entities,
)

from .conftest import add_entry


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
# The SunSpec inverter has no button (those are the Victron GX's).
@pytest.mark.parametrize(
    "platform",
    [p for p in platforms_of(EntryKind.MICROGRID) if p is not Platform.BUTTON],
)
async def test_entities(
    hass: HomeAssistant,
    grid: MicrogridSite,
    platform: Platform,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each platform's entities of the SunSpec hybrid inverter."""
    await snapshot_entities(
        hass,
        snapshot,
        monkeypatch,
        EntryKind.MICROGRID,
        platform,
        partial(add_entry, hass, grid),
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_devices_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    grid: MicrogridSite,
    snapshot: SnapshotAssertion,
) -> None:
    """The inverter's device and the whole diagnostics dict (port: free, varies)."""
    await snapshot_devices_and_diagnostics(
        hass, hass_client, snapshot, partial(add_entry, hass, grid), "port"
    )
