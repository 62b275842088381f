"""The runtime data of a microgrid entry."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..models import HashGridConfigEntry, KindRuntime, runtime_as
from .coordinator import MicrogridCoordinator
from .victron import SetpointKeeper


@dataclass
class MicrogridRuntime(KindRuntime):
    """The device's coordinator and, for a Victron GX, its setpoint keeper."""

    coordinator: MicrogridCoordinator
    keeper: SetpointKeeper | None = None

    async def async_shutdown(self) -> None:
        """Stop re-sending the setpoint and close the connection."""
        if self.keeper is not None:
            await self.keeper.stop()
        await self.coordinator.async_close()
        await self.coordinator.async_save_energy()

    def diagnostics(self) -> dict[str, Any]:
        """Return the detected device, the options in force and the last poll."""
        coordinator = self.coordinator
        data = coordinator.data
        return {
            "device": None
            if coordinator.device is None
            else asdict(coordinator.device),
            "policy": coordinator.policy.value,
            "target_soc_pct": coordinator.target_soc_pct,
            "last_update_success": coordinator.last_update_success,
            "sunspec_chain": None
            if coordinator.sunspec is None
            else {
                "end_confirmed": coordinator.sunspec.end_confirmed,
                "over_budget": [i.model_id for i in coordinator.sunspec.over_budget],
            },
            "requests": coordinator.transport.requests,
            "connects": coordinator.transport.connects,
            "data": None if data is None else asdict(data),
            "ess_setpoint_kept": None
            if self.keeper is None
            else {
                "setpoint_w": self.keeper.setpoint,
                "active": self.keeper.active,
                "sends": self.keeper.sends,
                "reasserts": self.keeper.reasserts,
                "read_back_w": self.keeper.read_back,
                "register": 2716 if self.keeper.gx.uses_override else 2700,
                "firmware": self.keeper.gx.firmware_text,
                "failures": self.keeper.failures,
            },
        }


def microgrid_runtime(entry: HashGridConfigEntry) -> MicrogridRuntime:
    """Return the entry's microgrid runtime (the platforms' typed view)."""
    return runtime_as(entry, MicrogridRuntime)
