"""Fix a node whose settlement ledger was lost: confirm a new one."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
import probatio

from .const import CONF_LEDGER_ID
from .settlement import DATA_SETTLERS, Settler


class LedgerLostRepairFlow(RepairsFlow):
    """Start a new ledger, each neighbour's baseline at its meter now.

    Until the user confirms, nothing is paid: the energy metered since the last
    settlement the lost ledger knew of cannot be told apart from energy already
    paid, so HashGrid will not guess.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which node entry this is about."""
        self._entry_id: str = data["entry_id"]

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """The repairs manager opens the flow; go to the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Ask; on yes, start the new ledger and remember it in the entry."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        settler: Settler | None = self.hass.data.get(DATA_SETTLERS, {}).get(
            self._entry_id
        )
        if entry is None or settler is None:
            return self.async_abort(reason="node_removed")
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                data_schema=probatio.Schema({}),
                description_placeholders={"node": entry.title},
            )
        await settler.async_start_anew()
        self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_LEDGER_ID: settler.ledger.ledger_id}
        )
        return self.async_create_entry(data={})
