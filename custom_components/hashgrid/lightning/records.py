"""The ledger's records: settlements, accounts, refusals and what the node says.

Plain data with their JSON forms, and :func:`classify_pays`, which reduces the
node's ``listpays`` to the outcome of one record. No Home Assistant imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Any

from .amounts import EXACT, meter_kwh

#: Days of per-day paid totals kept (the daily cap needs only today's).
DAY_TOTALS_KEPT = 40


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
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    LEDGER_LOST = "ledger_lost"


# Reasons that need the user's attention (repair issue / event in HA).
PROBLEMS = frozenset(
    {
        Reason.METER_UNAVAILABLE,
        Reason.METER_BACKWARDS,
        Reason.PRICE_UNAVAILABLE,
        Reason.CAP_PER_PAYMENT,
        Reason.CAP_PER_DAY,
        Reason.AMOUNT_OUT_OF_RANGE,
        Reason.LEDGER_LOST,
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
        with localcontext(EXACT):
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
    #: msat paid per day (the day a settlement was begun, ISO), for the daily cap.
    day_msat: dict[str, int] = field(default_factory=dict)

    def unpaid_kwh(self, meter_now_kwh: Decimal | str | float | None) -> Decimal | None:
        """Energy metered since the last settlement (None if unknown)."""
        now = meter_kwh(meter_now_kwh)
        if now is None or self.meter_last_settled_kwh is None:
            return None
        with localcontext(EXACT):
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
            "day_msat": dict(sorted(self.day_msat.items())[-DAY_TOTALS_KEPT:]),
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
            day_msat={str(k): int(v) for k, v in data.get("day_msat", {}).items()},
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
