"""Buttons of a microgrid device: hand the ESS grid setpoint back to the GX."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..const import DOMAIN
from ..models import HashGridConfigEntry
from .coordinator import MicrogridCoordinator
from .entity import MicrogridEntity
from .errors import MicrogridError
from .runtime import MicrogridRuntime, microgrid_runtime

RELEASE = ButtonEntityDescription(
    key="release_ess_grid_setpoint", translation_key="release_ess_grid_setpoint"
)


class ReleaseSetpointButton(MicrogridEntity, ButtonEntity):
    """Stop holding the ESS grid setpoint: the GX's own setting applies again."""

    def __init__(
        self, coordinator: MicrogridCoordinator, runtime: MicrogridRuntime
    ) -> None:
        """Keep the runtime (the keeper lives there)."""
        super().__init__(coordinator, RELEASE)
        self.runtime = runtime

    async def async_press(self) -> None:
        """Release the setpoint (Victron's documented default, never 0 W)."""
        assert self.runtime.keeper is not None
        try:
            await self.runtime.keeper.set(None)
        except MicrogridError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="microgrid_write_failed",
                translation_placeholders={
                    "entity": self.entity_id,
                    "value": "release",
                    "min": "",
                    "max": "",
                    "error": str(err),
                },
            ) from err
        await self.coordinator.async_request_refresh()


async def async_setup_buttons(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the release button of a GX."""
    runtime = microgrid_runtime(entry)
    if runtime.keeper is not None:
        async_add_entities([ReleaseSetpointButton(runtime.coordinator, runtime)])
