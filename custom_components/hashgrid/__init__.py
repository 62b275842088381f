"""HashGrid: bitcoin mining as the flexible load of a small energy site."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .exposure import async_setup_exposure
from .kinds import handler_for
from .lightning.settlement import Settler
from .models import HashGridConfigEntry
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up the actions HashGrid offers (once, for every entry)."""
    async_setup_services(hass)
    async_setup_exposure(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HashGridConfigEntry) -> bool:
    """Set up one entry: dispatch on its kind, then forward to its platforms."""
    handler = handler_for(entry)
    subentries = set(entry.subentries)
    entry.runtime_data = await handler.setup(hass, entry)
    entry.async_on_unload(entry.runtime_data.async_shutdown)
    await hass.config_entries.async_forward_entry_setups(entry, list(handler.platforms))
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_update))
    if set(entry.subentries) != subentries:
        # A subentry came or went while this entry was (re)loading, when no
        # update listener was there to hear it.
        hass.config_entries.async_schedule_reload(entry.entry_id)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HashGridConfigEntry) -> bool:
    """Unload an entry's platforms (its shutdown runs via async_on_unload)."""
    return await hass.config_entries.async_unload_platforms(
        entry, list(handler_for(entry).platforms)
    )


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HashGridConfigEntry, device: dr.DeviceEntry
) -> bool:
    """May the user delete this device? Only one nothing is behind any more
    (none of its entities is provided now: a miner that answers with another
    serial, a device from before a reconfigure). A live miner or neighbour is
    removed with its own Delete, the hub with its entry."""
    registry = er.async_get(hass)
    for entity in er.async_entries_for_device(
        registry, device.id, include_disabled_entities=True
    ):
        if entity.config_entry_id != entry.entry_id:
            continue
        state = hass.states.get(entity.entity_id)
        if state is not None and not state.attributes.get("restored"):
            return False
    return True


async def async_remove_entry(hass: HomeAssistant, entry: HashGridConfigEntry) -> None:
    """An entry was deleted: forget what outlives its reloads."""
    Settler.async_forget(hass, entry.entry_id)


async def _async_reload_on_update(
    hass: HomeAssistant, entry: HashGridConfigEntry
) -> None:
    """Reload when options or subentries change."""
    hass.config_entries.async_schedule_reload(entry.entry_id)
