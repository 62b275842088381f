"""The logbook's words for HashGrid's events: one readable line each.

A settlement ("Alice: paid 500 sat for 1.25 kWh, routing fee 3 sat"), a refused
one ("Alice: no payment, meter went backwards"), and a payment received. The
logbook shows them beside the neighbour's Settlement event entity.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN
from .lightning.const import EVENT_PAYMENT_RECEIVED, EVENT_SETTLEMENT

#: Why nothing was paid, as the logbook says it.
REFUSALS = {
    "meter_unavailable": "the meter has no valid reading",
    "meter_backwards": "the meter went backwards",
    "price_unavailable": "no valid price",
    "nothing_owed": "nothing owed",
    "below_minimum": "below the minimum settlement",
    "cap_per_payment": "over the cap per payment",
    "cap_per_day": "over the daily cap",
    "pending": "the last payment is still pending",
    "reconcile_required": "waiting for the node",
    "baseline_set": "metering started",
    "amount_out_of_range": "an absurd amount",
    "ledger_lost": "the ledger is lost (see Repairs)",
}


def _kwh(text: Any) -> str:
    try:
        return f"{Decimal(str(text)).normalize():f}"
    except InvalidOperation, ValueError:
        return str(text)


def settlement_message(data: dict[str, Any]) -> str:
    """What one settlement attempt did, in words."""
    status = data.get("status")
    sats = data.get("amount_sat")
    if status == "paid":
        fee = data.get("fee_msat")
        fee_text = "" if fee is None else f", routing fee {fee / 1000:g} sat"
        return f"paid {sats} sat for {_kwh(data.get('kwh'))} kWh{fee_text}"
    if status == "pending":
        return f"payment of {sats} sat pending: waiting for the node to tell"
    if status == "failed":
        return f"payment of {sats} sat failed: {data.get('detail') or 'no route'}"
    if status == "rebaselined":
        return f"meter reset accepted at {_kwh(data.get('kwh'))} kWh"
    reason = str(data.get("reason"))
    return f"no payment: {REFUSALS.get(reason, reason.replace('_', ' '))}"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe the settlement and incoming-payment events."""
    registry = er.async_get(hass)

    @callback
    def describe_settlement(event: Event) -> dict[str, Any]:
        data = event.data
        entry = hass.config_entries.async_get_entry(data.get("config_entry_id", ""))
        entity_id = None
        if entry is not None and (node := entry.unique_id or entry.entry_id):
            entity_id = registry.async_get_entity_id(
                "event", DOMAIN, f"{node}_{data.get('subentry_id')}_settlement"
            )
        return {
            LOGBOOK_ENTRY_NAME: data.get("neighbour", "Neighbour"),
            LOGBOOK_ENTRY_MESSAGE: settlement_message(dict(data)),
            LOGBOOK_ENTRY_ENTITY_ID: entity_id,
        }

    @callback
    def describe_received(event: Event) -> dict[str, Any]:
        data = event.data
        entry = hass.config_entries.async_get_entry(data.get("config_entry_id", ""))
        note = data.get("payer_note") or data.get("description")
        return {
            LOGBOOK_ENTRY_NAME: entry.title if entry else "Lightning node",
            LOGBOOK_ENTRY_MESSAGE: f"received {data.get('amount_sat')} sat"
            + (f" ({note})" if note else ""),
        }

    async_describe_event(DOMAIN, EVENT_SETTLEMENT, describe_settlement)
    async_describe_event(DOMAIN, EVENT_PAYMENT_RECEIVED, describe_received)
