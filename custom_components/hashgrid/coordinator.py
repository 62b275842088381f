"""The first poll of an entry's coordinator, shared by the kinds' setups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .models import HashGridConfigEntry


async def async_first_refresh[C: DataUpdateCoordinator[Any]](
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    coordinator: C,
    hub_device_info: Callable[[C], DeviceInfo],
    *,
    refresh: Callable[[], Awaitable[None]] | None = None,
    close: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Poll the coordinator once, then register the entry's own device.

    `refresh` replaces the coordinator's first refresh (a kind that connects
    first); `close` runs when it fails (the exception is raised on, as HA's
    ConfigEntryNotReady), and no device is registered then.
    """
    try:
        await (refresh or coordinator.async_config_entry_first_refresh)()
    except BaseException:
        if close is not None:
            await close()
        raise
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(coordinator)
    )
