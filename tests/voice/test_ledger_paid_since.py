"""The ledger's "paid since" figure (HA-free): what a neighbour was paid today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.hashgrid.lightning.ledger import (
    LedgerError,
    PaidSummary,
    SettlementLedger,
    SettlementRecord,
    Terms,
)

SITE_TZ = ZoneInfo("Europe/Amsterdam")


class MemoryStore:
    """Keeps the saved JSON, as a file would."""

    def __init__(self) -> None:
        self.text: str | None = None

    async def load(self) -> dict[str, Any] | None:
        return None if self.text is None else json.loads(self.text)

    async def save(self, data: dict[str, Any]) -> None:
        self.text = json.dumps(data)


async def _settle(
    ledger: SettlementLedger, who: str, meter: str, now: datetime, *, paid: bool
) -> SettlementRecord:
    record = await ledger.begin(who, meter, Terms(price_sats_per_kwh="100"), now)
    assert isinstance(record, SettlementRecord)
    if paid:
        await ledger.mark_paid(record.key, now + timedelta(seconds=1))
    else:
        await ledger.mark_failed(record.key, now, "no route")
    return record


async def test_paid_since_counts_paid_records_resolved_since_local_midnight() -> None:
    store = MemoryStore()
    ledger = await SettlementLedger.load(store)
    midnight = datetime(2026, 3, 2, 0, 0, tzinfo=SITE_TZ)
    yesterday = midnight - timedelta(hours=2)
    today = midnight + timedelta(hours=9)
    for who in ("alice", "bob"):
        baseline = await ledger.begin(who, "10", Terms("100"), yesterday)
        assert not isinstance(baseline, SettlementRecord)  # sets the baseline
    await _settle(ledger, "alice", "11", yesterday, paid=True)  # 100 sat yesterday
    await _settle(ledger, "alice", "11.5", today, paid=True)  # 50 sat
    await _settle(ledger, "alice", "12", today, paid=False)  # failed: nothing
    await _settle(ledger, "alice", "12.255", today, paid=True)  # 75.5 -> 75 sat
    await _settle(ledger, "bob", "13", today, paid=True)  # someone else
    pending = await ledger.begin("alice", "13", Terms("100"), today)
    assert isinstance(pending, SettlementRecord)  # in flight: not paid (yet)

    summary = ledger.paid_since("alice", midnight)
    assert summary == PaidSummary(
        amount_msat=125_000, settlements=2, kwh=Decimal("1.255")
    )
    assert summary.amount_sat == 125
    # Since the day before: yesterday's payment too.
    assert ledger.paid_since("alice", midnight - timedelta(days=1)).amount_sat == 225
    # Midnight in UTC is an hour later than in Amsterdam (winter): same instants.
    assert ledger.paid_since("alice", midnight.astimezone(UTC)).amount_sat == 125
    assert ledger.paid_since("carol", midnight) == PaidSummary()

    # The figure survives a restart (it comes from the saved records).
    again = await SettlementLedger.load(store)
    assert again.paid_since("alice", midnight) == summary


async def test_paid_since_needs_an_aware_time() -> None:
    ledger = await SettlementLedger.load(MemoryStore())
    with pytest.raises(LedgerError):
        ledger.paid_since("alice", datetime(2026, 3, 2))
