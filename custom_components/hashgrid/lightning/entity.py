"""Base entities of the Lightning part: the node's device, and each neighbour's."""

from __future__ import annotations

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_URL
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..const import DOMAIN
from .coordinator import LightningCoordinator


def node_uid(coordinator: LightningCoordinator) -> str:
    """The node's id (the entry's unique id)."""
    entry = coordinator.config_entry
    return entry.unique_id or entry.entry_id


def node_device_info(coordinator: LightningCoordinator) -> DeviceInfo:
    """The node itself."""
    entry = coordinator.config_entry
    info = DeviceInfo(
        identifiers={(DOMAIN, node_uid(coordinator))},
        name=entry.title,
        manufacturer="Core Lightning",
        model="Lightning node",
    )
    if (data := coordinator.data) is not None:
        info["sw_version"] = data.version
    if url := entry.data.get(CONF_URL):
        info["configuration_url"] = url
    return info


class NodeEntity(CoordinatorEntity[LightningCoordinator]):
    """An entity of the node's device; unavailable while polls fail."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: LightningCoordinator, description: EntityDescription
    ) -> None:
        """Attach to the node's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{node_uid(coordinator)}_{description.key}"
        self._attr_device_info = node_device_info(coordinator)


class NeighbourEntity(Entity):
    """An entity of one neighbour's device (its settlement state, not polled)."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        coordinator: LightningCoordinator,
        subentry: ConfigSubentry,
        description: EntityDescription,
    ) -> None:
        """Attach to the neighbour's device, via the node's."""
        self.coordinator = coordinator
        self.subentry = subentry
        self.entity_description = description
        node = node_uid(coordinator)
        self._attr_unique_id = f"{node}_{subentry.subentry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"{node}_{subentry.subentry_id}")},
            name=subentry.title,
            manufacturer="HashGrid",
            model="Neighbour",
            via_device_id=dr.async_get_device_id_by_identifier(
                coordinator.hass,
                (DOMAIN, node),
                config_entry_id=coordinator.config_entry.entry_id,
            ),
        )
