"""The registry of entry kinds: each kind's handler, by kind."""

from __future__ import annotations

from collections.abc import Mapping

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND, DOMAIN, EntryKind
from .grid_signal.handler import HANDLER as GRID_SIGNAL
from .lightning.handler import HANDLER as LIGHTNING_NODE
from .microgrid.handler import HANDLER as MICROGRID
from .mining.handler import HANDLER as MINING_SITE
from .models import HashGridConfigEntry, KindHandler, PlatformSetup

KINDS: Mapping[EntryKind, KindHandler] = {
    handler.kind: handler
    for handler in (MINING_SITE, MICROGRID, LIGHTNING_NODE, GRID_SIGNAL)
}


def handler_for(entry: HashGridConfigEntry) -> KindHandler:
    """Return the handler for an entry's kind."""
    try:
        return KINDS[EntryKind(entry.data[CONF_KIND])]
    except (KeyError, ValueError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="unknown_kind",
            translation_placeholders={"kind": str(entry.data.get(CONF_KIND))},
        ) from err


def platform_entry_setup(platform: Platform) -> PlatformSetup:
    """Return a platform's `async_setup_entry`: it asks the entry's kind."""

    async def async_setup_entry(
        hass: HomeAssistant,
        entry: HashGridConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        if (setup := handler_for(entry).platforms.get(platform)) is not None:
            await setup(hass, entry, async_add_entities)

    return async_setup_entry
