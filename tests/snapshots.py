"""Snapshots that read the same on every run, whichever loopback network it has."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
)

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
