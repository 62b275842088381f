"""Config-flow helpers shared by the test packages."""

from __future__ import annotations

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.hashgrid.const import DOMAIN


async def open_form(hass: HomeAssistant, *menu_steps: str) -> str:
    """Start the user flow, pick `menu_steps` in turn, return the form's flow id.

    Each step must be offered by the menu before it; the last one must be a form
    of that step's name.
    """
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    for step in menu_steps:
        assert result["type"] is FlowResultType.MENU
        assert step in result["menu_options"]
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": step}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == menu_steps[-1]
    return str(result["flow_id"])
