"""The settlement ledger: pay each neighbour exactly once for every kWh.

Pure logic plus a small persistence interface; no Home Assistant imports. HA's
``Store`` backs it in the integration (anything with async ``load()``/``save()``
does, see :class:`LedgerStore`). Numbers and their bounds live in
:mod:`.amounts`, the records in :mod:`.records`.

Settling one neighbour
----------------------
1. ``await ledger.begin(neighbour_id, meter_kwh, terms, now)`` decides what is
   owed and either refuses (a :class:`Refusal` with a :class:`Reason`; nothing
   is paid, the HA glue raises a repair issue / event for the serious ones) or
   writes a :class:`SettlementRecord` in state ``pending`` **and saves it** before
   returning it (if the save fails, nothing of it stays in memory either). Its
   ``key`` (``"hg:<ledger_id>:<neighbour_id>:<seq>"``) is the idempotency key: the
   caller uses it as the payment's label. ``ledger_id`` is random per ledger, so
   a key is unique forever: a ledger lost and started anew never reuses one.
2. The caller pays ``record.amount_msat`` (once, labelled ``record.key``), then
   ``await ledger.mark_paid(key, ...)`` or ``await ledger.mark_failed(key, ...)``.
   Only a payment the node definitely did not make may be marked failed.
3. At start-up, and whenever a payment's outcome is unknown (timeout, lost
   connection, crash), ``await ledger.reconcile(lookup)`` asks the node about
   every pending record (``lookup`` wraps ``listpays`` by label; see
   :func:`classify_pays`). Complete → paid. Failed or never seen → failed only
   once the record is older than ``unknown_grace_s`` (a request still on its way,
   or a payment still retrying, must not be taken for a failure); until then it
   stays pending. Until every pending record of a neighbour is resolved,
   ``begin`` refuses that neighbour (``Reason.PENDING``), and until the first
   reconcile after loading, it refuses everyone (``Reason.RECONCILE_REQUIRED``).

What is owed, and the rounding rule
-----------------------------------
Meter readings and prices are exact decimals (pass HA's state strings or
``Decimal``; floats go through ``str`` first so 0.1 stays 0.1), validated before
anything is stored: finite, ``0 <= meter <= MAX_METER_KWH``,
``0 <= price <= MAX_PRICE_SATS_PER_KWH``, at most ``MAX_DECIMALS`` decimal
places. Every sum and product runs in a decimal context wide enough that no
digit is ever rounded (:data:`EXACT`; an inexact result would raise). For one
settlement::

    exact_msat  = (meter_now_kwh - meter_last_settled_kwh) * price_sats_per_kwh * 1000
                  + carry_msat                       # exact Decimal, >= 0
    amount_msat = floor(exact_msat / unit_msat) * unit_msat
    carry_after = exact_msat - amount_msat           # 0 <= carry_after < unit_msat

``unit_msat`` is 1000 by default: **we pay whole satoshis, rounded down, and the
sub-satoshi remainder is carried exactly** into the next settlement (it is never
lost and never paid twice). The baseline ``meter_last_settled_kwh`` and the carry
move only when a payment is marked paid, so a failed or refused settlement simply
leaves the energy owed for the next one. Hence after any sequence of settlements at
a constant price ``p``::

    total_paid_msat == floor((meter_last_settled - first_baseline) * p * 1000 / unit) * unit

and with a varying price, ``total_paid_msat + carry == sum(kWh_i * p_i * 1000)``
over the paid settlements, exactly. Caps and the minimum apply to ``amount_msat``
(what the neighbour receives, routing fees excluded).

Refusals (no payment)
---------------------
``METER_UNAVAILABLE`` (no/non-numeric reading), ``METER_BACKWARDS`` (lower than the
last settled reading: a reset or a fault; the baseline is kept until
:meth:`SettlementLedger.rebaseline` accepts a new one), ``PRICE_UNAVAILABLE``,
``NOTHING_OWED``, ``BELOW_MINIMUM`` (carried forward), ``CAP_PER_PAYMENT``,
``CAP_PER_DAY`` (the day is ``now.date()`` of the tz-aware ``now`` the caller
passes, in the site's time zone; pending and paid amounts of that day count),
``PENDING``, ``RECONCILE_REQUIRED``, ``BASELINE_SET`` (the first reading of a
neighbour only sets the baseline), ``AMOUNT_OUT_OF_RANGE`` (more than
``MAX_AMOUNT_MSAT``: no meter jump or price can make an amount that cannot be
stored) and ``LEDGER_LOST`` (the ledger's store is gone or is another ledger's:
nothing is paid until the user confirms new baselines,
:meth:`SettlementLedger.start_anew`).

The daily cap counts what each neighbour was paid per day in
``NeighbourAccount.day_msat`` (kept for ``DAY_TOTALS_KEPT`` days, independent of
how many records are kept) plus the pending records of that day.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal, DecimalException, localcontext
import secrets
from typing import Any, Protocol

from .amounts import (
    EXACT,
    MAX_AMOUNT_MSAT,
    MAX_DECIMALS,
    MAX_METER_KWH,
    MAX_PRICE_SATS_PER_KWH,
    floor_to_unit,
    meter_kwh,
    price_sats,
    to_decimal,
)
from .records import (
    DAY_TOTALS_KEPT,
    PROBLEMS,
    LedgerError,
    LookupStatus,
    NeighbourAccount,
    PaidSummary,
    PaymentLookup,
    Reason,
    ReconcileReport,
    Refusal,
    SettlementRecord,
    State,
    Terms,
    classify_pays,
)

STORAGE_VERSION = 1
#: Resolved records kept in the store: the last paid ones, the last failed ones.
HISTORY_LIMIT = 1000
FAILED_HISTORY_LIMIT = 200
#: Seconds a pending record must be old before "the node has no such payment"
#: (or only failed attempts) is taken as final: a request may still be on its way
#: and xpay retries for ``retry_for`` seconds (HashGrid asks for 20).
UNKNOWN_GRACE_S = 300.0


Lookup = Callable[[SettlementRecord], Awaitable[PaymentLookup]]


class LedgerStore(Protocol):
    """Persistence: HA's ``Store`` fits (``async_load``/``async_save`` wrapped)."""

    async def load(self) -> dict[str, Any] | None:
        """The saved data, or None when nothing was saved yet."""

    async def save(self, data: dict[str, Any]) -> None:
        """Persist ``data`` durably before returning."""


