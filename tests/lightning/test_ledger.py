"""The settlement ledger: exact amounts, refusals, crash safety, reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import itertools
import json
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st
from pyln.client import LightningRpc, RpcError
import pytest
import pytest_socket

from custom_components.hashgrid.lightning import ledger as ledger_module
from custom_components.hashgrid.lightning.ledger import (
    LedgerError,
    LookupStatus,
    PaymentLookup,
    Reason,
    Refusal,
    SettlementLedger,
    SettlementRecord,
    State,
    Terms,
    classify_pays,
    floor_to_unit,
    to_decimal,
)
from simulators.lightning import LightningSim, running_lightning

from .stores import JsonFileStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: Every ledger of these tests has this id, so keys read "hg:L:<neighbour>:<seq>".
LEDGER_ID = "L"


def key(short: str) -> str:
    """The full key of ``"<neighbour>:<seq>"``."""
    return f"hg:{LEDGER_ID}:{short}"


@pytest.fixture(autouse=True, scope="module")
def _fixed_ledger_id_no_grace() -> Any:
    """A fixed ledger id; "unknown to the node" is final at once (the node
    fakes here answer synchronously: nothing can still be on its way)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger_module, "new_ledger_id", lambda: LEDGER_ID)
        patch.setattr(ledger_module, "UNKNOWN_GRACE_S", 0.0)
        yield


