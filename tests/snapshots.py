"""Snapshots that read the same on every run, whichever loopback network it has."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.hashgrid.const import EntryKind
from custom_components.hashgrid.kinds import KINDS
from tests.net import canonical

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation
    from syrupy.types import SerializableData, SnapshotIndex


class CanonicalSnapshotExtension(HomeAssistantSnapshotExtension):
    """HA's snapshot format, with this run's 127.N.x.x written as 127.0.x.x.

    Simulated miners take their serial, MAC and name from their address, so
    without this a snapshot would change with the run's network (tests/net.py).
    """

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        """Keep syrupy's `__snapshots__` beside the test (this repo's layout)."""
        return str(Path(test_location.filepath).parent / "__snapshots__")

    def serialize(self, data: SerializableData, **kwargs: Any) -> str:
        """Serialize as HA does, then write the run's network canonically."""
        return canonical(super().serialize(data, **kwargs))

    @classmethod
    def get_snapshot_name(
        cls, *, test_location: PyTestLocation, index: SnapshotIndex = 0
    ) -> str:
        """Name as HA does (snapshot_platform names by entity id), canonically."""
        return canonical(
            super().get_snapshot_name(test_location=test_location, index=index)
        )


type SetUp = Callable[[], Awaitable[ConfigEntry]]


def platforms_of(kind: EntryKind) -> list[Platform]:
    """The platforms entries of `kind` set up, for parametrize."""
    return sorted(KINDS[kind].platforms)


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> ConfigEntry:
    """Add `entry` and set it up."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _unload(hass: HomeAssistant, entry: ConfigEntry) -> None:
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def snapshot_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
    kind: EntryKind,
    platform: Platform,
    entry: SetUp,
) -> None:
    """Set up the entry of `kind` with `platform` alone (snapshot_platform wants
    one), snapshot each entity's registry entry and state as HA core's
    snapshot_platform does, then unload it."""
    handler = KINDS[kind]
    monkeypatch.setitem(
        KINDS,
        kind,
        dataclasses.replace(handler, platforms={platform: handler.platforms[platform]}),
    )
    loaded = await entry()
    await snapshot_platform(hass, er.async_get(hass), snapshot, loaded.entry_id)
    await _unload(hass, loaded)


async def snapshot_devices_and_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
    entry: SetUp,
    *varying: str,
) -> None:
    """Set up the entry, snapshot its devices (by identifiers) and its whole
    diagnostics dict, then unload it.

    `varying` names more diagnostics keys that differ per run (a free port).
    """
    loaded = await entry()
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded.entry_id)
    assert devices
    for device in devices:
        name = ",".join(sorted(f"{domain}:{key}" for domain, key in device.identifiers))
        assert device == snapshot(name=f"device-{name}")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded)
    assert diagnostics == snapshot(
        name="diagnostics",
        exclude=props(
            "entry_id",
            "subentry_id",
            "created_at",
            "modified_at",
            "polled_at",
            *varying,
        ),
    )
    await _unload(hass, loaded)
