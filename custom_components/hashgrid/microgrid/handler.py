"""The `microgrid` kind: setup and platforms of a microgrid device entry."""

from __future__ import annotations

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant

from ..const import EntryKind
from ..coordinator import async_first_refresh
from ..models import HashGridConfigEntry, KindHandler, KindRuntime
from .binary_sensor import async_setup_binary_sensors
from .button import async_setup_buttons
from .const import SETPOINT_RESEND_S
from .control import async_setup_numbers
from .coordinator import MicrogridCoordinator
from .entity import microgrid_device_info
from .flow import MicrogridFlowMixin, MicrogridOptionsFlow
from .runtime import MicrogridRuntime
from .sensor import async_setup_sensors
from .victron import SetpointKeeper


async def async_setup_microgrid(
    hass: HomeAssistant, entry: HashGridConfigEntry
) -> KindRuntime:
    """Identify the device and poll it once; register its device."""
    coordinator = MicrogridCoordinator(hass, entry)
    await coordinator.async_load_energy()
    await async_first_refresh(
        hass, entry, coordinator, microgrid_device_info, close=coordinator.async_close
    )
    keeper = (
        SetpointKeeper(coordinator.victron, SETPOINT_RESEND_S)
        if coordinator.victron is not None
        else None
    )
    coordinator.keeper = keeper
    runtime = MicrogridRuntime(coordinator=coordinator, keeper=keeper)

    async def _on_stop(_: Event) -> None:
        await runtime.async_shutdown()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_stop)
    )
    return runtime


HANDLER = KindHandler(
    kind=EntryKind.MICROGRID,
    setup=async_setup_microgrid,
    platforms={
        Platform.SENSOR: async_setup_sensors,
        Platform.BINARY_SENSOR: async_setup_binary_sensors,
        Platform.NUMBER: async_setup_numbers,
        Platform.BUTTON: async_setup_buttons,
    },
    options_flow=MicrogridOptionsFlow,
    reconfigure=MicrogridFlowMixin.async_step_reconfigure_microgrid,
)
