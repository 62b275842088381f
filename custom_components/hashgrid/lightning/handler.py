"""The `lightning_node` kind: setup and platforms of a Core Lightning node entry."""

from __future__ import annotations

from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr

from ..const import DOMAIN, EntryKind
from ..kinds import register
from ..models import HashGridConfigEntry, KindHandler, KindRuntime
from . import const
from .const import CONF_DIRECTION, EVENT_PAYMENT_RECEIVED, SUBENTRY_NEIGHBOUR, Direction
from .coordinator import LightningCoordinator, make_client
from .entity import node_device_info
from .errors import LightningError
from .event import async_setup_events, payment_attributes
from .flow import NeighbourSubentryFlow
from .listener import InvoiceListener
from .runtime import LightningRuntime
from .sensor import async_setup_sensors
from .settlement import Settler


async def async_setup_lightning(
    hass: HomeAssistant, entry: HashGridConfigEntry
) -> KindRuntime:
    """Poll the node once, reconcile pending settlements, follow payments."""
    client = make_client(hass, entry.data)
    coordinator = LightningCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    settler = await Settler.async_load(
        hass, entry.entry_id, client, dict(entry.subentries)
    )
    listener = InvoiceListener(
        client,
        lambda invoice: runtime.payment_received(invoice),
        wait_timeout_s=const.WAIT_TIMEOUT_S,
        backoff_s=const.LISTENER_BACKOFF_S,
        backoff_max_s=const.LISTENER_BACKOFF_MAX_S,
    )
    runtime = LightningRuntime(
        coordinator=coordinator, settler=settler, listener=listener
    )
    try:
        # Before anything new is paid: what became of payments in flight?
        await settler.async_reconcile()
        await listener.async_prime()
        for sid, sub in settler.neighbours.items():
            if sub.data.get(CONF_DIRECTION) == Direction.THEY_PAY:
                offer = await client.call(
                    "offer",
                    {
                        "amount": "any",
                        "description": f"HashGrid energy: {sub.title}",
                        "label": f"hashgrid:{sid}",
                    },
                )
                runtime.offers[sid] = (offer["offer_id"], offer["bolt12"])
                coordinator.watched_offers.add(offer["offer_id"])
                await settler.async_start_metering(sid)
    except LightningError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="lightning_poll_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    if runtime.offers:
        await coordinator.async_refresh()
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **node_device_info(coordinator)
    )

    @callback
    def _on_paid(invoice: dict[str, Any]) -> None:
        hass.bus.async_fire(
            EVENT_PAYMENT_RECEIVED,
            {"config_entry_id": entry.entry_id, **payment_attributes(invoice)},
        )
        if invoice.get("local_offer_id") in coordinator.watched_offers:
            entry.async_create_background_task(
                hass, coordinator.async_request_refresh(), "hashgrid_offer_paid"
            )

    runtime.on_payment_received.append(_on_paid)
    runtime.listener_task = entry.async_create_background_task(
        hass, listener.run(), f"hashgrid lightning listener {entry.title}"
    )
    return runtime


HANDLER = register(
    KindHandler(
        kind=EntryKind.LIGHTNING_NODE,
        setup=async_setup_lightning,
        platforms={
            Platform.SENSOR: async_setup_sensors,
            Platform.EVENT: async_setup_events,
        },
        subentry_flows={SUBENTRY_NEIGHBOUR: NeighbourSubentryFlow},
    )
)
