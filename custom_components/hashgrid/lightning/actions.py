"""The Lightning actions: create an invoice, pay, settle a neighbour (admin
only), and what a neighbour was paid today (read-only)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_NAME
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
import probatio

from ..const import DOMAIN, EntryKind
from ..entries import ATTR_CONFIG_ENTRY_ID, called_entry
from ..models import HashGridConfigEntry
from .client import NodeClient
from .const import CONF_DIRECTION, Direction
from .errors import ConnectionLost, LightningError, RpcError, RuneRejected
from .runtime import LightningRuntime, lightning_runtime

ATTR_AMOUNT = "amount_sat"
ATTR_DESCRIPTION = "description"
ATTR_EXPIRY = "expiry"
ATTR_INVOICE = "invoice"
ATTR_MAX_FEE = "max_fee_sat"
ATTR_NEIGHBOUR = "neighbour"
ATTR_MISSING_OK = "missing_ok"
ATTR_ACCEPT_METER_RESET = "accept_meter_reset"

SERVICE_CREATE_INVOICE = "create_invoice"
SERVICE_PAY = "pay"
SERVICE_SETTLE_NEIGHBOUR = "settle_neighbour"
SERVICE_GET_NEIGHBOUR_PAID = "get_neighbour_paid"
ATTR_PERIOD = "period"
PERIOD_TODAY = "today"

_NODE: dict[Any, Any] = {probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
_SATS = probatio.All(probatio.Coerce(int), probatio.Range(min=1))

CREATE_INVOICE_SCHEMA = probatio.Schema(
    {
        **_NODE,
        probatio.Optional(ATTR_AMOUNT): _SATS,
        probatio.Required(ATTR_DESCRIPTION): cv.string,
        probatio.Optional(ATTR_EXPIRY): cv.positive_time_period,
    }
)
PAY_SCHEMA = probatio.Schema(
    {
        **_NODE,
        probatio.Required(ATTR_INVOICE): cv.string,
        probatio.Optional(ATTR_AMOUNT): _SATS,
        probatio.Optional(ATTR_MAX_FEE): probatio.All(
            probatio.Coerce(int), probatio.Range(min=0)
        ),
    }
)
GET_NEIGHBOUR_PAID_SCHEMA = probatio.Schema(
    {
        **_NODE,
        probatio.Required(ATTR_NEIGHBOUR): cv.string,
        probatio.Optional(ATTR_MISSING_OK, default=False): cv.boolean,
        probatio.Optional(ATTR_PERIOD, default=PERIOD_TODAY): probatio.In(
            [PERIOD_TODAY]
        ),
    }
)
SETTLE_NEIGHBOUR_SCHEMA = probatio.Schema(
    {
        **_NODE,
        probatio.Required(ATTR_NEIGHBOUR): cv.string,
        probatio.Optional(ATTR_ACCEPT_METER_RESET, default=False): cv.boolean,
    }
)


def _runtime(call: ServiceCall) -> tuple[HashGridConfigEntry, LightningRuntime]:
    """The loaded Lightning node entry the call names."""
    entry = called_entry(call, EntryKind.LIGHTNING_NODE)
    return entry, lightning_runtime(entry)


# What a person may put before a neighbour's name ("neighbour Alice").
_SPOKEN_PREFIXES = ("our ", "the ", "neighbour ", "neighbor ")


def spoken_forms(name: str) -> set[str]:
    """The ways a person says a neighbour's name, case-folded.

    "Neighbour Alice (we pay)" is also "neighbour alice" and "alice"; the
    direction in brackets and a leading "neighbour" ("our neighbour") are
    left out, so "Alice", "alice" and "neighbour alice" all find her.
    """
    text = " ".join(name.casefold().split())
    forms = {text}
    unbracketed = " ".join(part.split(")", 1)[-1] for part in text.split("(")).split()
    forms.add(" ".join(unbracketed))
    for form in list(forms):
        while form.startswith(_SPOKEN_PREFIXES):
            for prefix in _SPOKEN_PREFIXES:
                form = form.removeprefix(prefix)
            forms.add(form)
    return {form.strip() for form in forms} - {""}


def find_neighbour(runtime: LightningRuntime, name: str) -> ConfigSubentry | None:
    """A node's neighbour by subentry id, or by name as a person says it.

    The name matches the neighbour's title or configured name in any case,
    with or without "neighbour" before it or the direction in brackets
    after it (``spoken_forms``); an exact title wins over a looser match.
    """
    neighbours = runtime.settler.neighbours
    if name in neighbours:
        return neighbours[name]
    wanted = " ".join(name.casefold().split())
    if not wanted:
        return None
    for sub in neighbours.values():
        if wanted in (
            sub.title.casefold(),
            str(sub.data.get(CONF_NAME, "")).casefold(),
        ):
            return sub
    said = spoken_forms(name)
    return next(
        (
            sub
            for sub in neighbours.values()
            if said
            & (spoken_forms(sub.title) | spoken_forms(str(sub.data.get(CONF_NAME, ""))))
        ),
        None,
    )


def start_of_period(period: str = PERIOD_TODAY) -> datetime:
    """When the period began: today is since the site's local midnight."""
    del period  # today is the only period so far
    return dt_util.start_of_local_day()


