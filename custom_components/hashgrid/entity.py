"""The base entities each part subclasses.

Every entity's unique id is its device's identifier and its description's key.
An entry has one device of its own, the hub (a site, an inverter, a node, a VEN);
a subentry (a miner, a neighbour) has its own device, attached via the hub's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.update_coordinator import (
    CoordinatorEntity,
    DataUpdateCoordinator,
)

from .const import DOMAIN
from .models import HashGridConfigEntry


def entry_uid(entry: HashGridConfigEntry) -> str:
    """The entry's unique id (a device's serial, a node's id), else its entry id."""
    return entry.unique_id or entry.entry_id


def entry_device_info(entry: HashGridConfigEntry, model: str) -> DeviceInfo:
    """The device HashGrid itself makes of an entry (a site, a VEN), as titled."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="HashGrid",
        model=model,
    )


def _unique_id(device: DeviceInfo, description: EntityDescription) -> str:
    """The device's (one) identifier, then the description's key."""
    ((_, identifier),) = device["identifiers"]
    return f"{identifier}_{description.key}"


class HubEntity[C: DataUpdateCoordinator[Any]](CoordinatorEntity[C]):
    """An entity of the entry's own device, written at each coordinator update;
    unavailable while polls fail (unless a part says otherwise)."""

    _attr_has_entity_name = True
    #: The hub's device, from the entry's coordinator (each part sets its own).
    hub_device_info: Callable[[C], DeviceInfo]

    def __init__(self, coordinator: C, description: EntityDescription) -> None:
        """Attach to the hub's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_device_info = self.hub_device_info(coordinator)
        self._attr_unique_id = _unique_id(self._attr_device_info, description)


class EntryCoordinator(Protocol):
    """What a subentry's entity needs of its entry's coordinator."""

    hass: HomeAssistant
    config_entry: HashGridConfigEntry


class SubentryEntity[C: EntryCoordinator](Entity):
    """An entity of a subentry's device, attached via the hub's; not polled,
    and no coordinator listener (each part says when it is written)."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        coordinator: C,
        description: EntityDescription,
        device: DeviceInfo,
        hub_identifier: str,
    ) -> None:
        """Attach to `device`, via the hub's device (`hub_identifier`)."""
        self.coordinator = coordinator
        self.entity_description = description
        self._attr_unique_id = _unique_id(device, description)
        self._attr_device_info = DeviceInfo(
            **device,
            via_device_id=dr.async_get_device_id_by_identifier(
                coordinator.hass,
                (DOMAIN, hub_identifier),
                config_entry_id=coordinator.config_entry.entry_id,
            ),
        )
