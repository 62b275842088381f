"""Incoming payments, the admin actions and settlement, against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from homeassistant.auth.models import User
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.lightning.runtime import (
    lightning_runtime as runtime,
)
from simulators.lightning import LightningSim

from .conftest import add_node, call, neighbour_subentry, set_meter, unload_all


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


class Events:
    """Collects one HA bus event type (listener runs in the loop: @callback)."""

    def __init__(self, hass: HomeAssistant, event_type: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

        @callback
        def _on(event: Event) -> None:
            self.events.append(dict(event.data))
            self.arrived.set()

        hass.bus.async_listen(event_type, _on)

    async def next(self, within_s: float = 5.0) -> dict[str, Any]:
        await asyncio.wait_for(self.arrived.wait(), within_s)
        self.arrived.clear()
        return self.events[-1]


# ---- incoming payments -----------------------------------------------------------


@pytest.mark.parametrize("transport", ["socket", "rest"])
async def test_incoming_payment_fires_the_event_entity(
    hass: HomeAssistant, net: LightningSim, transport: str
) -> None:
    entry = await add_node(hass, net, transport)
    received = Events(hass, "hashgrid_payment_received")
    invoice = await call(
        hass, "create_invoice", entry, amount_sat=2100, description="Coffee"
    )
    assert invoice["bolt11"].startswith("lnbcrt")
    state = hass.states.get("event.hashgrid_incoming_payment")
    assert state is not None
    assert state.state == "unknown"
    polled = runtime(entry).coordinator.data

    n1 = net.neighbours[0]
    await n1.call("xpay", {"invstring": invoice["bolt11"]})
    event = await received.next()
    assert event["amount_sat"] == 2100
    assert event["label"] == invoice["label"]
    assert event["payment_hash"] == invoice["payment_hash"]
    await hass.async_block_till_done()
    state = hass.states.get("event.hashgrid_incoming_payment")
    assert state is not None
    assert state.attributes["event_type"] == "payment_received"
    assert state.attributes["amount_msat"] == 2_100_000
    assert state.attributes["description"] == "Coffee"
    assert "payment_preimage" not in state.attributes
    # Fed by waitanyinvoice, not by a poll.
    assert runtime(entry).coordinator.data is polled
    assert runtime(entry).listener.received == 1

    # A keysend arrives the same way; each payment fires once.
    await n1.call("keysend", {"destination": net.node_id, "amount_msat": 7000})
    event = await received.next()
    assert event["amount_msat"] == 7000
    assert len(received.events) == 2


async def test_listener_survives_a_node_restart(
    hass: HomeAssistant, net: LightningSim
) -> None:
    entry = await add_node(hass, net, "socket")
    received = Events(hass, "hashgrid_payment_received")
    n1 = net.neighbours[0]
    # The node drops every connection and is away for a while.
    await net.ours.simulate_restart(0.3)
    invoice = await call(hass, "create_invoice", entry, description="after restart")
    await n1.call("xpay", {"invstring": invoice["bolt11"], "amount_msat": 1234})
    event = await received.next()
    assert event["amount_msat"] == 1234


async def test_listener_stops_at_unload(hass: HomeAssistant, net: LightningSim) -> None:
    entry = await add_node(hass, net, "rest")
    task = runtime(entry).listener_task
    assert task is not None
    assert not task.done()
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert task.done()


# ---- actions -----------------------------------------------------------------------


async def test_actions_are_admin_only(
    hass: HomeAssistant, net: LightningSim, hass_read_only_user: User
) -> None:
    entry = await add_node(hass, net, "socket")
    n1 = net.neighbours[0]
    inv = await n1.call(
        "invoice", {"amount_msat": 1000, "label": "x", "description": "d"}
    )
    context = Context(user_id=hass_read_only_user.id)
    for service, data in (
        ("create_invoice", {"description": "x"}),
        ("pay", {"invoice": inv["bolt11"]}),
        ("settle_neighbour", {"neighbour": "nobody"}),
    ):
        with pytest.raises(Unauthorized):
            await call(hass, service, entry, context=context, **data)
    assert net.ours.sendpays == []


async def test_invalid_invoice_is_refused_and_nothing_paid(
    hass: HomeAssistant, net: LightningSim, hass_admin_user: User
) -> None:
    entry = await add_node(hass, net, "rest")
    context = Context(user_id=hass_admin_user.id)
    for text in ("lnbcrt1garbage", "hello", net.rune):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "pay", entry, context=context, invoice=text)
        assert err.value.translation_key == "lightning_invalid_invoice"
    # An amountless invoice needs an amount.
    inv = await net.neighbours[0].call(
        "invoice", {"amount_msat": "any", "label": "any", "description": "d"}
    )
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "pay", entry, context=context, invoice=inv["bolt11"])
    assert err.value.translation_key == "lightning_amount_required"
    assert net.ours.sendpays == []


@pytest.mark.parametrize("transport", ["socket", "rest"])
async def test_pay_moves_balances(
    hass: HomeAssistant, net: LightningSim, transport: str, hass_admin_user: User
) -> None:
    entry = await add_node(hass, net, transport)
    context = Context(user_id=hass_admin_user.id)
    n1, n2 = net.neighbours
    before = net.balance_msat(net.ours, net.router)
    inv = await n1.call(
        "invoice", {"amount_msat": 5_000_000, "label": "p", "description": "d"}
    )
    paid = await call(
        hass, "pay", entry, context=context, invoice=inv["bolt11"], max_fee_sat=100
    )
    assert paid["amount_sat"] == 5000
    assert paid["fee_msat"] > 0
    assert net.received_msat(n1) == 5_000_000
    after = net.balance_msat(net.ours, net.router)
    assert before - after == 5_000_000 + paid["fee_msat"]
    await hass.async_block_till_done()
    state = hass.states.get("sensor.hashgrid_lightning_spendable")
    assert state is not None
    channel = (await net.ours.call("listpeerchannels"))["channels"][0]
    assert state.state == str(channel["spendable_msat"] // 1000)

    # A BOLT12 offer with an amount of our choosing.
    paid = await call(
        hass, "pay", entry, context=context, invoice=n2.offer, amount_sat=321
    )
    assert paid["amount_msat"] == 321_000
    assert net.received_msat(n2) == 321_000


# ---- settlement ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "keysend"), [("socket", False), ("rest", False), ("socket", True)]
)
async def test_settlement_pays_exactly_once(
    hass: HomeAssistant, net: LightningSim, transport: str, keysend: bool
) -> None:
    n1 = net.neighbours[0]
    set_meter(hass, n1, "1000")
    entry = await add_node(
        hass,
        net,
        transport,
        [neighbour_subentry(n1, name="Alice", keysend=keysend, price=123.4)],
    )
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out == {
        "neighbour": "Alice",
        "status": "refused",
        "reason": "baseline_set",
        "detail": "1000",
    }
    set_meter(hass, n1, "1001.5")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.alice_unpaid_energy").state == "1.5"  # type: ignore[union-attr]
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    # 1.5 kWh x 123.4 sat/kWh = 185.1 sat: 185 paid, 0.1 carried.
    assert out["status"] == "paid"
    assert out["amount_sat"] == 185
    assert out["kwh"] == "1.5"
    received = sum(
        i.amount_received_msat or 0 for i in n1.node.invoices if i.status == "paid"
    )
    assert received == 185_000
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["reason"] == "nothing_owed"
    set_meter(hass, n1, "1003.01")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    # (1003.01 - 1000) x 123.4 = 371.434 sat in total: 371 paid in all.
    assert out["amount_sat"] == 186
    assert net.paid_labels().count(out["key"]) == 1
    total = sum(
        i.amount_received_msat or 0 for i in n1.node.invoices if i.status == "paid"
    )
    assert total == 371_000
    await hass.async_block_till_done()
    assert hass.states.get("sensor.alice_paid").state == "371"  # type: ignore[union-attr]
    assert hass.states.get("sensor.alice_energy_settled").state == "3.01"  # type: ignore[union-attr]
    assert hass.states.get("sensor.alice_unpaid_energy").state == "0"  # type: ignore[union-attr]
    assert hass.states.get("sensor.alice_last_settlement").state == "paid"  # type: ignore[union-attr]
    assert hass.states.get("sensor.alice_last_settlement_time").state != "unknown"  # type: ignore[union-attr]
    event = hass.states.get("event.alice_settlement")
    assert event is not None
    assert event.attributes["event_type"] == "paid"
    assert event.attributes["amount_sat"] == 186


@pytest.mark.parametrize("outcome", ["completed", "failed"])
async def test_restart_mid_payment_then_reload_reconciles(
    hass: HomeAssistant, net: LightningSim, outcome: str
) -> None:
    n1 = net.neighbours[0]
    set_meter(hass, n1, "0")
    entry = await add_node(hass, net, "socket", [neighbour_subentry(n1, name="Alice")])
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    set_meter(hass, n1, "2")
    net.restart_mid_payment(outcome, downtime_s=0.3)  # type: ignore[arg-type]
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    # The node vanished mid-payment: nobody knows yet whether it went through.
    assert out["status"] == "pending"
    key = out["key"]
    assert runtime(entry).settler.ledger.pending()
    # A second settlement now must not pay again.
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "refused"
    await asyncio.sleep(0.4)  # the node is back
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    settler = runtime(entry).settler
    assert settler.ledger.pending() == []
    record = settler.ledger.record(key)
    assert record.state.value == ("paid" if outcome == "completed" else "failed")
    set_meter(hass, n1, "3")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "paid"
    assert out["amount_sat"] == (100 if outcome == "completed" else 300)
    assert sorted(net.paid_labels()) == sorted(
        ([key] if outcome == "completed" else []) + [out["key"]]
    )
    assert net.received_msat(n1) == 300_000


async def test_meter_backwards_is_a_repair_issue_not_a_payment(
    hass: HomeAssistant, net: LightningSim
) -> None:
    n1 = net.neighbours[0]
    set_meter(hass, n1, "50")
    entry = await add_node(hass, net, "socket", [neighbour_subentry(n1, name="Alice")])
    refused = Events(hass, "hashgrid_settlement_refused")
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    set_meter(hass, n1, "10")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["reason"] == "meter_backwards"
    sid = next(iter(entry.subentries))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}")
    assert issue is not None
    assert issue.translation_key == "settlement_meter_backwards"
    assert (await refused.next())["reason"] == "meter_backwards"
    assert net.ours.sendpays == []
    # Unavailable: the same, another issue text.
    hass.states.async_set("sensor.meter_neighbour_1", "unavailable")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["reason"] == "meter_unavailable"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}")
    assert issue is not None
    assert issue.translation_key == "settlement_meter_unavailable"
    # The user says the meter was reset: settle from its new reading on.
    set_meter(hass, n1, "10")
    out = await call(
        hass, "settle_neighbour", entry, neighbour="Alice", accept_meter_reset=True
    )
    assert out["status"] == "rebaselined"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}") is None
    set_meter(hass, n1, "11")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["amount_sat"] == 100
    assert net.received_msat(n1) == 100_000


async def test_cap_exceeded_is_an_issue_and_an_event_not_a_payment(
    hass: HomeAssistant, net: LightningSim
) -> None:
    n1 = net.neighbours[0]
    set_meter(hass, n1, "10")
    entry = await add_node(
        hass,
        net,
        "rest",
        [
            neighbour_subentry(
                n1, name="Alice", cap_per_payment_sats=500, cap_per_day_sats=800
            )
        ],
    )
    refused = Events(hass, "hashgrid_settlement_refused")
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    set_meter(hass, n1, "16")  # 600 sat > 500
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["reason"] == "cap_per_payment"
    event = await refused.next()
    assert event["reason"] == "cap_per_payment"
    assert event["amount_sat"] == 600
    assert event["neighbour"] == "Alice"
    sid = next(iter(entry.subentries))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}")
    assert issue is not None
    assert issue.translation_key == "settlement_cap_per_payment"
    assert net.ours.sendpays == []
    await hass.async_block_till_done()
    state = hass.states.get("event.alice_settlement")
    assert state is not None
    assert state.attributes["event_type"] == "refused"
    assert state.attributes["reason"] == "cap_per_payment"
    # The meter was wrong and is reset; within the caps: paid, the issue goes away.
    set_meter(hass, n1, "5")
    out = await call(
        hass, "settle_neighbour", entry, neighbour="Alice", accept_meter_reset=True
    )
    assert out["status"] == "rebaselined"
    set_meter(hass, n1, "10")  # 500 sat
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert (out["status"], out["amount_sat"]) == ("paid", 500)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}") is None
    set_meter(hass, n1, "14")  # 400 more: 900 today > 800
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["reason"] == "cap_per_day"
    assert (await refused.next())["reason"] == "cap_per_day"
    assert net.received_msat(n1) == 500_000


async def test_they_pay_publishes_an_offer_and_counts_arrivals(
    hass: HomeAssistant, net: LightningSim
) -> None:
    n2 = net.neighbours[1]
    set_meter(hass, n2, "100")
    entry = await add_node(
        hass,
        net,
        "socket",
        [neighbour_subentry(n2, name="Bob", direction="they_pay", price=50)],
    )
    offer_id, bolt12 = runtime(entry).offers[next(iter(entry.subentries))]
    state = hass.states.get("sensor.bob_received")
    assert state is not None
    assert state.state == "0"
    assert state.attributes["offer"] == bolt12
    set_meter(hass, n2, "104")  # 4 kWh x 50 = 200 sat owed
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bob_arrears").state == "200"  # type: ignore[union-attr]
    received = Events(hass, "hashgrid_payment_received")
    fetched = await n2.call("fetchinvoice", {"offer": bolt12, "amount_msat": 150_000})
    await n2.call("xpay", {"invstring": fetched["invoice"]})
    event = await received.next()
    assert event["offer_id"] == offer_id
    for _ in range(50):
        await hass.async_block_till_done()
        if hass.states.get("sensor.bob_received").state == "150":  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.02)
    assert hass.states.get("sensor.bob_received").state == "150"  # type: ignore[union-attr]
    assert hass.states.get("sensor.bob_arrears").state == "50"  # type: ignore[union-attr]
    with pytest.raises(ServiceValidationError):
        await call(hass, "settle_neighbour", entry, neighbour="Bob")
