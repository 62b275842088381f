"""The switches of a grid signal entry: participate, act on test events."""

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

ACT_ON_TEST_EVENTS = SwitchEntityDescription(
    key="act_on_test_events",
    translation_key="act_on_test_events",
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


class ActOnTestEventsSwitch(GridSignalEntity, SwitchEntity):
    """On: test events (testEvent=true) are acted on like real ones (off by default)."""

    @property
    def is_on(self) -> bool:
        """Return True while test events are acted on."""
        return self.coordinator.schedule.act_on_test_events

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Act on test events."""
        await self.coordinator.async_set_act_on_test_events(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Ignore test events (answered optOut)."""
        await self.coordinator.async_set_act_on_test_events(False)


async def async_setup_switches(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the participate switch and the test events switch."""
    coordinator = grid_signal_runtime(entry).coordinator
    async_add_entities(
        [
            ParticipateSwitch(coordinator, PARTICIPATE),
            ActOnTestEventsSwitch(coordinator, ACT_ON_TEST_EVENTS),
        ]
    )
