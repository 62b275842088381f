"""Base entities of the mining part: a miner's device, and the site's."""

from __future__ import annotations

from homeassistant.const import CONF_HOST
from homeassistant.helpers.device_registry import (
    CONNECTION_NETWORK_MAC,
    DeviceInfo,
    format_mac,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import EntityDescription

from ..const import DOMAIN
from ..entity import HubEntity, SubentryEntity, entry_device_info
from .coordinator import (
    MinerSlot,
    MiningSiteCoordinator,
    signal_miner_read,
    signal_miner_state,
)


def site_device_info(coordinator: MiningSiteCoordinator) -> DeviceInfo:
    """Return the device of the site itself."""
    return entry_device_info(coordinator.config_entry, "Mining site")


def miner_device_info(slot: MinerSlot) -> DeviceInfo:
    """Return a miner's device, identified by serial or MAC (its subentry's
    unique id), with what its identification told."""
    info = DeviceInfo(
        identifiers={(DOMAIN, slot.subentry.unique_id or slot.subentry_id)},
        name=slot.subentry.title,
        configuration_url=f"http://{slot.subentry.data[CONF_HOST]}",
    )
    if (identified := slot.info) is not None:
        info["manufacturer"] = identified.make
        info["model"] = identified.model
        info["sw_version"] = identified.firmware
        info["serial_number"] = identified.serial
        if identified.mac:
            info["connections"] = {(CONNECTION_NETWORK_MAC, format_mac(identified.mac))}
    return info


class SiteEntity(HubEntity[MiningSiteCoordinator]):
    """An entity of the site device."""

    hub_device_info = staticmethod(site_device_info)


class MinerEntity(SubentryEntity[MiningSiteCoordinator]):
    """An entity of one miner's device; unavailable while the miner is.

    Written whenever its miner is read (its miner's dispatcher signal), not
    at each site update: it is no coordinator listener, since a thousand
    miners' entities would be thousands of calls for nothing at every site
    update.
    """

    # Whether the entity shows what a curtailment's read-back reads (mining,
    # hashrate, power, power target): only such entities are written then
    # (they follow `signal_miner_state`, the others `signal_miner_read`).
    follows_state_read = False

    def __init__(
        self,
        coordinator: MiningSiteCoordinator,
        slot: MinerSlot,
        description: EntityDescription,
    ) -> None:
        """Attach to the miner's device, via the site's."""
        self.slot = slot
        super().__init__(
            coordinator,
            description,
            miner_device_info(slot),
            coordinator.config_entry.entry_id,
        )

    @property
    def available(self) -> bool:
        """Return True while the miner answers."""
        return self.coordinator.last_update_success and self.slot.available

    async def async_added_to_hass(self) -> None:
        """Write state whenever this miner is read."""
        await super().async_added_to_hass()
        signal = signal_miner_state if self.follows_state_read else signal_miner_read
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal(self.slot.subentry_id), self.async_write_ha_state
            )
        )

    async def async_update(self) -> None:
        """Read the miner now (`homeassistant.update_entity`)."""
        await self.coordinator.async_poll_miner(self.slot)
