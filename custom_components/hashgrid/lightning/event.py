"""Event entities: payments the node receives, and each neighbour's settlements."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..models import HashGridConfigEntry
from .const import CONF_DIRECTION, Direction
from .coordinator import LightningCoordinator
from .entity import NeighbourEntity, NodeEntity
from .runtime import LightningRuntime, lightning_runtime
from .settlement import Outcome, signal_settled

EVENT_PAYMENT_RECEIVED = "payment_received"

INCOMING = EventEntityDescription(
    key="incoming_payment",
    translation_key="incoming_payment",
    event_types=[EVENT_PAYMENT_RECEIVED],
)
SETTLEMENT = EventEntityDescription(
    key="settlement",
    translation_key="settlement",
    event_types=["paid", "failed", "pending", "refused", "rebaselined"],
)


def payment_attributes(invoice: dict[str, Any]) -> dict[str, Any]:
    """What an event tells about a paid invoice (no preimage)."""
    received = invoice.get("amount_received_msat")
    out = {
        "label": invoice.get("label"),
        "description": invoice.get("description"),
        "payment_hash": invoice.get("payment_hash"),
        "amount_msat": received,
        "amount_sat": None if received is None else int(received) // 1000,
        "paid_at": invoice.get("paid_at"),
        "pay_index": invoice.get("pay_index"),
        "offer_id": invoice.get("local_offer_id"),
        "payer_note": invoice.get("invreq_payer_note"),
    }
    return {k: v for k, v in out.items() if v is not None}


class IncomingPaymentEvent(NodeEntity, EventEntity):
    """Fires once for every invoice paid to the node (fed by waitanyinvoice)."""

    entity_description: EventEntityDescription

    @callback
    def async_payment_received(self, invoice: dict[str, Any]) -> None:
        """Fire for one paid invoice."""
        self._trigger_event(EVENT_PAYMENT_RECEIVED, payment_attributes(invoice))
        self.async_write_ha_state()


class SettlementEvent(NeighbourEntity, EventEntity):
    """Fires after each settlement attempt of one neighbour."""

    entity_description: EventEntityDescription

    def __init__(self, runtime: LightningRuntime, subentry: ConfigSubentry) -> None:
        """Follow the neighbour's settlements."""
        super().__init__(runtime.coordinator, subentry, SETTLEMENT)
        self.runtime = runtime

    async def async_added_to_hass(self) -> None:
        """Listen to the settler."""
        await super().async_added_to_hass()
        sid = self.subentry.subentry_id

        @callback
        def _settled(outcome: Outcome) -> None:
            data = outcome.as_dict()
            self._trigger_event(data.pop("status"), data)
            self.async_write_ha_state()

        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal_settled(sid), _settled)
        )


async def async_setup_events(
    hass: HomeAssistant,
    entry: HashGridConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The node's incoming-payment event, and each paying neighbour's settlements."""
    runtime = lightning_runtime(entry)
    coordinator: LightningCoordinator = runtime.coordinator
    incoming = IncomingPaymentEvent(coordinator, INCOMING)
    runtime.on_payment_received.append(incoming.async_payment_received)
    entry.async_on_unload(
        lambda: runtime.on_payment_received.remove(incoming.async_payment_received)
    )
    async_add_entities([incoming])
    for subentry in runtime.settler.neighbours.values():
        if subentry.data.get(CONF_DIRECTION, Direction.WE_PAY) == Direction.WE_PAY:
            async_add_entities(
                [SettlementEvent(runtime, subentry)],
                config_subentry_id=subentry.subentry_id,
            )
