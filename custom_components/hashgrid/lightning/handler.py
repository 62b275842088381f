"""The `lightning_node` kind: setup and platforms of a Core Lightning node entry."""

from __future__ import annotations

from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr

from ..const import DOMAIN, LOGGER, EntryKind
from ..models import HashGridConfigEntry, KindHandler, KindRuntime
from . import const
from .const import (
    CONF_DIRECTION,
    CONF_LEDGER_ID,
    CONF_OUR_OFFER,
    CONF_OUR_OFFER_ID,
    EVENT_PAYMENT_RECEIVED,
    OFFER_LABEL_PREFIX,
    SUBENTRY_NEIGHBOUR,
    Direction,
)
from .coordinator import LightningCoordinator, make_client
from .entity import node_device_info
from .errors import LightningError
from .event import async_setup_events, payment_attributes
from .flow import LightningFlowMixin, NeighbourSubentryFlow
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
    settler = await Settler.async_get(
        hass,
        entry.entry_id,
        client,
        dict(entry.subentries),
        entry.data.get(CONF_LEDGER_ID),
    )
    if entry.data.get(CONF_LEDGER_ID) != settler.ledger.ledger_id:
        # The entry remembers its ledger, so a lost store is noticed.
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_LEDGER_ID: settler.ledger.ledger_id}
        )
    if settler.ledger.lost is not None:
        LOGGER.error(
            "The settlement ledger of %s is lost (%s): nothing is paid until a "
            "new one is confirmed",
            entry.title,
            settler.ledger.lost,
        )
        settler.async_raise_ledger_lost()
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
        # Before anything new is paid: what became of payments in flight? (A
        # settlement still running from before a reload resolves its own.)
        if not settler.busy:
            await settler.async_reconcile()
        await listener.async_prime()
        await _async_offers(hass, entry, runtime)
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


async def _async_offers(
    hass: HomeAssistant, entry: HashGridConfigEntry, runtime: LightningRuntime
) -> None:
    """Our offer for each they_pay neighbour: made once, its id kept in the
    subentry and reused (a node without an announced address mints a new offer
    on every ``offer`` call); our offers nobody uses any more are disabled."""
    client = runtime.coordinator.client
    ours = [
        o
        for o in (await client.call("listoffers"))["offers"]
        if str(o.get("label", "")).startswith(OFFER_LABEL_PREFIX)
    ]
    by_id = {o["offer_id"]: o for o in ours}
    kept: set[str] = set()
    for sid, sub in runtime.settler.neighbours.items():
        if sub.data.get(CONF_DIRECTION) != Direction.THEY_PAY:
            continue
        label = f"{OFFER_LABEL_PREFIX}{sid}"
        offer = by_id.get(sub.data.get(CONF_OUR_OFFER_ID, ""))
        if offer is None:
            # One made before its id was kept: the newest with its label.
            offer = next((o for o in reversed(ours) if o.get("label") == label), None)
        if offer is not None and not offer.get("active", True):
            offer = await client.call("enableoffer", {"offer_id": offer["offer_id"]})
        if offer is None:
            offer = await client.call(
                "offer",
                {
                    "amount": "any",
                    "description": f"HashGrid energy: {sub.title}",
                    "label": label,
                },
            )
        offer_id, bolt12 = offer["offer_id"], offer["bolt12"]
        kept.add(offer_id)
        if (sub.data.get(CONF_OUR_OFFER_ID), sub.data.get(CONF_OUR_OFFER)) != (
            offer_id,
            bolt12,
        ):
            hass.config_entries.async_update_subentry(
                entry,
                sub,
                data={**sub.data, CONF_OUR_OFFER_ID: offer_id, CONF_OUR_OFFER: bolt12},
            )
        runtime.offers[sid] = (offer_id, bolt12)
        runtime.coordinator.watched_offers.add(offer_id)
        await runtime.settler.async_start_metering(sid)
    for offer in ours:
        if offer["offer_id"] not in kept and offer.get("active", True):
            LOGGER.info("Disabling our unused offer %s", offer.get("label"))
            await client.call("disableoffer", {"offer_id": offer["offer_id"]})


HANDLER = KindHandler(
    kind=EntryKind.LIGHTNING_NODE,
    setup=async_setup_lightning,
    platforms={
        Platform.SENSOR: async_setup_sensors,
        Platform.EVENT: async_setup_events,
    },
    subentry_flows={SUBENTRY_NEIGHBOUR: NeighbourSubentryFlow},
    reconfigure=LightningFlowMixin.async_step_reconfigure_lightning_node,
    reauth=LightningFlowMixin.async_step_reauth_lightning,
)
