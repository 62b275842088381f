"""The settlement ledger: pay each neighbour exactly once for every kWh.

Pure logic plus a small persistence interface; no Home Assistant imports. HA's
``Store`` backs it in the integration (anything with async ``load()``/``save()``
does, see :class:`LedgerStore`); :class:`JsonFileStore` backs it in tests.

Settling one neighbour
----------------------
1. ``await ledger.begin(neighbour_id, meter_kwh, terms, now)`` decides what is
   owed and either refuses (a :class:`Refusal` with a :class:`Reason`; nothing
   is paid, the HA glue raises a repair issue / event for the serious ones) or
   writes a :class:`SettlementRecord` in state ``pending`` **and saves it** before
   returning it. Its ``key`` (``"<neighbour_id>:<seq>"``, never reused) is the
   idempotency key: the caller uses it as the payment's label/description.
2. The caller pays ``record.amount_msat`` (once, labelled ``record.key``), then
   ``await ledger.mark_paid(key, ...)`` or ``await ledger.mark_failed(key, ...)``.
   Only a payment the node reports *failed* (or never saw) may be marked failed.
3. At start-up, and whenever a payment's outcome is unknown (timeout, lost
   connection, crash), ``await ledger.reconcile(lookup)`` asks the node about
   every pending record (``lookup`` wraps ``listpays``/``listsendpays`` by label or
   payment hash; see :func:`classify_pays`) and marks each paid or failed.
   Until every pending record of a neighbour is resolved, ``begin`` refuses that
   neighbour (``Reason.PENDING``), and until the first reconcile after loading,
   it refuses everyone (``Reason.RECONCILE_REQUIRED``).

What is owed, and the rounding rule
-----------------------------------
Meter readings and prices are exact decimals (pass HA's state strings or
``Decimal``; floats go through ``str`` first so 0.1 stays 0.1). For one
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
``PENDING``, ``RECONCILE_REQUIRED``, and ``BASELINE_SET`` (the first reading of a
neighbour only sets the baseline).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
import json
import os
from pathlib import Path
from typing import Any, Protocol

STORAGE_VERSION = 1
HISTORY_LIMIT = 1000


class Reason(StrEnum):
    """Why no payment was made."""

    METER_UNAVAILABLE = "meter_unavailable"
    METER_BACKWARDS = "meter_backwards"
    PRICE_UNAVAILABLE = "price_unavailable"
    NOTHING_OWED = "nothing_owed"
    BELOW_MINIMUM = "below_minimum"
    CAP_PER_PAYMENT = "cap_per_payment"
    CAP_PER_DAY = "cap_per_day"
    PENDING = "pending"
    RECONCILE_REQUIRED = "reconcile_required"
    BASELINE_SET = "baseline_set"


# Reasons that need the user's attention (repair issue / event in HA).
PROBLEMS = frozenset(
    {
        Reason.METER_UNAVAILABLE,
        Reason.METER_BACKWARDS,
        Reason.PRICE_UNAVAILABLE,
        Reason.CAP_PER_PAYMENT,
        Reason.CAP_PER_DAY,
    }
)


class State(StrEnum):
    """A settlement record's state."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class LookupStatus(StrEnum):
    """What the node knows about a payment labelled with a record's key."""

    COMPLETE = "complete"
    FAILED = "failed"
    PENDING = "pending"
    NOT_FOUND = "not_found"


class LedgerError(Exception):
    """Misuse of the ledger (unknown key, record not pending …)."""


@dataclass(frozen=True, slots=True)
class Terms:
    """How one neighbour is paid. Amounts in sats unless named *_msat."""

    price_sats_per_kwh: Decimal | str | int | float | None
    cap_per_payment_sats: int | None = None
    cap_per_day_sats: int | None = None
    min_settlement_sats: int = 1
    unit_msat: int = 1000


@dataclass(frozen=True, slots=True)
class Refusal:
    """No payment this time."""

    neighbour_id: str
    reason: Reason
    detail: str = ""
    amount_msat: int | None = None

    @property
    def is_problem(self) -> bool:
        """Should the user hear about it (repair issue / event)?"""
        return self.reason in PROBLEMS