class MemoryStore:
    """Keeps the saved JSON text, as a file would."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.saves = 0

    async def load(self) -> dict[str, Any] | None:
        return None if self.text is None else json.loads(self.text)

    async def save(self, data: dict[str, Any]) -> None:
        self.text = json.dumps(data)
        self.saves += 1


@dataclass
class FakeNode:
    """What a node's listpays would say: one entry per payment attempt."""

    pays: list[dict[str, Any]] = field(default_factory=list)

    def pay(self, key: str, amount_msat: int, status: str) -> dict[str, Any]:
        entry = {
            "label": key,
            "status": status,
            "amount_msat": amount_msat,
            "amount_sent_msat": amount_msat + 1000,
            "payment_hash": f"{len(self.pays):064x}",
        }
        self.pays.append(entry)
        return entry

    async def lookup(self, record: SettlementRecord) -> PaymentLookup:
        return classify_pays(self.pays, record.key)

    def complete_msat(self) -> int:
        return sum(p["amount_msat"] for p in self.pays if p["status"] == "complete")

    def complete_per_label(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.pays:
            if p["status"] == "complete":
                counts[p["label"]] = counts.get(p["label"], 0) + 1
        return counts


class Crash(Exception):
    """The process died."""


async def settle(
    ledger: SettlementLedger,
    node: FakeNode,
    neighbour: str,
    meter: Any,
    terms: Terms,
    now: datetime,
    fault: str = "ok",
) -> SettlementRecord | Refusal:
    """What the HA glue does for one settlement, with an injected fault."""
    result = await ledger.begin(neighbour, meter, terms, now)
    if isinstance(result, Refusal):
        return result
    if fault == "crash_before_pay":
        raise Crash
    if fault == "fail":
        node.pay(result.key, result.amount_msat, "failed")
        await ledger.mark_failed(result.key, now, "no route")
        return result
    if fault.startswith("in_flight"):
        node.pay(result.key, result.amount_msat, "pending")
        raise Crash
    entry = node.pay(result.key, result.amount_msat, "complete")
    if fault == "crash_after_pay":
        raise Crash
    await ledger.mark_paid(
        result.key, now, payment_hash=entry["payment_hash"], fee_msat=1000
    )
    return result


def resolve_in_flight(node: FakeNode, fault: str) -> None:
    """The node finishes the payment that was in flight when we crashed."""
    for p in node.pays:
        if p["status"] == "pending":
            p["status"] = "complete" if fault == "in_flight_complete" else "failed"


async def restart_and_reconcile(
    store: MemoryStore,
    node: FakeNode,
    fault: str,
    neighbour: str,
    meter: Any,
    terms: Terms,
    now: datetime,
) -> SettlementLedger:
    """Restart from disk; reconcile (while a payment may still be in flight)."""
    ledger = await SettlementLedger.load(store)
    report = await ledger.reconcile(node.lookup, now)
    if fault.startswith("in_flight"):
        # Still in flight: the neighbour stays blocked, nothing new is paid.
        assert len(report.unresolved) == 1
        again = await settle(ledger, node, neighbour, meter, terms, now)
        assert isinstance(again, Refusal)
        assert again.reason is Reason.PENDING
        resolve_in_flight(node, fault)
        report = await ledger.reconcile(node.lookup, now)
    assert not report.unresolved
    assert ledger.ready
    return ledger


# ---- examples --------------------------------------------------------------------


async def test_rounding_pays_whole_sats_and_carries_the_rest() -> None:
    store = MemoryStore()
    ledger = await SettlementLedger.load(store)
    node = FakeNode()
    terms = Terms(price_sats_per_kwh="7")
    assert (
        await settle(ledger, node, "n1", "100", terms, T0)
    ).reason is Reason.BASELINE_SET  # type: ignore[union-attr]
    first = await settle(ledger, node, "n1", "100.15", terms, T0)
    assert isinstance(first, SettlementRecord)
    assert first.amount_msat == 1000  # 0.15 kWh * 7 sat = 1.05 sat -> 1 sat
    assert first.carry_after_msat == Decimal(50)
    assert first.key == key("n1:1")
    second = await settle(ledger, node, "n1", "100.30", terms, T0)
    assert isinstance(second, SettlementRecord)
    assert second.amount_msat == 1000  # 1.05 sat + 0.05 carried = 1.1 sat
    assert second.carry_after_msat == Decimal(100)
    third = await settle(ledger, node, "n1", "101.3", terms, T0)
    assert isinstance(third, SettlementRecord)
    assert third.amount_msat == 7000  # 7 sat + 0.1 carried
    account = ledger.account("n1")
    assert account.paid_msat == 9000
    assert account.settled_kwh == Decimal("1.3")
    assert account.carry_msat == Decimal(100)
    # 1.3 kWh * 7 sat = 9.1 sat: 9 paid, 0.1 carried; nothing lost.
    assert Decimal(account.paid_msat) + account.carry_msat == Decimal("1.3") * 7 * 1000
    # msat settlement unit: pay to the millisatoshi.
    fine = Terms(price_sats_per_kwh="7", unit_msat=1, min_settlement_sats=0)
    fourth = await settle(ledger, node, "n1", "101.31", fine, T0)
    assert isinstance(fourth, SettlementRecord)
    assert fourth.amount_msat == 170  # 0.07 sat + 0.1 sat carried = 170 msat


def test_decimal_inputs_are_exact() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal("12.345") == Decimal("12.345")
    for bad in (None, "unavailable", "unknown", "nan", "inf", "", True):
        assert to_decimal(bad) is None
    assert floor_to_unit(Decimal("1999.999"), 1000) == 1000
    assert floor_to_unit(Decimal("2000"), 1000) == 2000
    assert floor_to_unit(Decimal("0.5"), 1) == 0


async def test_refusals_pay_nothing_and_keep_the_baseline() -> None:
    ledger = await SettlementLedger.load(MemoryStore())
    node = FakeNode()
    terms = Terms(
        price_sats_per_kwh=100, min_settlement_sats=50, cap_per_payment_sats=1000
    )
    await ledger.set_baseline("n1", "10")
    with pytest.raises(LedgerError):
        await ledger.set_baseline("n1", "11")
    for meter in (None, "unavailable", "unknown", "-1", "nan"):
        result = await settle(ledger, node, "n1", meter, terms, T0)
        assert isinstance(result, Refusal)
        assert result.reason is Reason.METER_UNAVAILABLE
        assert result.is_problem
    backwards = await settle(ledger, node, "n1", "9.5", terms, T0)
    assert isinstance(backwards, Refusal)
    assert backwards.reason is Reason.METER_BACKWARDS
    assert backwards.is_problem
    nothing = await settle(ledger, node, "n1", "10", terms, T0)
    assert isinstance(nothing, Refusal)
    assert nothing.reason is Reason.NOTHING_OWED
    below = await settle(ledger, node, "n1", "10.4", terms, T0)  # 40 sat < 50
    assert isinstance(below, Refusal)
    assert below.reason is Reason.BELOW_MINIMUM
    assert not below.is_problem
    assert below.amount_msat == 40_000
    over = await settle(ledger, node, "n1", "21", terms, T0)  # 1100 sat > 1000
    assert isinstance(over, Refusal)
    assert over.reason is Reason.CAP_PER_PAYMENT
    assert over.is_problem
    no_price = await settle(
        ledger, node, "n1", "10.5", Terms(price_sats_per_kwh="unavailable"), T0
    )
    assert isinstance(no_price, Refusal)
    assert no_price.reason is Reason.PRICE_UNAVAILABLE
    assert node.pays == []
    assert ledger.account("n1").meter_last_settled_kwh == Decimal(10)
    # The energy was carried forward: the next allowed settlement pays all of it.
    paid = await settle(ledger, node, "n1", "10.6", terms, T0)
    assert isinstance(paid, SettlementRecord)
    assert paid.amount_msat == 60_000
    # After a meter reset, the user accepts a new baseline.
    await ledger.rebaseline("n1", "0.2", T0)
    again = await settle(ledger, node, "n1", "1.2", terms, T0)
    assert isinstance(again, SettlementRecord)
    assert again.amount_msat == 100_000


async def test_daily_cap_uses_the_site_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    ledger = await SettlementLedger.load(MemoryStore())
    node = FakeNode()
    terms = Terms(price_sats_per_kwh=100, cap_per_day_sats=250)
    await ledger.set_baseline("n1", "0")
    evening = datetime(2026, 3, 1, 23, 30, tzinfo=berlin)
    assert isinstance(
        await settle(ledger, node, "n1", "2", terms, evening), SettlementRecord
    )
    refused = await settle(
        ledger, node, "n1", "3", terms, evening + timedelta(minutes=20)
    )
    assert isinstance(refused, Refusal)
    assert refused.reason is Reason.CAP_PER_DAY
    # 22:50 UTC is already the next day in Berlin: a fresh daily budget.
    after_midnight = datetime(2026, 3, 1, 23, 10, tzinfo=UTC).astimezone(berlin)
    assert after_midnight.date().day == 2
    ok = await settle(ledger, node, "n1", "3", terms, after_midnight)
    assert isinstance(ok, SettlementRecord)
    assert ok.amount_msat == 100_000
    with pytest.raises(LedgerError):
        await ledger.begin("n1", "4", terms, datetime(2026, 3, 2, 12, 0))  # naive


async def test_record_is_saved_before_paying_and_blocks_until_reconciled(
    tmp_path: Any,
) -> None:
    store = JsonFileStore(tmp_path / "ledger.json")
    ledger = await SettlementLedger.load(store)
    node = FakeNode()
    terms = Terms(price_sats_per_kwh=10)
    await ledger.set_baseline("n1", "0")
    with pytest.raises(Crash):
        await settle(ledger, node, "n1", "5", terms, T0, "crash_after_pay")
    # What is on disk already has the pending record (written before paying).
    saved = json.loads((tmp_path / "ledger.json").read_text())
    assert [(r["key"], r["state"]) for r in saved["records"]] == [
        (key("n1:1"), "pending")
    ]

    restarted = await SettlementLedger.load(store)
    assert not restarted.ready
    blocked = await restarted.begin("n1", "6", terms, T0)
    assert isinstance(blocked, Refusal)
    assert blocked.reason is Reason.RECONCILE_REQUIRED
    blocked = await restarted.begin("n2", "6", terms, T0)
    assert isinstance(blocked, Refusal)
    assert blocked.reason is Reason.RECONCILE_REQUIRED

    async def unreachable(record: SettlementRecord) -> PaymentLookup:
        raise ConnectionRefusedError

    report = await restarted.reconcile(unreachable, T0)
    assert report.unresolved == [key("n1:1")]
    assert not restarted.ready
    report = await restarted.reconcile(node.lookup, T0)
    assert report.paid == [key("n1:1")]
    assert restarted.ready
    assert restarted.account("n1").paid_msat == 50_000
    assert restarted.account("n1").fees_msat == 1000
    # The next settlement continues from 5 kWh with a new key: nothing paid twice.
    nxt = await settle(restarted, node, "n1", "6", terms, T0)
    assert isinstance(nxt, SettlementRecord)
    assert (nxt.key, nxt.amount_msat) == (key("n1:2"), 10_000)
    assert node.complete_per_label() == {key("n1:1"): 1, key("n1:2"): 1}
    with pytest.raises(LedgerError):
        await restarted.mark_paid(key("n1:2"), T0)
    with pytest.raises(LedgerError):
        await restarted.mark_failed("n1:99", T0)


async def test_in_flight_payment_blocks_only_its_neighbour() -> None:
    store = MemoryStore()
    ledger = await SettlementLedger.load(store)
    node = FakeNode()
    terms = Terms(price_sats_per_kwh=10)
    await ledger.set_baseline("n1", "0")
    await ledger.set_baseline("n2", "0")
    with pytest.raises(Crash):
        await settle(ledger, node, "n1", "1", terms, T0, "in_flight_complete")
    ledger = await SettlementLedger.load(store)
    report = await ledger.reconcile(node.lookup, T0)
    assert report.unresolved == [key("n1:1")]
    assert report.errors == {}
    blocked = await ledger.begin("n1", "2", terms, T0)
    assert isinstance(blocked, Refusal)
    assert blocked.reason is Reason.PENDING
    assert isinstance(
        await settle(ledger, node, "n2", "1", terms, T0), SettlementRecord
    )
    resolve_in_flight(node, "in_flight_complete")
    report = await ledger.reconcile(node.lookup, T0)
    assert report.paid == [key("n1:1")]
    assert isinstance(
        await settle(ledger, node, "n1", "2", terms, T0), SettlementRecord
    )


def test_classify_pays() -> None:
    pays: list[dict[str, Any]] = [
        {"label": "a:1", "status": "failed", "amount_sent_msat": 5},
        {"label": "a:1", "status": "complete", "amount_msat": 5, "amount_sent_msat": 7},
        {"label": "a:2", "status": "pending"},
        {"label": "a:3", "status": "failed", "amount_sent_msat": 5},
        {"description": "a:4", "status": "complete", "amount_msat": 1},
    ]
    assert classify_pays(pays, "a:1") == PaymentLookup(
        LookupStatus.COMPLETE, payment_hash=None, fee_msat=2, amount_msat=5
    )
    assert classify_pays(pays, "a:2").status is LookupStatus.PENDING
    assert classify_pays(pays, "a:3").status is LookupStatus.FAILED
    assert classify_pays(pays, "a:4").status is LookupStatus.COMPLETE
    assert classify_pays(pays, "a:5").status is LookupStatus.NOT_FOUND


# ---- properties --------------------------------------------------------------------

FAULTS = [
    "ok",
    "ok",
    "ok",
    "fail",
    "crash_before_pay",
    "crash_after_pay",
    "in_flight_complete",
    "in_flight_fail",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    price=st.decimals(min_value=0, max_value=500, places=3),
    start=st.decimals(min_value=0, max_value=100_000, places=3),
    steps=st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=5, places=4), st.sampled_from(FAULTS)
        ),
        max_size=25,
    ),
    min_sats=st.sampled_from([1, 1, 10, 200]),
    cap=st.sampled_from([None, None, 500, 5000]),
)
async def test_total_paid_is_the_floor_of_total_energy_times_price(
    price: Decimal,
    start: Decimal,
    steps: list[tuple[Decimal, str]],
    min_sats: int,
    cap: int | None,
) -> None:
    store = MemoryStore()
    ledger = await SettlementLedger.load(store)
    node = FakeNode()
    terms = Terms(
        price_sats_per_kwh=price, min_settlement_sats=min_sats, cap_per_payment_sats=cap
    )
    await ledger.set_baseline("n1", start)
    meter = start
    now = T0
    for increment, fault in steps:
        meter += increment
        now += timedelta(minutes=15)
        try:
            await settle(ledger, node, "n1", meter, terms, now, fault)
        except Crash:
            ledger = await restart_and_reconcile(
                store, node, fault, "n1", meter, terms, now
            )
    # Flush: no caps, 1 sat minimum.
    final = await settle(
        ledger, node, "n1", meter, Terms(price_sats_per_kwh=price), now
    )
    account = ledger.account("n1")
    exact_total = (meter - start) * price * 1000
    # The documented rule: whole sats, rounded down, remainder carried.
    assert account.meter_last_settled_kwh is not None
    settled_exact = (account.meter_last_settled_kwh - start) * price * 1000
    assert account.paid_msat == floor_to_unit(settled_exact, 1000)
    assert Decimal(account.paid_msat) + account.carry_msat == settled_exact
    assert 0 <= exact_total - account.paid_msat < 1000, final
    # The node agrees with the ledger, and no key was paid twice.
    assert node.complete_msat() == account.paid_msat
    assert all(n == 1 for n in node.complete_per_label().values())
    paid_keys = {r.key for r in ledger.records if r.state is State.PAID}
    assert paid_keys == set(node.complete_per_label())
    assert ledger.pending() == []


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["n1", "n2"]),
            st.one_of(
                st.decimals(min_value=0, max_value=3, places=3),
                st.just("reset"),
                st.just("unavailable"),
            ),
            st.decimals(min_value=0, max_value=2000, places=2),
            st.sampled_from(FAULTS),
        ),
        max_size=30,
    ),
    unit=st.sampled_from([1, 1000]),
)
async def test_varying_prices_resets_and_crashes_never_lose_or_repeat(
    steps: list[tuple[str, Any, Decimal, str]], unit: int
) -> None:
    store = MemoryStore()
    ledger = await SettlementLedger.load(store)
    node = FakeNode()
    meters = {"n1": Decimal(0), "n2": Decimal(0)}
    for n in meters:
        await ledger.set_baseline(n, "0")
    now = T0
    for neighbour, change, price, fault in steps:
        now += timedelta(minutes=7)
        terms = Terms(price_sats_per_kwh=price, unit_msat=unit)
        reading: Any
        if change == "reset":
            meters[neighbour] = Decimal(0)
            reading = meters[neighbour]
        elif change == "unavailable":
            reading = "unavailable"
        else:
            meters[neighbour] += change
            reading = meters[neighbour]
        try:
            result = await settle(ledger, node, neighbour, reading, terms, now, fault)
        except Crash:
            ledger = await restart_and_reconcile(
                store, node, fault, neighbour, reading, terms, now
            )
            continue
        if isinstance(result, Refusal):
            if change == "unavailable":
                assert result.reason is Reason.METER_UNAVAILABLE
            if result.reason is Reason.METER_BACKWARDS:
                await ledger.rebaseline(neighbour, reading, now)
    for n in meters:
        account = ledger.account(n)
        paid = [
            r for r in ledger.records if r.neighbour_id == n and r.state is State.PAID
        ]
        exact = sum((r.kwh * r.price_sats_per_kwh * 1000 for r in paid), Decimal(0))
        assert Decimal(account.paid_msat) + account.carry_msat == exact
        assert 0 <= account.carry_msat < unit
        assert account.paid_msat == sum(r.amount_msat for r in paid)
        assert all(r.amount_msat % unit == 0 for r in paid)
        for before, after in itertools.pairwise(paid):
            assert after.carry_before_msat == before.carry_after_msat
    assert all(n == 1 for n in node.complete_per_label().values())
    assert node.complete_msat() == sum(a.paid_msat for a in ledger.accounts.values())