class SettlementLedger:
    """Per-neighbour settlement state and the record of every settlement."""

    def __init__(
        self,
        store: LedgerStore,
        ledger_id: str | None = None,
        *,
        unknown_grace_s: float | None = None,
    ) -> None:
        self._store = store
        self.ledger_id = ledger_id or new_ledger_id()
        self.accounts: dict[str, NeighbourAccount] = {}
        self.records: list[SettlementRecord] = []
        self._reconciled = False
        #: Set when the store was lost: nothing is paid until :meth:`start_anew`.
        self.lost: str | None = None
        self._unknown_grace_s = unknown_grace_s

    # ------------------------------------------------------------ persistence

    @classmethod
    async def load(
        cls,
        store: LedgerStore,
        expected_id: str | None = None,
        *,
        unknown_grace_s: float | None = None,
    ) -> SettlementLedger:
        """A ledger with the stored state (reconcile before paying anything).

        ``expected_id`` is the id of the ledger this store should hold (kept
        elsewhere, e.g. in the config entry). If the store is empty, unreadable or
        holds another ledger, the ledger is *lost* (:attr:`lost` says why) and
        refuses every settlement until :meth:`start_anew`.
        """
        try:
            data = await store.load()
        except Exception as err:
            data, problem = None, f"unreadable: {err!r}"
        else:
            problem = "missing"
        stored_id = data.get("ledger_id") if data else None
        ledger = cls(store, stored_id or expected_id, unknown_grace_s=unknown_grace_s)
        if data:
            ledger.accounts = {
                a["neighbour_id"]: NeighbourAccount.from_dict(a)
                for a in data.get("accounts", [])
            }
            ledger.records = [
                SettlementRecord.from_dict(r) for r in data.get("records", [])
            ]
        if expected_id is not None and stored_id != expected_id:
            if stored_id is not None:
                problem = f"holds ledger {stored_id}"
            elif data and "accounts" in data:
                problem = ""  # a store from before ledger ids: adopt it
            elif data:
                problem = "not a ledger"
            if problem:
                ledger.lost = problem
                ledger.ledger_id = expected_id
        ledger._reconciled = not ledger.pending()
        return ledger

    async def start_anew(self, baselines: Mapping[str, Decimal | None]) -> None:
        """After a lost ledger, the user confirmed: a new ledger (new id, so no
        key is ever reused), each neighbour's baseline at its meter now."""
        self.ledger_id = new_ledger_id()
        self.accounts = {}
        self.records = []
        for neighbour_id, meter in baselines.items():
            account = self.account(neighbour_id)
            account.meter_last_settled_kwh = meter_kwh(meter)
        self.lost = None
        self._reconciled = True
        await self._save()

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe; of the resolved records the last
        ``HISTORY_LIMIT`` paid and ``FAILED_HISTORY_LIMIT`` failed are kept."""
        paid = [r for r in self.records if r.state is State.PAID]
        failed = [r for r in self.records if r.state is State.FAILED]
        keep = {id(r) for r in paid[-HISTORY_LIMIT:]}
        keep |= {id(r) for r in failed[-FAILED_HISTORY_LIMIT:]}
        return {
            "version": STORAGE_VERSION,
            "ledger_id": self.ledger_id,
            "accounts": [a.to_dict() for a in self.accounts.values()],
            "records": [
                r.to_dict()
                for r in self.records
                if r.state is State.PENDING or id(r) in keep
            ],
        }

    async def _save(self) -> None:
        await self._store.save(self.to_dict())

    # ------------------------------------------------------------ queries

    def account(self, neighbour_id: str) -> NeighbourAccount:
        """The neighbour's account (created empty if new)."""
        if neighbour_id not in self.accounts:
            self.accounts[neighbour_id] = NeighbourAccount(neighbour_id)
        return self.accounts[neighbour_id]

    def pending(self, neighbour_id: str | None = None) -> list[SettlementRecord]:
        """Records whose payment outcome is not known yet."""
        return [
            r
            for r in self.records
            if r.state is State.PENDING
            and (neighbour_id is None or r.neighbour_id == neighbour_id)
        ]

    def record(self, key: str) -> SettlementRecord:
        """The record with this idempotency key."""
        for r in reversed(self.records):
            if r.key == key:
                return r
        raise LedgerError(f"unknown settlement {key}")

    @property
    def ready(self) -> bool:
        """May new settlements start (no unreconciled pending record)?"""
        return self._reconciled

    def committed_msat_on(self, neighbour_id: str, day: date) -> int:
        """Paid plus pending amounts of ``day`` for the daily cap."""
        paid = self.account(neighbour_id).day_msat.get(day.isoformat(), 0)
        return paid + sum(
            r.amount_msat for r in self.pending(neighbour_id) if r.day == day
        )

    def paid_since(self, neighbour_id: str, since: datetime) -> PaidSummary:
        """What was paid to a neighbour by settlements resolved at or after ``since``.

        ``since`` is tz-aware (e.g. the site's local midnight for "today").
        Only records marked paid count; pending and failed ones paid nothing.
        """
        if since.tzinfo is None:
            raise LedgerError("since must be timezone-aware")
        paid = [
            r
            for r in self.records
            if r.neighbour_id == neighbour_id
            and r.state is State.PAID
            and r.resolved_at is not None
            and r.resolved_at >= since
        ]
        with localcontext(EXACT):
            kwh = sum((r.kwh for r in paid), Decimal(0))
        return PaidSummary(
            amount_msat=sum(r.amount_msat for r in paid),
            settlements=len(paid),
            kwh=kwh,
        )

    # ------------------------------------------------------------ settling

    async def set_baseline(
        self, neighbour_id: str, meter_kwh_now: Decimal | str | float
    ) -> None:
        """Start metering a new neighbour from ``meter_kwh_now`` (nothing owed before)."""
        value = meter_kwh(meter_kwh_now)
        if value is None:
            raise LedgerError("baseline must be a meter reading")
        account = self.account(neighbour_id)
        if account.meter_last_settled_kwh is not None:
            raise LedgerError(
                "baseline already set; use rebaseline after a meter reset"
            )
        account.meter_last_settled_kwh = value
        await self._save_or_undo(neighbour_id, None)

    async def rebaseline(
        self, neighbour_id: str, meter_kwh_now: Decimal | str | float, now: datetime
    ) -> None:
        """Accept a new meter baseline after a reset (the user confirmed it).

        Energy metered between the last settlement and the reset is not known to
        the ledger and is not paid; the exact carry is kept.
        """
        value = meter_kwh(meter_kwh_now)
        if value is None:
            raise LedgerError("baseline must be a meter reading")
        if self.pending(neighbour_id):
            raise LedgerError("cannot rebaseline with a pending settlement")
        account = self.account(neighbour_id)
        before = replace(account, day_msat=dict(account.day_msat))
        account.meter_last_settled_kwh = value
        account.last_status = "rebaselined"
        account.last_time = now
        await self._save_or_undo(neighbour_id, before)

    async def _save_or_undo(
        self,
        neighbour_id: str,
        before: NeighbourAccount | None,
        record: SettlementRecord | None = None,
    ) -> None:
        """Save; if that fails, put the account back as it was and drop
        ``record``, so nothing unsaved lives on in memory (then raise)."""
        try:
            await self._save()
        except Exception:
            if before is None:
                self.accounts.pop(neighbour_id, None)
            else:
                self.accounts[neighbour_id] = before
            if record is not None and record in self.records:
                self.records.remove(record)
            raise

    async def begin(
        self,
        neighbour_id: str,
        meter_kwh_now: Decimal | str | float | None,
        terms: Terms,
        now: datetime,
    ) -> SettlementRecord | Refusal:
        """Decide what is owed; save a pending record before returning it."""
        if now.tzinfo is None:
            raise LedgerError("now must be timezone-aware")
        if terms.unit_msat < 1:
            raise LedgerError("unit_msat must be >= 1")
        if self.lost is not None:
            return Refusal(neighbour_id, Reason.LEDGER_LOST, self.lost)
        if not self._reconciled:
            return Refusal(neighbour_id, Reason.RECONCILE_REQUIRED)
        if self.pending(neighbour_id):
            return Refusal(
                neighbour_id, Reason.PENDING, self.pending(neighbour_id)[0].key
            )
        meter = meter_kwh(meter_kwh_now)
        if meter is None:
            return Refusal(
                neighbour_id, Reason.METER_UNAVAILABLE, _shown(meter_kwh_now)
            )
        existing = self.accounts.get(neighbour_id)
        before = (
            None
            if existing is None
            else replace(existing, day_msat=dict(existing.day_msat))
        )
        account = self.account(neighbour_id)
        if account.meter_last_settled_kwh is None:
            account.meter_last_settled_kwh = meter
            await self._save_or_undo(neighbour_id, before)
            return Refusal(neighbour_id, Reason.BASELINE_SET, str(meter))
        last = account.meter_last_settled_kwh
        if meter < last:
            return Refusal(
                neighbour_id,
                Reason.METER_BACKWARDS,
                f"meter {meter} < last settled {last}",
            )
        price = price_sats(terms.price_sats_per_kwh)
        if price is None:
            return Refusal(
                neighbour_id,
                Reason.PRICE_UNAVAILABLE,
                _shown(terms.price_sats_per_kwh),
            )
        try:
            with localcontext(EXACT):
                exact = (meter - last) * price * 1000 + account.carry_msat
            amount = floor_to_unit(exact, terms.unit_msat)
        except (DecimalException, ArithmeticError) as err:
            return Refusal(neighbour_id, Reason.AMOUNT_OUT_OF_RANGE, repr(err))
        if amount > MAX_AMOUNT_MSAT:
            return Refusal(
                neighbour_id,
                Reason.AMOUNT_OUT_OF_RANGE,
                f"{amount // 1000} sat > {MAX_AMOUNT_MSAT // 1000} sat",
            )
        if amount <= 0:
            return Refusal(neighbour_id, Reason.NOTHING_OWED, amount_msat=0)
        if amount < terms.min_settlement_sats * 1000:
            return Refusal(neighbour_id, Reason.BELOW_MINIMUM, amount_msat=amount)
        if (
            terms.cap_per_payment_sats is not None
            and amount > terms.cap_per_payment_sats * 1000
        ):
            return Refusal(
                neighbour_id,
                Reason.CAP_PER_PAYMENT,
                f"{amount // 1000} sat > cap {terms.cap_per_payment_sats} sat",
                amount,
            )
        day = now.date()
        if terms.cap_per_day_sats is not None:
            committed = self.committed_msat_on(neighbour_id, day)
            if committed + amount > terms.cap_per_day_sats * 1000:
                return Refusal(
                    neighbour_id,
                    Reason.CAP_PER_DAY,
                    f"{committed // 1000} + {amount // 1000} sat > cap "
                    f"{terms.cap_per_day_sats} sat on {day}",
                    amount,
                )
        seq = account.next_seq
        account.next_seq += 1
        with localcontext(EXACT):
            carry_after = exact - amount
        record = SettlementRecord(
            key=f"hg:{self.ledger_id}:{neighbour_id}:{seq}",
            neighbour_id=neighbour_id,
            seq=seq,
            meter_from_kwh=last,
            meter_to_kwh=meter,
            price_sats_per_kwh=price,
            amount_msat=amount,
            carry_before_msat=account.carry_msat,
            carry_after_msat=carry_after,
            day=day,
            created_at=now,
        )
        self.records.append(record)
        account.last_status = State.PENDING.value
        account.last_time = now
        await self._save_or_undo(neighbour_id, before, record)
        return record

    async def mark_paid(
        self,
        key: str,
        now: datetime,
        *,
        payment_hash: str | None = None,
        fee_msat: int | None = None,
    ) -> SettlementRecord:
        """The payment labelled ``key`` completed: move baseline and carry.

        The payment happened, so memory keeps it even if the save fails (the
        store still has the record pending; a reconcile finds it complete).
        """
        record = self._pending_record(key)
        account = self.account(record.neighbour_id)
        if account.meter_last_settled_kwh != record.meter_from_kwh:
            raise LedgerError(f"{key}: baseline moved since the record was written")
        record.state = State.PAID
        record.payment_hash = payment_hash
        record.fee_msat = fee_msat
        record.resolved_at = now
        account.meter_last_settled_kwh = record.meter_to_kwh
        account.carry_msat = record.carry_after_msat
        with localcontext(EXACT):
            account.settled_kwh += record.kwh
        account.paid_msat += record.amount_msat
        account.fees_msat += fee_msat or 0
        day = record.day.isoformat()
        account.day_msat[day] = account.day_msat.get(day, 0) + record.amount_msat
        account.last_status = State.PAID.value
        account.last_time = now
        await self._save()
        return record

    async def mark_failed(
        self, key: str, now: datetime, reason: str = ""
    ) -> SettlementRecord:
        """The payment labelled ``key`` definitely did not happen."""
        record = self._pending_record(key)
        record.state = State.FAILED
        record.failure = reason or "failed"
        record.resolved_at = now
        account = self.account(record.neighbour_id)
        account.last_status = State.FAILED.value
        account.last_time = now
        await self._save()
        return record

    def _pending_record(self, key: str) -> SettlementRecord:
        record = self.record(key)
        if record.state is not State.PENDING:
            raise LedgerError(f"{key} is already {record.state.value}")
        return record

    @property
    def unknown_grace_s(self) -> float:
        """Seconds before "the node has no such payment" is final."""
        grace = self._unknown_grace_s
        return UNKNOWN_GRACE_S if grace is None else grace

    def settled_for_good(self, record: SettlementRecord, now: datetime) -> bool:
        """Is the record old enough that "no such payment" is final?"""
        return now - record.created_at >= timedelta(seconds=self.unknown_grace_s)

    async def reconcile(self, lookup: Lookup, now: datetime) -> ReconcileReport:
        """Resolve every pending record against the node, before paying anew.

        ``lookup`` must raise if the node cannot answer; such records stay
        pending (and block their neighbour) until a later reconcile. A payment
        the node does not know (or knows only failed attempts of) is failed only
        once the record is older than ``unknown_grace_s``.
        """
        report = ReconcileReport()
        for record in self.pending():
            try:
                found = await lookup(record)
            except Exception as err:  # any failure leaves the record pending
                report.unresolved.append(record.key)
                report.errors[record.key] = repr(err)
                continue
            if found.status is LookupStatus.COMPLETE:
                if (
                    found.amount_msat is not None
                    and found.amount_msat != record.amount_msat
                ):
                    report.unresolved.append(record.key)
                    report.errors[record.key] = (
                        f"node paid {found.amount_msat} msat, record says {record.amount_msat}"
                    )
                    continue
                await self.mark_paid(
                    record.key,
                    now,
                    payment_hash=found.payment_hash,
                    fee_msat=found.fee_msat,
                )
                report.paid.append(record.key)
            elif found.status in (
                LookupStatus.FAILED,
                LookupStatus.NOT_FOUND,
            ) and self.settled_for_good(record, now):
                await self.mark_failed(
                    record.key, now, f"reconciled: {found.status.value}"
                )
                report.failed.append(record.key)
            else:
                report.unresolved.append(record.key)
        # Records still in flight block only their neighbour (Reason.PENDING);
        # a node that could not answer blocks everyone.
        self._reconciled = not report.errors
        return report


def new_ledger_id() -> str:
    """A random ledger id (96 bits): part of every key, so keys never repeat."""
    return secrets.token_hex(12)


def _shown(value: object) -> str:
    """A value for a message: never more than 40 characters of it."""
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "DAY_TOTALS_KEPT",
    "EXACT",
    "MAX_AMOUNT_MSAT",
    "MAX_DECIMALS",
    "MAX_METER_KWH",
    "MAX_PRICE_SATS_PER_KWH",
    "PROBLEMS",
    "LedgerError",
    "LedgerStore",
    "LookupStatus",
    "NeighbourAccount",
    "PaidSummary",
    "PaymentLookup",
    "Reason",
    "ReconcileReport",
    "Refusal",
    "SettlementLedger",
    "SettlementRecord",
    "State",
    "Terms",
    "classify_pays",
    "floor_to_unit",
    "meter_kwh",
    "new_ledger_id",
    "price_sats",
    "to_decimal",
]
