"""Base entities of the Lightning part: the node's device, and each neighbour's."""

from __future__ import annotations

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_URL
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription

from ..const import DOMAIN
from ..entity import HubEntity, SubentryEntity, entry_uid
from .coordinator import LightningCoordinator


def node_device_info(coordinator: LightningCoordinator) -> DeviceInfo:
    """The node itself."""
    entry = coordinator.config_entry
    info = DeviceInfo(
        identifiers={(DOMAIN, entry_uid(entry))},  # the node id
        name=entry.title,
        manufacturer="Core Lightning",
        model="Lightning node",
    )
    if (data := coordinator.data) is not None:
        info["sw_version"] = data.version
    if url := entry.data.get(CONF_URL):
        info["configuration_url"] = url
    return info


class NodeEntity(HubEntity[LightningCoordinator]):
    """An entity of the node's device; unavailable while polls fail."""

    hub_device_info = staticmethod(node_device_info)


class NeighbourEntity(SubentryEntity[LightningCoordinator]):
    """An entity of one neighbour's device (its settlement state, not polled)."""

    def __init__(
        self,
        coordinator: LightningCoordinator,
        subentry: ConfigSubentry,
        description: EntityDescription,
    ) -> None:
        """Attach to the neighbour's device, via the node's."""
        self.subentry = subentry
        node = entry_uid(coordinator.config_entry)
        device = DeviceInfo(
            identifiers={(DOMAIN, f"{node}_{subentry.subentry_id}")},
            name=subentry.title,
            manufacturer="HashGrid",
            model="Neighbour",
        )
        super().__init__(coordinator, description, device, node)
