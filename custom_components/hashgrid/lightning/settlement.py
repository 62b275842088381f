"""Settling with neighbours: the HA side of the ledger (Store, meters, issues).

The ledger (:mod:`.ledger`) decides what is owed and keeps the records; here it
is backed by HA's ``Store``, fed from the meter and price sensors, and paid
through the node client. Every payment is labelled with its record's key.

One :class:`Settler` per node entry, for the life of Home Assistant: it is
kept in ``hass.data`` (not in the entry's runtime data), so its lock, its
ledger and the one ``Store`` that writes the ledger outlive reloads of the
entry. A settlement in flight when the entry reloads finishes on the same
settler, and the new setup's reconcile waits for it.

What becomes of a record when paying goes wrong:

- the request never reached the node (no connection, rune refused, the offer
  could not be fetched, the node does not know the command): *failed*;
- the node answered the payment command with a payment failure (no route,
  too expensive, expired …): *failed*, unless ``listpays`` shows it complete or
  still in flight;
- anything else (connection lost, timeout, an odd answer, a cancellation): the
  outcome is unknown and the record stays *pending*; only the node's own
  answer later (``listpays`` by label) resolves it (see ``ledger.reconcile``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
import hashlib
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import (
    CONF_NAME,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    UnitOfEnergy,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from .client import NodeClient
from .const import (
    CONF_CAP_PER_DAY,
    CONF_CAP_PER_PAYMENT,
    CONF_DIRECTION,
    CONF_MAX_FEE,
    CONF_METER_ENTITY,
    CONF_MIN_SETTLEMENT,
    CONF_NODE_ID,
    CONF_OFFER,
    CONF_PRICE,
    CONF_PRICE_ENTITY,
    EVENT_SETTLEMENT,
    EVENT_SETTLEMENT_REFUSED,
    SUBENTRY_NEIGHBOUR,
    Direction,
)
from .errors import (
    CannotConnect,
    ConnectionLost,
    LightningError,
    RateLimited,
    RpcError,
    RuneRejected,
)
from .ledger import (
    EXACT,
    LookupStatus,
    PaymentLookup,
    Reason,
    ReconcileReport,
    Refusal,
    SettlementLedger,
    SettlementRecord,
    State,
    Terms,
    classify_pays,
    meter_kwh,
    price_sats,
    to_decimal,
)

STORAGE_VERSION = 1
#: Seconds xpay may keep retrying (below CLNRest's client timeout, 30 s).
XPAY_RETRY_FOR_S = 20
#: Seconds fetchinvoice may wait for the neighbour's invoice (an onion round trip).
FETCHINVOICE_TIMEOUT_S = 20
#: Payment error codes that mean the node made no payment (CLN's
#: common/jsonrpc_errors.h: destination refused, no route, too expensive,
#: expired, unspecified, stopped retrying; bad parameters; unknown command).
DEFINITE_FAILURES = frozenset({-32602, -32601, 203, 205, 206, 207, 209, 210})
#: The key of the settlers in ``hass.data``: entry id → Settler.
DATA_SETTLERS = f"{DOMAIN}_settlers"

_ENERGY_FACTORS = {
    UnitOfEnergy.WATT_HOUR: Decimal("0.001"),
    UnitOfEnergy.KILO_WATT_HOUR: Decimal(1),
    UnitOfEnergy.MEGA_WATT_HOUR: Decimal(1000),
}


class HassLedgerStore:
    """The ledger's persistence (:class:`.ledger.LedgerStore`) on HA's ``Store``."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """One file per node entry: ``.storage/hashgrid.lightning.<entry_id>``."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.lightning.{entry_id}", atomic_writes=True
        )

    async def load(self) -> dict[str, Any] | None:
        """The saved ledger, or None."""
        return await self._store.async_load()

    async def save(self, data: dict[str, Any]) -> None:
        """Write now (not delayed): a pending record must be on disk before paying."""
        await self._store.async_save(data)


