"""The participate switch of a grid signal entry."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .entity import GridSignalEntity
from .runtime import grid_signal_runtime

PARTICIPATE = SwitchEntityDescription(
    key="participate",
    translation_key="participate",
    entity_category=EntityCategory.CONFIG,
)


class ParticipateSwitch(GridSignalEntity, SwitchEntity):
    """On: opt in to events automatically; off: opt out of them."""

    @property
    def is_on(self) -> bool:
        """Return True while HashGrid opts in."""
        return self.coordinator.participate

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Opt in to every event that has not ended."""
        await self.coordinator.async_set_participate(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Opt out of every event that has not ended."""
        await self.coordinator.async_set_participate(False)


async def async_setup_switches(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the participate switch."""
    coordinator = grid_signal_runtime(entry).coordinator
    async_add_entities([ParticipateSwitch(coordinator, PARTICIPATE)])
