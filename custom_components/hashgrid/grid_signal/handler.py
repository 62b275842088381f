"""The `grid_signal` kind: setup and platforms of an OpenADR VEN entry."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed

from ..const import EntryKind
from ..coordinator import async_first_refresh
from ..models import HashGridConfigEntry, KindHandler, KindRuntime
from .binary_sensor import async_setup_binary_sensors
from .calendar import async_setup_calendars
from .coordinator import GridSignalCoordinator
from .entity import grid_signal_device_info
from .event import async_setup_events
from .flow import GridSignalFlowMixin, GridSignalOptionsFlow
from .runtime import GridSignalRuntime
from .sensor import async_setup_sensors
from .switch import async_setup_switches


async def async_setup_grid_signal(
    hass: HomeAssistant, entry: HashGridConfigEntry
) -> KindRuntime:
    """Load the known schedule (in force at once), then register and poll.

    An unreachable VTN does not stop the setup: the stored schedule stays in
    force, the connectivity sensor says so, and each poll tries again. Nor does
    a VTN that refuses the certificate: the schedule stays in force and a reauth
    flow asks for new files.
    """
    coordinator = GridSignalCoordinator(hass, entry)
    await coordinator.async_load()

    async def _start_and_refresh() -> None:
        await coordinator.async_start_ven()
        try:
            await coordinator.async_config_entry_first_refresh()
        except ConfigEntryAuthFailed:
            entry.async_start_reauth(hass)

    await async_first_refresh(
        hass,
        entry,
        coordinator,
        grid_signal_device_info,
        refresh=_start_and_refresh,
        close=coordinator.async_close,
    )
    return GridSignalRuntime(coordinator=coordinator)


HANDLER = KindHandler(
    kind=EntryKind.GRID_SIGNAL,
    setup=async_setup_grid_signal,
    platforms={
        Platform.BINARY_SENSOR: async_setup_binary_sensors,
        Platform.SENSOR: async_setup_sensors,
        Platform.SWITCH: async_setup_switches,
        Platform.EVENT: async_setup_events,
        Platform.CALENDAR: async_setup_calendars,
    },
    options_flow=GridSignalOptionsFlow,
    reconfigure=GridSignalFlowMixin.async_step_reconfigure_grid_signal,
    reauth=GridSignalFlowMixin.async_step_reauth_grid_signal,
)
