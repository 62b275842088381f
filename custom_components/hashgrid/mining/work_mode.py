"""A miner's work mode as a select entity.

Avalon: low, medium, high; Whatsminer: its power modes low, normal, high.
A work mode is a power step: choosing one is a command for that mode, at
that mode's power, sent through the site's curtailer like any other command
to a miner (within the site's limits, read back, reported).
"""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..const import DOMAIN
from ..models import HashGridConfigEntry
from .client import MinerInfo
from .control import _through_curtailer
from .entity import MinerEntity
from .runtime import site_runtime


class MinerWorkModeSelect(MinerEntity, SelectEntity):
    """The firmware's work mode; a choice goes through the curtailer."""

    follows_state_read = True

    def __init__(self, *args: object, info: MinerInfo) -> None:
        """Offer the identified firmware's modes."""
        super().__init__(*args)  # type: ignore[arg-type]
        self._modes = {mode.name: mode for mode in info.work_modes}
        self._attr_options = list(self._modes)

    @property
    def current_option(self) -> str | None:
        """Return the mode the miner reports."""
        reading = self.slot.reading
        return None if reading is None else reading.work_mode

    async def async_select_option(self, option: str) -> None:
        """Switch modes (at the mode's power) via the curtailer."""
        if (mode := self._modes.get(option)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="miner_work_mode_unknown",
                translation_placeholders={
                    "miner": self.slot.subentry.title,
                    "mode": option,
                },
            )
        await _through_curtailer(self, "set_power", mode.power_w, work_mode=mode.name)


async def async_setup_selects(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a work mode select to each miner whose firmware has work modes."""
    coordinator = site_runtime(entry).coordinator
    for slot in coordinator.slots.values():
        if slot.info is not None and slot.info.work_modes:
            async_add_entities(
                [
                    MinerWorkModeSelect(
                        coordinator,
                        slot,
                        SelectEntityDescription(
                            key="work_mode", translation_key="work_mode"
                        ),
                        info=slot.info,
                    )
                ],
                config_subentry_id=slot.subentry_id,
            )
