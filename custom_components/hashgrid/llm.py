"""LLM tools: HashGrid's intents, for assistants that use the Assist API.

Home Assistant's `llm` integration asks each loaded integration's ``llm.py``
for its tools. HashGrid offers its intents (see ``intent.py``) as tools named
``hashgrid__<IntentType>``: curtail, resume and status while a mining site's
Mining switch is exposed to the assistant, and what we paid a neighbour today
while a Lightning node with a neighbour we pay is loaded.
"""

from __future__ import annotations

from homeassistant.components.homeassistant.const import DATA_EXPOSED_ENTITIES
from homeassistant.components.homeassistant.exposed_entities import (
    async_should_expose,
)
from homeassistant.components.llm import LLMTools
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, intent
from homeassistant.helpers.llm import (
    LLM_API_ASSIST,
    IntentTool,
    LLMContext,
    Tool,
    ToolAnnotations,
)

from .const import DOMAIN, EntryKind
from .entries import loaded_entries
from .intent import (
    INTENT_CURTAIL,
    INTENT_NEIGHBOUR_PAID,
    INTENT_RESUME,
    INTENT_STATUS,
)
from .lightning.const import CONF_DIRECTION, SUBENTRY_NEIGHBOUR, Direction

# They act on (or read) the user's own miners and ledger, never the open world.
_CONTROL = ToolAnnotations(idempotent=True, open_world=False)
_READ_ONLY = ToolAnnotations(read_only=True, open_world=False)

MINING_TOOLS = {
    INTENT_CURTAIL: ("Stop mining", _CONTROL),
    INTENT_RESUME: ("Resume mining", _CONTROL),
    INTENT_STATUS: ("Mining status", _READ_ONLY),
}
LIGHTNING_TOOLS = {
    INTENT_NEIGHBOUR_PAID: ("Paid a neighbour today", _READ_ONLY),
}


@callback
def _site_exposed(hass: HomeAssistant, assistant: str) -> bool:
    """Is a loaded site's Mining switch exposed to the assistant?"""
    if DATA_EXPOSED_ENTITIES not in hass.data:
        return False
    registry = er.async_get(hass)
    return any(
        (
            switch := registry.async_get_entity_id(
                "switch", DOMAIN, f"{site.entry_id}_site_mining"
            )
        )
        is not None
        and async_should_expose(hass, assistant, switch)
        for site in loaded_entries(hass, EntryKind.MINING_SITE)
    )


@callback
def _pays_a_neighbour(hass: HomeAssistant) -> bool:
    """Is a Lightning node loaded with a neighbour we pay?"""
    return any(
        sub.subentry_type == SUBENTRY_NEIGHBOUR
        and sub.data.get(CONF_DIRECTION) != Direction.THEY_PAY
        for entry in loaded_entries(hass, EntryKind.LIGHTNING_NODE)
        for sub in entry.subentries.values()
    )


@callback
def async_get_tools(
    hass: HomeAssistant, llm_context: LLMContext, api_id: str
) -> LLMTools | None:
    """Return HashGrid's intent tools for what is set up and exposed."""
    if api_id != LLM_API_ASSIST:
        return None
    wanted: dict[str, tuple[str, ToolAnnotations]] = {}
    if llm_context.assistant and _site_exposed(hass, llm_context.assistant):
        wanted |= MINING_TOOLS
    if _pays_a_neighbour(hass):
        wanted |= LIGHTNING_TOOLS
    tools: list[Tool] = [
        IntentTool(
            f"{DOMAIN}__{handler.intent_type}",
            handler,
            title=wanted[handler.intent_type][0],
            integration=DOMAIN,
            annotations=wanted[handler.intent_type][1],
        )
        for handler in intent.async_get(hass)
        if handler.intent_type in wanted
    ]
    return LLMTools(tools=tools) if tools else None