# ---- against the simulated node, through pyln-client --------------------------------


@pytest.fixture
async def net(tmp_path: Any) -> AsyncIterator[LightningSim]:
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    async with running_lightning(tmp_path, neighbours=1, rest_port=None) as running:
        yield running


async def test_ledger_with_simulated_node_survives_restart_mid_payment(
    net: LightningSim, tmp_path: Any
) -> None:
    """Pay a neighbour's offer per kWh; the node restarts mid-payment; reconcile."""
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    store = JsonFileStore(tmp_path / "ledger.json")
    ledger = await SettlementLedger.load(store)
    terms = Terms(price_sats_per_kwh="123.4")
    await ledger.set_baseline(n1.node_id, "1000")

    async def pay(record: SettlementRecord) -> None:
        fetched = await asyncio.to_thread(
            rpc.call,
            "fetchinvoice",
            {
                "offer": n1.offer,
                "amount_msat": record.amount_msat,
                "payer_note": record.key,
            },
        )
        result = await asyncio.to_thread(
            rpc.call, "xpay", {"invstring": fetched["invoice"], "label": record.key}
        )
        await ledger.mark_paid(
            record.key,
            T0,
            fee_msat=result["amount_sent_msat"] - result["amount_msat"],
        )

    async def lookup(record: SettlementRecord) -> PaymentLookup:
        pays = await asyncio.to_thread(rpc.call, "listpays")
        return classify_pays(pays["pays"], record.key)

    first = await ledger.begin(n1.node_id, "1001.5", terms, T0)
    assert isinstance(first, SettlementRecord)
    await pay(first)
    second = await ledger.begin(n1.node_id, "1003", terms, T0)
    assert isinstance(second, SettlementRecord)
    net.restart_mid_payment("completed", downtime_s=0.2)
    with pytest.raises(RpcError):
        await pay(second)
    # "HA restarts" too: a fresh ledger from disk, reconciled once the node is back.
    ledger = await SettlementLedger.load(store)
    assert not ledger.ready
    for _ in range(100):
        report = await ledger.reconcile(lookup, T0)
        if not report.unresolved:
            break
        await asyncio.sleep(0.05)
    assert report.paid == [second.key]
    third = await ledger.begin(n1.node_id, "1003.01", terms, T0)
    assert isinstance(third, SettlementRecord)
    await pay(third)

    account = ledger.account(n1.node_id)
    exact = (Decimal("1003.01") - 1000) * Decimal("123.4") * 1000
    assert account.paid_msat == floor_to_unit(exact, 1000) == 371_000
    assert net.received_msat(n1) == account.paid_msat
    labels = [
        p["label"] for p in (await asyncio.to_thread(rpc.call, "listpays"))["pays"]
    ]
    assert sorted(labels) == sorted({first.key, second.key, third.key})


