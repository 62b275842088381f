"""Base entities of the mining part: a miner's device, and the site's."""

from __future__ import annotations

from homeassistant.const import CONF_HOST
from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import (
    CONNECTION_NETWORK_MAC,
    DeviceInfo,
    format_mac,
)
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..const import DOMAIN
from .coordinator import MinerSlot, MiningSiteCoordinator


def site_device_info(coordinator: MiningSiteCoordinator) -> DeviceInfo:
    """Return the device of the site itself."""
    entry = coordinator.config_entry
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="HashGrid",
        model="Mining site",
    )


class SiteEntity(CoordinatorEntity[MiningSiteCoordinator]):
    """An entity of the site device."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: MiningSiteCoordinator, description: EntityDescription
    ) -> None:
        """Attach to the site's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.config_entry.entry_id}_{description.key}"
        self._attr_device_info = site_device_info(coordinator)


class MinerEntity(Entity):
    """An entity of one miner's device; unavailable while the miner is.

    Written whenever its miner is read (the slot's listeners), not at each
    site update: it is no coordinator listener, since a thousand miners'
    entities would be thousands of calls for nothing at every site update.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    # Whether the entity shows what a curtailment's read-back reads (mining,
    # hashrate, power, power target): only such entities are written then.
    follows_state_read = False

    def __init__(
        self,
        coordinator: MiningSiteCoordinator,
        slot: MinerSlot,
        description: EntityDescription,
    ) -> None:
        """Attach to the miner's device (identified by serial or MAC)."""
        self.coordinator = coordinator
        self.slot = slot
        self.entity_description = description
        unique = slot.subentry.unique_id or slot.subentry_id
        self._attr_unique_id = f"{unique}_{description.key}"
        info = slot.info
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, unique)},
            name=slot.subentry.title,
            via_device_id=dr.async_get_device_id_by_identifier(
                coordinator.hass,
                (DOMAIN, coordinator.config_entry.entry_id),
                config_entry_id=coordinator.config_entry.entry_id,
            ),
            configuration_url=f"http://{slot.subentry.data[CONF_HOST]}",
        )
        if info is not None:
            self._attr_device_info["manufacturer"] = info.make
            self._attr_device_info["model"] = info.model
            self._attr_device_info["sw_version"] = info.firmware
            self._attr_device_info["serial_number"] = info.serial
            if info.mac:
                self._attr_device_info["connections"] = {
                    (CONNECTION_NETWORK_MAC, format_mac(info.mac))
                }

    @property
    def available(self) -> bool:
        """Return True while the miner answers."""
        return self.coordinator.last_update_success and self.slot.available

    async def async_added_to_hass(self) -> None:
        """Write state whenever this miner is read."""
        await super().async_added_to_hass()
        listeners = self.slot.listeners
        listeners[self.async_write_ha_state] = self.follows_state_read

        @callback
        def _forget() -> None:
            listeners.pop(self.async_write_ha_state, None)

        self.async_on_remove(_forget)

    async def async_update(self) -> None:
        """Read the miner now (`homeassistant.update_entity`)."""
        await self.coordinator.async_poll_miner(self.slot)