@dataclass(frozen=True)
class Outcome:
    """What one settlement attempt did (the action's response)."""

    neighbour: str
    status: str
    reason: str | None = None
    detail: str | None = None
    key: str | None = None
    amount_sat: int | None = None
    fee_msat: int | None = None
    kwh: str | None = None
    payment_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, without empty fields."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def energy_kwh(hass: HomeAssistant, entity_id: str) -> Decimal | None:
    """A meter's reading in kWh (exact), or None when it has no valid one: not a
    number, not finite, negative, absurd, or in a unit that is not energy."""
    state = hass.states.get(entity_id)
    if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        return None
    value = to_decimal(state.state)
    if value is None:
        return None
    unit = state.attributes.get("unit_of_measurement", UnitOfEnergy.KILO_WATT_HOUR)
    factor = _ENERGY_FACTORS.get(unit)
    if factor is None:
        return None
    with localcontext(EXACT):
        return meter_kwh(value * factor)


def price_of(hass: HomeAssistant, subentry: ConfigSubentry) -> Decimal | None:
    """The neighbour's price in sats/kWh: fixed, or a sensor's state (None when
    it is not a number in [0, MAX_PRICE_SATS_PER_KWH])."""
    data = subentry.data
    if entity_id := data.get(CONF_PRICE_ENTITY):
        state = hass.states.get(entity_id)
        return None if state is None else price_sats(state.state)
    return price_sats(data.get(CONF_PRICE))


def terms_of(hass: HomeAssistant, subentry: ConfigSubentry) -> Terms:
    """The ledger's terms for a neighbour."""
    data = subentry.data

    def sats(key: str) -> int | None:
        value = data.get(key)
        return None if value in (None, "") else int(value)

    return Terms(
        price_sats_per_kwh=price_of(hass, subentry),
        cap_per_payment_sats=sats(CONF_CAP_PER_PAYMENT),
        cap_per_day_sats=sats(CONF_CAP_PER_DAY),
        min_settlement_sats=sats(CONF_MIN_SETTLEMENT) or 1,
    )


def issue_id(subentry_id: str) -> str:
    """The repair issue of one neighbour's settlement."""
    return f"settlement_{subentry_id}"


def signal_settled(subentry_id: str) -> str:
    """The dispatcher signal sent with the :class:`Outcome` of each settlement
    attempt of one neighbour (its entities follow it)."""
    return f"{DOMAIN}_settled_{subentry_id}"


def ledger_issue_id(entry_id: str) -> str:
    """The repair issue of a node entry's lost ledger."""
    return f"settlement_ledger_lost_{entry_id}"


def with_payment_hash(result: dict[str, Any]) -> dict[str, Any]:
    """xpay and xkeysend answer without ``payment_hash``: derive it from the
    preimage (the hash is its SHA-256)."""
    preimage = result.get("payment_preimage")
    if preimage and not result.get("payment_hash"):
        result["payment_hash"] = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    return result


class NotSent(Exception):
    """The payment request never reached the node (safe to mark failed)."""


