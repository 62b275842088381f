"""HashGrid's key entities, exposed to Assist when they are first created.

The site's Mining switch, its Power budget and a microgrid's Surplus power
sensor are exposed to Assist (``conversation``) with a short alias ("Mining",
"Power budget", "Surplus power") so HA's built-in sentences find them ("turn off
mining", "what is the surplus power"). Nothing is changed once a setting
exists: a user's choice stands.
"""

from __future__ import annotations

from typing import Final

from homeassistant.components.homeassistant.const import DATA_EXPOSED_ENTITIES
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN

ASSISTANT: Final = "conversation"

#: (entity domain, translation key) of the entities exposed to Assist by
#: default, with the alias that HA's built-in sentences can say.
EXPOSED_BY_DEFAULT: Final[dict[tuple[str, str], str]] = {
    ("switch", "site_mining"): "Mining",
    ("number", "power_budget"): "Power budget",
    ("sensor", "surplus_power"): "Surplus power",
}


@callback
def _expose_new_entity(hass: HomeAssistant, entity_id: str) -> None:
    """Expose one of HashGrid's key entities to Assist, once, when it is created."""
    registry = er.async_get(hass)
    entry = registry.async_get(entity_id)
    if entry is None or entry.platform != DOMAIN or entry.translation_key is None:
        return
    alias = EXPOSED_BY_DEFAULT.get((entry.domain, entry.translation_key))
    if alias is None:
        return
    exposed = hass.data.get(DATA_EXPOSED_ENTITIES)
    if (
        exposed is not None
        and "should_expose" not in entry.options.get(ASSISTANT, {})
        # The user's "expose new entities" switch for Assist is respected.
        and exposed.async_get_expose_new_entities(ASSISTANT)
    ):
        async_expose_entity(hass, ASSISTANT, entity_id, True)
    # The short alias goes to the first entity of its kind only (two sites both
    # called "Mining" would make "turn off mining" ambiguous), and only while
    # the aliases are the registry's default (the computed name alone).
    taken = any(
        other.entity_id != entity_id
        and other.platform == DOMAIN
        and alias in other.aliases
        for other in registry.entities.values()
    )
    if not taken and entry.aliases == [er.COMPUTED_NAME]:
        registry.async_update_entity(entity_id, aliases=[er.COMPUTED_NAME, alias])


@callback
def async_setup_exposure(hass: HomeAssistant) -> None:
    """Expose HashGrid's key entities to Assist as they are created."""

    @callback
    def _created(event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        _expose_new_entity(hass, event.data["entity_id"])

    @callback
    def _is_create(data: er.EventEntityRegistryUpdatedData) -> bool:
        return data["action"] == "create"

    hass.bus.async_listen(
        er.EVENT_ENTITY_REGISTRY_UPDATED, _created, event_filter=_is_create
    )