def received_sat(runtime: LightningRuntime, subentry_id: str) -> int | None:
    """What a neighbour who pays us has paid to our offer in all (None: unknown)."""
    offer = runtime.offers.get(subentry_id)
    data = runtime.coordinator.data
    if offer is None or data is None:
        return None
    return data.offer_received_msat.get(offer[0], 0) // 1000


def _called_neighbour(
    call: ServiceCall, *, we_pay_only: bool = True
) -> tuple[LightningRuntime, ConfigSubentry]:
    """The neighbour (one we pay) of the node the call names; else a clear error."""
    entry, runtime = _runtime(call)
    wanted = call.data[ATTR_NEIGHBOUR]
    if (subentry := find_neighbour(runtime, wanted)) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="lightning_unknown_neighbour",
            translation_placeholders={"neighbour": wanted, "title": entry.title},
        )
    if we_pay_only and subentry.data.get(CONF_DIRECTION) == Direction.THEY_PAY:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="lightning_neighbour_pays_us",
            translation_placeholders={"neighbour": subentry.title},
        )
    return runtime, subentry


def _node_error(err: LightningError, action: str) -> HomeAssistantError:
    if isinstance(err, RuneRejected):
        key = "lightning_rune_rejected"
    elif isinstance(err, ConnectionLost):
        key = "lightning_outcome_unknown"
    elif isinstance(err, RpcError):
        key = "lightning_rpc_error"
    else:
        key = "lightning_cannot_connect"
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"action": action, "error": str(err)},
    )


async def async_create_invoice(call: ServiceCall) -> ServiceResponse:
    """A BOLT11 invoice (any amount when none is given)."""
    _, runtime = _runtime(call)
    client = runtime.coordinator.client
    amount = call.data.get(ATTR_AMOUNT)
    params: dict[str, Any] = {
        "amount_msat": "any" if amount is None else amount * 1000,
        "label": f"hashgrid-{call.context.id}",
        "description": call.data[ATTR_DESCRIPTION],
    }
    expiry: timedelta | None = call.data.get(ATTR_EXPIRY)
    if expiry is not None:
        params["expiry"] = int(expiry.total_seconds())
    try:
        result = await client.call("invoice", params)
    except LightningError as err:
        raise _node_error(err, "create_invoice") from err
    return {
        "bolt11": result["bolt11"],
        "payment_hash": result["payment_hash"],
        "expires_at": result["expires_at"],
        "label": params["label"],
        "amount_sat": amount,
    }


def _invalid(text: str, reason: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="lightning_invalid_invoice",
        translation_placeholders={"invoice": text[:24] + "…", "error": reason},
    )


async def _invoice_to_pay(
    client: NodeClient, text: str, amount_sat: int | None
) -> tuple[str, int | None]:
    """Decode first: (the invoice to pay, amount_msat to pass or None)."""
    try:
        decoded = await client.decode(text)
    except RpcError as err:
        raise _invalid(text, err.message) from err
    except LightningError as err:
        raise _node_error(err, "pay") from err
    kind = decoded.get("type")
    if not decoded.get("valid", False) or kind not in (
        "bolt11 invoice",
        "bolt12 invoice",
        "bolt12 offer",
    ):
        raise _invalid(text, str(kind or "not an invoice"))
    given = None if amount_sat is None else amount_sat * 1000
    if kind == "bolt12 offer":
        fixed = decoded.get("offer_amount_msat")
        if fixed is None and given is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="lightning_amount_required"
            )
        try:
            fetched = await client.call(
                "fetchinvoice",
                {"offer": text}
                if fixed is not None
                else {"offer": text, "amount_msat": given},
            )
        except LightningError as err:
            raise _node_error(err, "pay") from err
        return str(fetched["invoice"]), None
    inv_amount = decoded.get("amount_msat", decoded.get("invoice_amount_msat"))
    if inv_amount is None and given is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="lightning_amount_required"
        )
    return text, None if inv_amount is not None else given