class Settler:
    """Settles the neighbours of one node entry, one settlement at a time."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        client: NodeClient,
        ledger: SettlementLedger,
        neighbours: dict[str, ConfigSubentry],
    ) -> None:
        """Pay through ``client``; keep the records in ``ledger``."""
        self.hass = hass
        self.entry_id = entry_id
        self.client = client
        self.ledger = ledger
        self.neighbours = neighbours
        self.last_report: ReconcileReport | None = None
        #: The last outcome per neighbour (refusals included; not persisted).
        self.last_outcome: dict[str, tuple[str, datetime]] = {}
        self._lock = asyncio.Lock()
        #: The keysend command this node takes (xkeysend from v26.06; None: ask).
        self._keysend: str | None = None

    @classmethod
    async def async_get(
        cls,
        hass: HomeAssistant,
        entry_id: str,
        client: NodeClient,
        subentries: dict[str, ConfigSubentry],
        ledger_id: str | None,
    ) -> Settler:
        """The entry's settler: the one already running (a reload), or a new one
        with the ledger loaded from the Store. ``ledger_id`` is the ledger the
        entry says it has (None: none yet)."""
        settlers: dict[str, Settler] = hass.data.setdefault(DATA_SETTLERS, {})
        neighbours = {
            sid: sub
            for sid, sub in subentries.items()
            if sub.subentry_type == SUBENTRY_NEIGHBOUR
        }
        if (settler := settlers.get(entry_id)) is not None:
            settler.client = client
            settler.neighbours = neighbours
            return settler
        ledger = await SettlementLedger.load(HassLedgerStore(hass, entry_id), ledger_id)
        settler = cls(hass, entry_id, client, ledger, neighbours)
        settlers[entry_id] = settler
        return settler

    @staticmethod
    def async_forget(hass: HomeAssistant, entry_id: str) -> None:
        """The entry was removed: drop its settler."""
        hass.data.get(DATA_SETTLERS, {}).pop(entry_id, None)

    @property
    def busy(self) -> bool:
        """Is a settlement (or a reconcile) running now?"""
        return self._lock.locked()

    # ------------------------------------------------------------ reconciling

    async def _lookup(self, record: SettlementRecord) -> PaymentLookup:
        return classify_pays(await self.client.listpays(), record.key)

    async def async_reconcile(self) -> ReconcileReport:
        """Resolve every pending record against the node (before paying anew);
        waits for a settlement in flight."""
        async with self._lock:
            return await self._reconcile()

    async def _reconcile(self) -> ReconcileReport:
        report = await self.ledger.reconcile(self._lookup, dt_util.now())
        self.last_report = report
        if report.paid or report.failed:
            LOGGER.info(
                "Reconciled settlements: paid %s, failed %s", report.paid, report.failed
            )
        if report.unresolved:
            LOGGER.warning(
                "Settlements still unresolved: %s (%s)",
                report.unresolved,
                report.errors,
            )
        return report

    async def async_start_anew(self) -> None:
        """The user confirmed a new ledger after a lost one: each neighbour's
        baseline is its meter now (what was metered before is not paid)."""
        async with self._lock:
            await self.ledger.start_anew(
                {
                    sid: energy_kwh(self.hass, sub.data[CONF_METER_ENTITY])
                    for sid, sub in self.neighbours.items()
                }
            )
        ir.async_delete_issue(self.hass, DOMAIN, ledger_issue_id(self.entry_id))

    # ------------------------------------------------------------ settling

    async def async_settle(
        self, subentry_id: str, *, accept_meter_reset: bool = False
    ) -> Outcome:
        """Pay one neighbour what is owed now (at most one payment)."""
        async with self._lock:
            outcome = await self._settle(subentry_id, accept_meter_reset)
        # A refusal shows why ("Metering started", "Nothing owed" …).
        shown = outcome.reason if outcome.status == "refused" else outcome.status
        self.last_outcome[subentry_id] = (shown or outcome.status, dt_util.utcnow())
        async_dispatcher_send(self.hass, signal_settled(subentry_id), outcome)
        self.hass.bus.async_fire(
            EVENT_SETTLEMENT,
            {
                "config_entry_id": self.entry_id,
                "subentry_id": subentry_id,
                **outcome.as_dict(),
            },
        )
        return outcome

    async def _settle(self, subentry_id: str, accept_meter_reset: bool) -> Outcome:
        subentry = self.neighbours[subentry_id]
        name = subentry.data.get(CONF_NAME, subentry.title)
        if not self.ledger.ready or self.ledger.pending(subentry_id):
            await self._reconcile()
        meter = energy_kwh(self.hass, subentry.data[CONF_METER_ENTITY])
        now = dt_util.now()
        account = self.ledger.account(subentry_id)
        if (
            accept_meter_reset
            and self.ledger.lost is None
            and meter is not None
            and account.meter_last_settled_kwh is not None
            and meter < account.meter_last_settled_kwh
            and not self.ledger.pending(subentry_id)
        ):
            await self.ledger.rebaseline(subentry_id, meter, now)
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(subentry_id))
            return Outcome(name, "rebaselined", kwh=str(meter))
        try:
            result = await self.ledger.begin(
                subentry_id, meter, terms_of(self.hass, subentry), now
            )
        except Exception as err:
            # Could not be saved: nothing was kept, nothing is paid.
            LOGGER.error("Settling %s: the ledger could not be saved: %r", name, err)
            return Outcome(name, "failed", reason="ledger_unsaved", detail=repr(err))
        if isinstance(result, Refusal):
            return self._refused(subentry, name, result)
        return await self._pay(subentry, name, result)

    def _refused(
        self, subentry: ConfigSubentry, name: str, refusal: Refusal
    ) -> Outcome:
        amount = None if refusal.amount_msat is None else refusal.amount_msat // 1000
        outcome = Outcome(
            name,
            "refused",
            reason=refusal.reason.value,
            detail=refusal.detail or None,
            amount_sat=amount,
        )
        if refusal.reason is Reason.LEDGER_LOST:
            self.async_raise_ledger_lost()
        elif refusal.is_problem:
            LOGGER.warning(
                "No payment to %s: %s %s", name, refusal.reason, refusal.detail
            )
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id(subentry.subentry_id),
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=f"settlement_{refusal.reason.value}",
                translation_placeholders={
                    "neighbour": name,
                    "detail": refusal.detail or "-",
                    "amount": "-" if amount is None else str(amount),
                },
            )
        if refusal.is_problem:
            self.hass.bus.async_fire(
                EVENT_SETTLEMENT_REFUSED,
                {
                    "config_entry_id": self.entry_id,
                    "neighbour": name,
                    "subentry_id": subentry.subentry_id,
                    "reason": refusal.reason.value,
                    "detail": refusal.detail,
                    "amount_sat": amount,
                },
            )
        return outcome

    @callback
    def async_raise_ledger_lost(self) -> None:
        """The repair issue of a lost ledger (fixable: start a new one)."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            ledger_issue_id(self.entry_id),
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="settlement_ledger_lost",
            translation_placeholders={"detail": self.ledger.lost or "-"},
            data={"entry_id": self.entry_id},
        )

    async def _send(self, subentry: ConfigSubentry, record: SettlementRecord) -> Any:
        """Pay the record (labelled with its key); return the node's answer.

        Raises :class:`NotSent` when the payment request never reached the node,
        and the client's errors otherwise.
        """
        data = subentry.data
        maxfee = data.get(CONF_MAX_FEE)
        extra = {} if maxfee in (None, "") else {"maxfee": int(maxfee) * 1000}
        if offer := data.get(CONF_OFFER):
            try:
                fetched = await self.client.call(
                    "fetchinvoice",
                    {
                        "offer": offer,
                        "amount_msat": record.amount_msat,
                        "payer_note": record.key,
                        "timeout": FETCHINVOICE_TIMEOUT_S,
                    },
                )
            except LightningError as err:
                # No invoice, no payment (an invoice fetched but lost is unpaid).
                raise NotSent(str(err)) from err
            return with_payment_hash(
                await self._pay_call(
                    "xpay",
                    {
                        "invstring": fetched["invoice"],
                        "label": record.key,
                        "retry_for": XPAY_RETRY_FOR_S,
                        **extra,
                    },
                )
            )
        params = {
            "destination": data[CONF_NODE_ID],
            "amount_msat": record.amount_msat,
            "label": record.key,
            "retry_for": XPAY_RETRY_FOR_S,
            **extra,
        }
        if self._keysend is None or self._keysend == "xkeysend":
            try:
                result = await self._pay_call("xkeysend", params)
            except NotSent as err:
                cause = err.__cause__
                if not (isinstance(cause, RpcError) and cause.code == -32601):
                    raise
                # A node before v26.06 has no xkeysend: keysend it is.
                LOGGER.debug("The node has no xkeysend (%s); using keysend", cause)
                self._keysend = "keysend"
            else:
                self._keysend = "xkeysend"
                return with_payment_hash(result)
        return with_payment_hash(await self._pay_call("keysend", params))

    async def _pay_call(self, method: str, params: dict[str, Any]) -> Any:
        """The paying call: errors that prove nothing was sent become NotSent."""
        try:
            return await self.client.call(method, params)
        except ConnectionLost:
            raise
        except (CannotConnect, RuneRejected, RateLimited) as err:
            raise NotSent(str(err)) from err
        except RpcError as err:
            if err.code in (-32601, -32602):
                raise NotSent(str(err)) from err
            raise

    async def _pay(
        self, subentry: ConfigSubentry, name: str, record: SettlementRecord
    ) -> Outcome:
        try:
            result = await self._send(subentry, record)
        except NotSent as err:
            LOGGER.warning("Paying %s (%s): not sent: %s", name, record.key, err)
            await self.ledger.mark_failed(record.key, dt_util.now(), str(err))
            outcome = self._record_outcome(name, record)
            return Outcome(**{**outcome.as_dict(), "detail": str(err)})
        except RpcError as err:
            LOGGER.warning("Paying %s (%s) failed: %s", name, record.key, err)
            return await self._resolve(
                name, record, str(err), definite=err.code in DEFINITE_FAILURES
            )
        except LightningError as err:
            # Sent, but the answer was lost or odd: the outcome is unknown.
            LOGGER.warning("Paying %s (%s): outcome unknown: %s", name, record.key, err)
            return await self._resolve(name, record, str(err), definite=False)
        sent, amount = result.get("amount_sent_msat"), result.get("amount_msat")
        fee = (
            sent - amount if isinstance(sent, int) and isinstance(amount, int) else None
        )
        await self.ledger.mark_paid(
            record.key,
            dt_util.now(),
            payment_hash=result.get("payment_hash"),
            fee_msat=fee,
        )
        LOGGER.info(
            "Paid %s %s sat for %s kWh (%s)",
            name,
            record.amount_msat // 1000,
            record.kwh,
            record.key,
        )
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(subentry.subentry_id))
        return self._record_outcome(name, record)

    async def _resolve(
        self, name: str, record: SettlementRecord, error: str, *, definite: bool
    ) -> Outcome:
        """After an error, ask the node what became of the payment.

        Complete → paid. Failed or unknown to the node → failed only when the
        node's own answer to the payment was a definite failure; otherwise the
        record stays pending for a later reconcile.
        """
        try:
            found = await self._lookup(record)
        except LightningError:
            found = PaymentLookup(LookupStatus.PENDING)
        if found.status is LookupStatus.COMPLETE:
            await self._reconcile()
        elif definite and found.status in (
            LookupStatus.FAILED,
            LookupStatus.NOT_FOUND,
        ):
            await self.ledger.mark_failed(record.key, dt_util.now(), error)
        outcome = self._record_outcome(name, record)
        return Outcome(**{**outcome.as_dict(), "detail": error})

    @staticmethod
    def _record_outcome(name: str, record: SettlementRecord) -> Outcome:
        status = {
            State.PAID: "paid",
            State.FAILED: "failed",
            State.PENDING: "pending",
        }[record.state]
        return Outcome(
            name,
            status,
            key=record.key,
            amount_sat=record.amount_msat // 1000,
            fee_msat=record.fee_msat,
            kwh=str(record.kwh),
            payment_hash=record.payment_hash,
            reason=None if record.failure is None else "payment_failed",
        )

    # ------------------------------------------------------------ they pay us

    async def async_start_metering(self, subentry_id: str) -> None:
        """A they_pay neighbour: set the meter's baseline once (first reading)."""
        subentry = self.neighbours[subentry_id]
        meter = energy_kwh(self.hass, subentry.data[CONF_METER_ENTITY])
        account = self.ledger.account(subentry_id)
        if (
            meter is not None
            and account.meter_last_settled_kwh is None
            and self.ledger.lost is None
        ):
            await self.ledger.set_baseline(subentry_id, meter)

    def owed_by_msat(self, subentry_id: str) -> Decimal | None:
        """A they_pay neighbour: what they owe in total, exact msat (None: unknown)."""
        subentry = self.neighbours[subentry_id]
        if subentry.data.get(CONF_DIRECTION) != Direction.THEY_PAY:
            return None
        account = self.ledger.account(subentry_id)
        meter = energy_kwh(self.hass, subentry.data[CONF_METER_ENTITY])
        price = price_of(self.hass, subentry)
        base = account.meter_last_settled_kwh
        if meter is None or price is None or base is None or meter < base:
            return None
        with localcontext(EXACT):
            return (meter - base) * price * 1000

    def diagnostics(self) -> dict[str, Any]:
        """Accounts and pending records (no secrets in them)."""
        return {
            "ready": self.ledger.ready,
            "ledger_id": self.ledger.ledger_id,
            "lost": self.ledger.lost,
            "accounts": {
                sid: account.to_dict() for sid, account in self.ledger.accounts.items()
            },
            "pending": [r.to_dict() for r in self.ledger.pending()],
            "last_reconcile": None
            if self.last_report is None
            else {
                "paid": self.last_report.paid,
                "failed": self.last_report.failed,
                "unresolved": self.last_report.unresolved,
            },
        }


__all__ = ["Outcome", "Reason", "Settler"]
