"""Repair flows: fixes a user makes from a HashGrid repair issue."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant

from .lightning.repairs import LedgerLostRepairFlow
from .mining.repairs import MinerCredentialsRepairFlow


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, Any] | None,
) -> RepairsFlow:
    """Return the fix flow of a fixable issue."""
    if issue_id.startswith("miner_credentials_") and data is not None:
        return MinerCredentialsRepairFlow(data)
    if issue_id.startswith("settlement_ledger_lost_") and data is not None:
        return LedgerLostRepairFlow(data)
    return ConfirmRepairFlow()