async def async_pay(call: ServiceCall) -> ServiceResponse:
    """Pay a BOLT11 invoice, a BOLT12 invoice or a BOLT12 offer (decoded first)."""
    _, runtime = _runtime(call)
    client = runtime.coordinator.client
    text = call.data[ATTR_INVOICE].strip()
    if text.lower().startswith("lightning:"):
        text = text[len("lightning:") :]
    invstring, amount_msat = await _invoice_to_pay(
        client, text, call.data.get(ATTR_AMOUNT)
    )
    params: dict[str, Any] = {"invstring": invstring}
    if amount_msat is not None:
        params["amount_msat"] = amount_msat
    if (max_fee := call.data.get(ATTR_MAX_FEE)) is not None:
        params["maxfee"] = max_fee * 1000
    try:
        result = await client.call("xpay", params)
    except LightningError as err:
        raise _node_error(err, "pay") from err
    await runtime.coordinator.async_request_refresh()
    sent, amount = int(result["amount_sent_msat"]), int(result["amount_msat"])
    return {
        "amount_sat": amount // 1000,
        "amount_msat": amount,
        "fee_msat": sent - amount,
        "payment_preimage": result.get("payment_preimage"),
    }


async def async_settle_neighbour(call: ServiceCall) -> ServiceResponse:
    """Settle one neighbour now (by subentry id or name)."""
    runtime, subentry = _called_neighbour(call)
    settler = runtime.settler
    try:
        outcome = await settler.async_settle(
            subentry.subentry_id,
            accept_meter_reset=call.data[ATTR_ACCEPT_METER_RESET],
        )
    except LightningError as err:
        raise _node_error(err, "settle_neighbour") from err
    await runtime.coordinator.async_request_refresh()
    return outcome.as_dict()


async def async_get_neighbour_paid(call: ServiceCall) -> ServiceResponse:
    """What a node paid one neighbour today (read-only).

    A neighbour who pays us is answered too: direction ``they_pay``, nothing
    paid by us, and what they have paid to our offer in all (``received_sat``).
    """
    if call.data[ATTR_MISSING_OK]:
        _entry, runtime = _runtime(call)
        if find_neighbour(runtime, call.data[ATTR_NEIGHBOUR]) is None:
            return {"neighbour": call.data[ATTR_NEIGHBOUR], "found": False}
    runtime, subentry = _called_neighbour(call, we_pay_only=False)
    since = start_of_period(call.data[ATTR_PERIOD])
    direction = str(subentry.data.get(CONF_DIRECTION, Direction.WE_PAY))
    if direction == Direction.THEY_PAY:
        return {
            "neighbour": subentry.title,
            "found": True,
            "direction": direction,
            "period": call.data[ATTR_PERIOD],
            "since": since.isoformat(),
            "paid_sat": 0,
            "paid_msat": 0,
            "settlements": 0,
            "kwh": "0",
            "received_sat": received_sat(runtime, subentry.subentry_id),
        }
    summary = runtime.settler.ledger.paid_since(subentry.subentry_id, since)
    return {
        "neighbour": subentry.title,
        "found": True,
        "direction": direction,
        "period": call.data[ATTR_PERIOD],
        "since": since.isoformat(),
        "paid_sat": summary.amount_sat,
        "paid_msat": summary.amount_msat,
        "settlements": summary.settlements,
        "kwh": str(summary.kwh),
    }


#: (name, handler, schema) of the admin-only Lightning actions.
LIGHTNING_SERVICES: tuple[tuple[str, Any, probatio.Schema], ...] = (
    (SERVICE_CREATE_INVOICE, async_create_invoice, CREATE_INVOICE_SCHEMA),
    (SERVICE_PAY, async_pay, PAY_SCHEMA),
    (SERVICE_SETTLE_NEIGHBOUR, async_settle_neighbour, SETTLE_NEIGHBOUR_SCHEMA),
)


@callback
def async_setup_lightning_services(hass: HomeAssistant) -> None:
    """Register the Lightning actions: paying is admin-only, reading is not."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_NEIGHBOUR_PAID,
        async_get_neighbour_paid,
        schema=GET_NEIGHBOUR_PAID_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    for name, handler, schema in LIGHTNING_SERVICES:
        async_register_admin_service(
            hass,
            DOMAIN,
            name,
            handler,
            schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )
