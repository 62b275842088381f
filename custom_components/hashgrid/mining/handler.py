"""The `mining_site` kind: setup and platforms of a site entry."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback

from ..const import EntryKind
from ..coordinator import async_first_refresh
from ..models import HashGridConfigEntry, KindHandler, KindRuntime
from .climate import async_release_disabled_heaters, async_setup_climates
from .const import SUBENTRY_MINER
from .control import async_setup_buttons, async_setup_numbers, async_setup_switches
from .coordinator import MiningSiteCoordinator
from .curtailment import Curtailer
from .entity import site_device_info
from .flow import MinerSubentryFlow, MiningSiteFlowMixin
from .runtime import MiningSiteRuntime
from .sensor import async_setup_sensors
from .work_mode import async_setup_selects


async def async_setup_site(
    hass: HomeAssistant, entry: HashGridConfigEntry
) -> KindRuntime:
    """Identify and poll the miners once, then keep a curtailment in force."""
    coordinator = MiningSiteCoordinator(hass, entry)
    await coordinator.async_load_store()
    # The site's device first: every miner's device hangs off it.
    await async_first_refresh(hass, entry, coordinator, site_device_info)
    async_release_disabled_heaters(hass, coordinator)
    curtailer = Curtailer(hass, coordinator)
    if len(coordinator.limits):
        # A restart keeps the limits: enforce them again (and their expiries).
        entry.async_create_background_task(
            hass, curtailer.async_enforce(), "hashgrid_restore_budget"
        )

    @callback
    def _keep_polling() -> None:
        """Nothing to do: listening keeps the coordinator's timer running."""

    # The site is polled whichever entities are enabled: the planner and the
    # energy counters live on its readings, and a miner's entities are no
    # coordinator listeners (they follow their miner's dispatcher signals).
    entry.async_on_unload(coordinator.async_add_listener(_keep_polling))

    unidentified = {s.subentry_id for s in coordinator.slots.values() if s.info is None}

    @callback
    def _reload_when_identified() -> None:
        """A miner identified after setup gets its full set of entities."""
        if any(coordinator.slots[i].info is not None for i in unidentified):
            unidentified.clear()
            hass.config_entries.async_schedule_reload(entry.entry_id)

    if unidentified:
        entry.async_on_unload(coordinator.async_add_listener(_reload_when_identified))
    return MiningSiteRuntime(coordinator=coordinator, curtailer=curtailer)


HANDLER = KindHandler(
    kind=EntryKind.MINING_SITE,
    setup=async_setup_site,
    platforms={
        Platform.SENSOR: async_setup_sensors,
        Platform.SWITCH: async_setup_switches,
        Platform.NUMBER: async_setup_numbers,
        Platform.BUTTON: async_setup_buttons,
        Platform.SELECT: async_setup_selects,
        Platform.CLIMATE: async_setup_climates,
    },
    subentry_flows={SUBENTRY_MINER: MinerSubentryFlow},
    reconfigure=MiningSiteFlowMixin.async_step_reconfigure_mining_site,
)
