"""The base entity of the microgrid part: one device per entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo

from ..const import DOMAIN
from ..entity import HubEntity, entry_uid
from .coordinator import MicrogridCoordinator
from .detect import device_name


def microgrid_device_info(coordinator: MicrogridCoordinator) -> DeviceInfo:
    """Return the physical device behind the entry, named as its product."""
    device = coordinator.device
    info = DeviceInfo(
        identifiers={(DOMAIN, entry_uid(coordinator.config_entry))},  # its serial
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
