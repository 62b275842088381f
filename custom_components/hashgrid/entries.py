"""Find HashGrid's entries: the one an action names, or the loaded ones of a kind."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import ServiceValidationError

from .const import CONF_KIND, DOMAIN, EntryKind
from .models import HashGridConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"


def called_entry(call: ServiceCall, kind: EntryKind) -> HashGridConfigEntry:
    """Return the loaded entry of the wanted kind that the call names.

    Anything else is a translated validation error: the action changes nothing.
    """
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
    entry: HashGridConfigEntry | None = call.hass.config_entries.async_get_entry(
        entry_id
    )
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.data.get(CONF_KIND) != kind:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="wrong_entry_kind",
            translation_placeholders={"title": entry.title, "kind": kind},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


def loaded_entries(hass: HomeAssistant, kind: EntryKind) -> list[HashGridConfigEntry]:
    """Return HashGrid's loaded entries of one kind."""
    entries: list[HashGridConfigEntry] = hass.config_entries.async_loaded_entries(
        DOMAIN
    )
    return [entry for entry in entries if entry.data.get(CONF_KIND) == kind]
