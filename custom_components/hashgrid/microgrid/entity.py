"""The base entity of the microgrid part: one device per entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo

from ..const import DOMAIN
from ..entity import HubEntity
from .coordinator import MicrogridCoordinator
from .detect import device_name


def device_uid(coordinator: MicrogridCoordinator) -> str:
    """Return the device's unique id (its serial, as the flow found it)."""
    entry = coordinator.config_entry
    return entry.unique_id or entry.entry_id


def microgrid_device_info(coordinator: MicrogridCoordinator) -> DeviceInfo:
    """Return the physical device behind the entry, named as its product."""
    device = coordinator.device
    info = DeviceInfo(
        identifiers={(DOMAIN, device_uid(coordinator))},
        name=coordinator.config_entry.title if device is None else device_name(device),
    )
    if device is not None:
        if device.manufacturer:
            info["manufacturer"] = device.manufacturer
        if device.model:
            info["model"] = device.model
        if device.serial:
            info["serial_number"] = device.serial
        if device.version:
            info["sw_version"] = device.version
    return info


class MicrogridEntity(HubEntity[MicrogridCoordinator]):
    """An entity of the entry's device; unavailable while polls fail."""

    hub_device_info = staticmethod(microgrid_device_info)