class OrjsonStore(MemoryStore):
    """Saves as Home Assistant's Store does (orjson: no int beyond 64 bits)."""

    async def save(self, data: dict[str, Any]) -> None:
        import orjson

        self.text = orjson.dumps(data).decode()
        self.saves += 1


HOSTILE_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from(
        ["1e20", "1E5000", "1e-5000", "NaN", "-inf", "abc", "", " 5 ", "0x10", "1_0"]
    ),
    st.text(max_size=30),
    st.none(),
)


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    price=HOSTILE_NUMBERS,
    meter=HOSTILE_NUMBERS,
    cap=st.sampled_from([None, 1000, 10**12]),
)
async def test_hostile_numbers_never_break_the_ledger(
    price: Any, meter: Any, cap: int | None
) -> None:
    """Whatever a price or meter sensor says: a refusal that changes nothing,
    or a record with a storable amount within bounds; the ledger keeps saving
    and settles the next sane reading exactly."""
    store = OrjsonStore()
    ledger = await SettlementLedger.load(store)
    terms = Terms("100", cap_per_payment_sats=cap)
    await ledger.begin("n1", "10", terms, T0)  # baseline
    before = json.dumps(ledger.to_dict(), sort_keys=True)
    result = await ledger.begin("n1", meter, Terms(price, cap_per_payment_sats=cap), T0)
    if isinstance(result, Refusal):
        assert json.dumps(ledger.to_dict(), sort_keys=True) == before
    else:
        assert 0 < result.amount_msat <= ledger_module.MAX_AMOUNT_MSAT
        assert cap is None or result.amount_msat <= cap * 1000
        await ledger.mark_failed(result.key, T0, "test")
    # Still sane: the next sane reading settles exactly.
    nxt = await ledger.begin("n1", "10.5", terms, T0)
    if ledger.account("n1").meter_last_settled_kwh == Decimal(10):
        assert isinstance(nxt, SettlementRecord)
        assert nxt.amount_msat == 50_000
    assert json.loads(store.text or "{}")["ledger_id"] == ledger.ledger_id