@dataclass(slots=True)
class SettlementRecord:
    """One settlement: written (pending) before paying."""

    key: str
    neighbour_id: str
    seq: int
    meter_from_kwh: Decimal
    meter_to_kwh: Decimal
    price_sats_per_kwh: Decimal
    amount_msat: int
    carry_before_msat: Decimal
    carry_after_msat: Decimal
    day: date
    created_at: datetime
    state: State = State.PENDING
    payment_hash: str | None = None
    fee_msat: int | None = None
    resolved_at: datetime | None = None
    failure: str | None = None

    @property
    def kwh(self) -> Decimal:
        """Energy this settlement covers."""
        return self.meter_to_kwh - self.meter_from_kwh

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "key": self.key,
            "neighbour_id": self.neighbour_id,
            "seq": self.seq,
            "meter_from_kwh": str(self.meter_from_kwh),
            "meter_to_kwh": str(self.meter_to_kwh),
            "price_sats_per_kwh": str(self.price_sats_per_kwh),
            "amount_msat": self.amount_msat,
            "carry_before_msat": str(self.carry_before_msat),
            "carry_after_msat": str(self.carry_after_msat),
            "day": self.day.isoformat(),
            "created_at": self.created_at.isoformat(),
            "state": self.state.value,
            "payment_hash": self.payment_hash,
            "fee_msat": self.fee_msat,
            "resolved_at": None
            if self.resolved_at is None
            else self.resolved_at.isoformat(),
            "failure": self.failure,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SettlementRecord:
        """Inverse of :meth:`to_dict`."""
        resolved = data.get("resolved_at")
        return cls(
            key=str(data["key"]),
            neighbour_id=str(data["neighbour_id"]),
            seq=int(data["seq"]),
            meter_from_kwh=Decimal(data["meter_from_kwh"]),
            meter_to_kwh=Decimal(data["meter_to_kwh"]),
            price_sats_per_kwh=Decimal(data["price_sats_per_kwh"]),
            amount_msat=int(data["amount_msat"]),
            carry_before_msat=Decimal(data["carry_before_msat"]),
            carry_after_msat=Decimal(data["carry_after_msat"]),
            day=date.fromisoformat(data["day"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            state=State(data["state"]),
            payment_hash=data.get("payment_hash"),
            fee_msat=data.get("fee_msat"),
            resolved_at=None if resolved is None else datetime.fromisoformat(resolved),
            failure=data.get("failure"),
        )


@dataclass(slots=True)
class NeighbourAccount:
    """Running totals for one neighbour."""

    neighbour_id: str
    meter_last_settled_kwh: Decimal | None = None
    carry_msat: Decimal = Decimal(0)
    next_seq: int = 1
    settled_kwh: Decimal = Decimal(0)
    paid_msat: int = 0
    fees_msat: int = 0
    last_status: str | None = None
    last_time: datetime | None = None

    def unpaid_kwh(self, meter_now_kwh: Decimal | str | float | None) -> Decimal | None:
        """Energy metered since the last settlement (None if unknown)."""
        now = to_decimal(meter_now_kwh)
        if now is None or self.meter_last_settled_kwh is None:
            return None
        return max(Decimal(0), now - self.meter_last_settled_kwh)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "neighbour_id": self.neighbour_id,
            "meter_last_settled_kwh": None
            if self.meter_last_settled_kwh is None
            else str(self.meter_last_settled_kwh),
            "carry_msat": str(self.carry_msat),
            "next_seq": self.next_seq,
            "settled_kwh": str(self.settled_kwh),
            "paid_msat": self.paid_msat,
            "fees_msat": self.fees_msat,
            "last_status": self.last_status,
            "last_time": None if self.last_time is None else self.last_time.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NeighbourAccount:
        """Inverse of :meth:`to_dict`."""
        meter = data.get("meter_last_settled_kwh")
        last_time = data.get("last_time")
        return cls(
            neighbour_id=str(data["neighbour_id"]),
            meter_last_settled_kwh=None if meter is None else Decimal(meter),
            carry_msat=Decimal(data.get("carry_msat", "0")),
            next_seq=int(data.get("next_seq", 1)),
            settled_kwh=Decimal(data.get("settled_kwh", "0")),
            paid_msat=int(data.get("paid_msat", 0)),
            fees_msat=int(data.get("fees_msat", 0)),
            last_status=data.get("last_status"),
            last_time=None if last_time is None else datetime.fromisoformat(last_time),
        )


@dataclass(frozen=True, slots=True)
class PaidSummary:
    """What a neighbour was paid over a period (settlements marked paid in it)."""

    amount_msat: int = 0
    settlements: int = 0
    kwh: Decimal = Decimal(0)

    @property
    def amount_sat(self) -> int:
        """The amount in whole sats (settlements pay whole sats by default)."""
        return self.amount_msat // 1000


@dataclass(frozen=True, slots=True)
class PaymentLookup:
    """What the node says about one record's payment."""

    status: LookupStatus
    payment_hash: str | None = None
    fee_msat: int | None = None
    amount_msat: int | None = None


Lookup = Callable[[SettlementRecord], Awaitable[PaymentLookup]]


class LedgerStore(Protocol):
    """Persistence: HA's ``Store`` fits (``async_load``/``async_save`` wrapped)."""

    async def load(self) -> dict[str, Any] | None:
        """The saved data, or None when nothing was saved yet."""

    async def save(self, data: dict[str, Any]) -> None:
        """Persist ``data`` durably before returning."""


class JsonFileStore:
    """A JSON file, replaced atomically on each save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def load(self) -> dict[str, Any] | None:
        """Read the file (None if absent)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        data: dict[str, Any] = json.loads(text)
        return data

    async def save(self, data: dict[str, Any]) -> None:
        """Write to a temporary file, fsync, then rename over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def to_decimal(value: Decimal | str | int | float | None) -> Decimal | None:
    """An exact, finite Decimal, or None (unavailable/unknown/garbage)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation, ValueError:
        return None
    return number if number.is_finite() else None


def floor_to_unit(exact_msat: Decimal, unit_msat: int) -> int:
    """Round an exact msat amount down to a multiple of ``unit_msat``."""
    units = (exact_msat / unit_msat).to_integral_value(rounding=ROUND_FLOOR)
    return int(units) * unit_msat


def classify_pays(pays: Iterable[Mapping[str, Any]], key: str) -> PaymentLookup:
    """Reduce ``listpays``/``listsendpays`` entries to the outcome for ``key``.

    Entries whose ``label`` (or ``description``) is ``key`` count: any complete
    one means paid; otherwise any pending one means still in flight; otherwise
    failed if any failed; otherwise the node never saw the payment.
    """
    matching = [p for p in pays if key in (p.get("label"), p.get("description"))]
    complete = [p for p in matching if p.get("status") == "complete"]
    if complete:
        first = complete[0]
        amount = first.get("amount_msat")
        sent = first.get("amount_sent_msat")
        fee = (
            sent - amount if isinstance(sent, int) and isinstance(amount, int) else None
        )
        return PaymentLookup(
            LookupStatus.COMPLETE,
            payment_hash=first.get("payment_hash"),
            fee_msat=fee,
            amount_msat=amount if isinstance(amount, int) else None,
        )
    if any(p.get("status") == "pending" for p in matching):
        return PaymentLookup(LookupStatus.PENDING)
    if matching:
        return PaymentLookup(LookupStatus.FAILED)
    return PaymentLookup(LookupStatus.NOT_FOUND)


@dataclass(slots=True)
class ReconcileReport:
    """What :meth:`SettlementLedger.reconcile` found."""

    paid: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Every pending record was resolved."""
        return not self.unresolved


class SettlementLedger:
    """Per-neighbour settlement state and the record of every settlement."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self.accounts: dict[str, NeighbourAccount] = {}
        self.records: list[SettlementRecord] = []
        self._reconciled = False

    # ------------------------------------------------------------ persistence

    @classmethod
    async def load(cls, store: LedgerStore) -> SettlementLedger:
        """A ledger with the stored state (reconcile before paying anything)."""
        ledger = cls(store)
        data = await store.load()
        if data:
            ledger.accounts = {
                a["neighbour_id"]: NeighbourAccount.from_dict(a)
                for a in data.get("accounts", [])
            }
            ledger.records = [
                SettlementRecord.from_dict(r) for r in data.get("records", [])
            ]
        ledger._reconciled = not ledger.pending()
        return ledger

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe (old resolved records beyond the limit dropped)."""
        resolved = [r for r in self.records if r.state is not State.PENDING]
        keep = {id(r) for r in resolved[-HISTORY_LIMIT:]}
        return {
            "version": STORAGE_VERSION,
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
        for r in self.records:
            if r.key == key:
                return r
        raise LedgerError(f"unknown settlement {key}")

    @property
    def ready(self) -> bool:
        """May new settlements start (no unreconciled pending record)?"""
        return self._reconciled

    def committed_msat_on(self, neighbour_id: str, day: date) -> int:
        """Paid plus pending amounts of ``day`` for the daily cap."""
        return sum(
            r.amount_msat
            for r in self.records
            if r.neighbour_id == neighbour_id
            and r.day == day
            and r.state in (State.PAID, State.PENDING)
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
        return PaidSummary(
            amount_msat=sum(r.amount_msat for r in paid),
            settlements=len(paid),
            kwh=sum((r.kwh for r in paid), Decimal(0)),
        )

    # ------------------------------------------------------------ settling

    async def set_baseline(
        self, neighbour_id: str, meter_kwh: Decimal | str | float
    ) -> None:
        """Start metering a new neighbour from ``meter_kwh`` (nothing owed before)."""
        value = to_decimal(meter_kwh)
        if value is None:
            raise LedgerError("baseline must be a number")
        account = self.account(neighbour_id)
        if account.meter_last_settled_kwh is not None:
            raise LedgerError(
                "baseline already set; use rebaseline after a meter reset"
            )
        account.meter_last_settled_kwh = value
        await self._save()

    async def rebaseline(
        self, neighbour_id: str, meter_kwh: Decimal | str | float, now: datetime
    ) -> None:
        """Accept a new meter baseline after a reset (the user confirmed it).

        Energy metered between the last settlement and the reset is not known to
        the ledger and is not paid; the exact carry is kept.
        """
        value = to_decimal(meter_kwh)
        if value is None:
            raise LedgerError("baseline must be a number")
        if self.pending(neighbour_id):
            raise LedgerError("cannot rebaseline with a pending settlement")
        account = self.account(neighbour_id)
        account.meter_last_settled_kwh = value
        account.last_status = "rebaselined"
        account.last_time = now
        await self._save()

    async def begin(
        self,
        neighbour_id: str,
        meter_kwh: Decimal | str | float | None,
        terms: Terms,
        now: datetime,
    ) -> SettlementRecord | Refusal:
        """Decide what is owed; save a pending record before returning it."""
        if now.tzinfo is None:
            raise LedgerError("now must be timezone-aware")
        if terms.unit_msat < 1:
            raise LedgerError("unit_msat must be >= 1")
        if not self._reconciled:
            return Refusal(neighbour_id, Reason.RECONCILE_REQUIRED)
        if self.pending(neighbour_id):
            return Refusal(
                neighbour_id, Reason.PENDING, self.pending(neighbour_id)[0].key
            )
        meter = to_decimal(meter_kwh)
        if meter is None or meter < 0:
            return Refusal(neighbour_id, Reason.METER_UNAVAILABLE, str(meter_kwh))
        account = self.account(neighbour_id)
        if account.meter_last_settled_kwh is None:
            account.meter_last_settled_kwh = meter
            await self._save()
            return Refusal(neighbour_id, Reason.BASELINE_SET, str(meter))
        last = account.meter_last_settled_kwh
        if meter < last:
            return Refusal(
                neighbour_id,
                Reason.METER_BACKWARDS,
                f"meter {meter} < last settled {last}",
            )
        price = to_decimal(terms.price_sats_per_kwh)
        if price is None or price < 0:
            return Refusal(
                neighbour_id, Reason.PRICE_UNAVAILABLE, str(terms.price_sats_per_kwh)
            )
        exact = (meter - last) * price * 1000 + account.carry_msat
        amount = floor_to_unit(exact, terms.unit_msat)
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
                f"{amount} msat > cap {terms.cap_per_payment_sats} sat",
                amount,
            )
        day = now.date()
        if terms.cap_per_day_sats is not None:
            committed = self.committed_msat_on(neighbour_id, day)
            if committed + amount > terms.cap_per_day_sats * 1000:
                return Refusal(
                    neighbour_id,
                    Reason.CAP_PER_DAY,
                    f"{committed} + {amount} msat > cap {terms.cap_per_day_sats} sat on {day}",
                    amount,
                )
        seq = account.next_seq
        account.next_seq += 1
        record = SettlementRecord(
            key=f"{neighbour_id}:{seq}",
            neighbour_id=neighbour_id,
            seq=seq,
            meter_from_kwh=last,
            meter_to_kwh=meter,
            price_sats_per_kwh=price,
            amount_msat=amount,
            carry_before_msat=account.carry_msat,
            carry_after_msat=exact - amount,
            day=day,
            created_at=now,
        )
        self.records.append(record)
        account.last_status = State.PENDING.value
        account.last_time = now
        await self._save()
        return record

    async def mark_paid(
        self,
        key: str,
        now: datetime,
        *,
        payment_hash: str | None = None,
        fee_msat: int | None = None,
    ) -> SettlementRecord:
        """The payment labelled ``key`` completed: move baseline and carry."""
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
        account.settled_kwh += record.kwh
        account.paid_msat += record.amount_msat
        account.fees_msat += fee_msat or 0
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

    async def reconcile(self, lookup: Lookup, now: datetime) -> ReconcileReport:
        """Resolve every pending record against the node, before paying anew.

        ``lookup`` must raise if the node cannot answer; such records stay
        pending (and block their neighbour) until a later reconcile.
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
            elif found.status in (LookupStatus.FAILED, LookupStatus.NOT_FOUND):
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
