"""Money that never doubles, overspends or goes astray (issue #12).

Each test plays one way settlement went wrong — a reload during a slow
``fetchinvoice``, a thousand failures then a restart, a lost or corrupt ledger,
hostile prices and meters, real Core Lightning's deprecations, offers and
rate-limited runes — in a real Home Assistant against the simulated node, and
asserts on what was paid (the simulator's balances and labels) and what the
user sees (entity states, repair issues, events).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, localcontext
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.lightning import client, ledger
from custom_components.hashgrid.lightning.repairs import LedgerLostRepairFlow
from custom_components.hashgrid.lightning.runtime import (
    lightning_runtime as runtime,
)
from custom_components.hashgrid.lightning.settlement import Settler
from simulators.lightning import LightningSim

from .conftest import add_node, call, neighbour_subentry, set_meter, unload_all
from .stores import JsonFileStore
from .test_payments import Events


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> Any:
    yield
    await unload_all(hass)


async def restart(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Home Assistant restarts: the settler and its ledger are built anew from
    the Store (a reload alone keeps the settler)."""
    await hass.config_entries.async_unload(entry.entry_id)
    Settler.async_forget(hass, entry.entry_id)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def with_alice(
    hass: HomeAssistant, net: LightningSim, *, baseline: bool = True, **terms: Any
) -> ConfigEntry:
    """Our node (socket) with the neighbour Alice, her meter at 0 kWh and, with
    ``baseline``, her first settlement (which only sets the baseline) done."""
    n1 = net.neighbours[0]
    set_meter(hass, n1, "0")
    entry = await add_node(
        hass, net, "socket", [neighbour_subentry(n1, name="Alice", **terms)]
    )
    if baseline:
        out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
        assert out["reason"] == "baseline_set"
    return entry


def store_key(entry: ConfigEntry) -> str:
    return f"{DOMAIN}.lightning.{entry.entry_id}"


# ---- 1. a reload while a payment is in flight ------------------------------------


async def test_reload_during_a_slow_fetchinvoice_pays_once(
    hass: HomeAssistant, net: LightningSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The neighbour's offer answers after 0.5 s; meanwhile the entry reloads
    (adding a neighbour or changing an option does that). 10 kWh at 1000 sat
    is 10,000 sat: paid once, recorded once, whatever the timing."""
    monkeypatch.setattr(ledger, "UNKNOWN_GRACE_S", 300.0)  # production's
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=1000)
    sid = next(iter(entry.subentries))
    set_meter(hass, n1, "10")
    net.faults.fetchinvoice_latency_s = 0.5
    settling = asyncio.ensure_future(
        call(hass, "settle_neighbour", entry, neighbour="Alice")
    )
    await asyncio.sleep(0.1)  # the settlement waits on fetchinvoice
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    out = await settling
    assert out["status"] == "paid"
    # The new setup and any later settlement see one payment, not a debt.
    again = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert again["reason"] == "nothing_owed"
    await restart(hass, entry)
    again = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert again["reason"] == "nothing_owed"
    assert net.paid_labels() == [out["key"]]
    assert net.received_msat(n1) == 10_000_000
    account = runtime(entry).settler.ledger.account(sid)
    assert account.paid_msat == 10_000_000
    await hass.async_block_till_done()
    assert hass.states.get("sensor.alice_paid").state == "10000"  # type: ignore[union-attr]


async def test_unknown_outcome_stays_pending_until_the_node_knows(
    hass: HomeAssistant, net: LightningSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home Assistant dies while the node fetches the invoice: after the
    restart the node knows no such payment yet. That is not "failed": the
    record stays pending (nothing new is paid) until the grace has passed."""
    monkeypatch.setattr(ledger, "UNKNOWN_GRACE_S", 300.0)
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=1000)
    set_meter(hass, n1, "2")
    net.faults.fetchinvoice_latency_s = 0.3
    settling = asyncio.ensure_future(
        runtime(entry).settler.async_settle(next(iter(entry.subentries)))
    )
    await asyncio.sleep(0.05)
    settling.cancel()  # the process dies here
    await asyncio.gather(settling, return_exceptions=True)
    await restart(hass, entry)
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert (out["status"], out["reason"]) == ("refused", "pending")
    assert net.paid_labels() == []
    monkeypatch.setattr(ledger, "UNKNOWN_GRACE_S", 0.0)  # ... time passes
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "paid"
    assert net.received_msat(n1) == 2_000_000


# ---- 2. the daily cap survives a thousand failures and a restart -----------------


async def test_daily_cap_holds_after_a_thousand_failures_and_a_restart(
    hass: HomeAssistant, net: LightningSim
) -> None:
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=100, cap_per_day_sats=1000)
    sid = next(iter(entry.subentries))
    settler = runtime(entry).settler
    set_meter(hass, n1, "9")  # 900 sat
    assert (await settler.async_settle(sid)).status == "paid"
    set_meter(hass, n1, "18")  # another 900 sat: over the cap of 1000
    net.set_no_route(to=n1.node_id)
    for _ in range(1100):  # e.g. an automation retrying every minute
        outcome = await settler.async_settle(sid)
        assert outcome.reason == "cap_per_day"
    set_meter(hass, n1, "10")  # ... and smaller amounts that fail
    settler.ledger.account(sid).meter_last_settled_kwh = Decimal(9)
    for _ in range(1100):
        assert (await settler.async_settle(sid)).status == "failed"
    net.clear_faults()
    await restart(hass, entry)
    set_meter(hass, n1, "18")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert (out["status"], out["reason"]) == ("refused", "cap_per_day")
    assert net.received_msat(n1) == 900_000


# ---- 3. a lost or corrupt ledger pays nothing until the user confirms ------------


@pytest.mark.parametrize("damage", ["deleted", "corrupt"])
async def test_lost_ledger_pays_nothing_until_a_new_one_is_confirmed(
    hass: HomeAssistant,
    net: LightningSim,
    hass_storage: dict[str, Any],
    damage: str,
) -> None:
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=1000)
    set_meter(hass, n1, "1")
    first = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert first["status"] == "paid"
    await hass.config_entries.async_unload(entry.entry_id)
    if damage == "deleted":
        hass_storage.pop(store_key(entry))
    else:  # HA moves a corrupt file aside and hands over nothing; or junk
        hass_storage[store_key(entry)]["data"] = {"junk": True}
    Settler.async_forget(hass, entry.entry_id)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    issue_id = f"settlement_ledger_lost_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    refused = Events(hass, "hashgrid_settlement_refused")
    set_meter(hass, n1, "2")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert (out["status"], out["reason"]) == ("refused", "ledger_lost")
    assert (await refused.next())["reason"] == "ledger_lost"
    assert net.paid_labels() == [first["key"]]
    await hass.async_block_till_done()
    state = hass.states.get("sensor.alice_last_settlement")
    assert state is not None
    assert state.state == "ledger_lost"

    # The user confirms the new ledger (the repair's fix flow).
    flow = LedgerLostRepairFlow({"entry_id": entry.entry_id})
    flow.hass = hass
    form = await flow.async_step_init()
    assert form["step_id"] == "confirm"
    done = await flow.async_step_confirm({})
    assert done["type"] == "create_entry"
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    set_meter(hass, n1, "2.5")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "paid"
    assert out["amount_sat"] == 500  # only what was metered after the confirmation
    assert out["key"] != first["key"]
    assert sorted(net.paid_labels()) == sorted([first["key"], out["key"]])
    assert net.received_msat(n1) == 1_500_000


# ---- 4. hostile numbers: refused, reported, and nobody else is affected ----------


@pytest.mark.parametrize(
    "price", ["1e20", "1E5000", "NaN", "inf", "-inf", "-5", "abc", "1e-5000"]
)
async def test_hostile_price_is_refused_and_other_neighbours_still_settle(
    hass: HomeAssistant, net: LightningSim, price: str
) -> None:
    n1, n2 = net.neighbours
    set_meter(hass, n1, "0")
    set_meter(hass, n2, "0")
    hass.states.async_set("sensor.price", "100")
    entry = await add_node(
        hass,
        net,
        "socket",
        [
            neighbour_subentry(
                n1,
                name="Alice",
                price=None,
                price_mode="sensor",
                price_entity="sensor.price",
                cap_per_payment_sats=1000,
            ),
            neighbour_subentry(n2, name="Bob", price=10),
        ],
    )
    for name in ("Alice", "Bob"):
        await call(hass, "settle_neighbour", entry, neighbour=name)
    hass.states.async_set("sensor.price", price)
    set_meter(hass, n1, "5")
    set_meter(hass, n2, "5")
    refused = Events(hass, "hashgrid_settlement_refused")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "refused"
    assert out["reason"] in ("price_unavailable", "amount_out_of_range")
    assert (await refused.next())["neighbour"] == "Alice"
    sid = next(s for s, sub in entry.subentries.items() if sub.title == "Alice")
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}")
    assert net.received_msat(n1) == 0
    # Nothing of it was kept: Bob is paid, and Alice once the price is sane.
    out = await call(hass, "settle_neighbour", entry, neighbour="Bob")
    assert (out["status"], out["amount_sat"]) == ("paid", 50)
    hass.states.async_set("sensor.price", "100")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert (out["status"], out["amount_sat"]) == ("paid", 500)
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"settlement_{sid}") is None


@pytest.mark.parametrize(
    ("meter", "unit"),
    [("1e300", "kWh"), ("NaN", "kWh"), ("-3", "kWh"), ("7", "W"), ("1e13", "kWh")],
)
async def test_hostile_meter_is_refused(
    hass: HomeAssistant, net: LightningSim, meter: str, unit: str
) -> None:
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=100)
    hass.states.async_set(
        "sensor.meter_" + n1.name.replace("-", "_"),
        meter,
        {"unit_of_measurement": unit},
    )
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert (out["status"], out["reason"]) == ("refused", "meter_unavailable")
    assert net.received_msat(n1) == 0


async def test_settlement_is_exact_to_the_last_digit(tmp_path: Any) -> None:
    """100000.642578125 kWh x 99999.642578125 sat/kWh has 29 significant
    digits: Python's default 28-digit decimals round it; the ledger does not.
    (The ledger alone: no simulated channel carries 100 BTC.)"""
    from datetime import UTC, datetime

    book = await ledger.SettlementLedger.load(JsonFileStore(tmp_path / "ledger.json"))
    book._reconciled = True
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    terms = ledger.Terms("99999.642578125")
    await book.begin("n", "0", terms, now)
    record = await book.begin("n", "100000.642578125", terms, now)
    assert isinstance(record, ledger.SettlementRecord)
    # In integers: 100000642578125e-9 kWh x 99999642578125e-9 sat/kWh x 1000.
    exact_msat_e15 = 100000642578125 * 99999642578125  # msat x 10**15
    assert record.amount_msat == exact_msat_e15 // 10**18 * 1000
    carry_e15 = exact_msat_e15 - record.amount_msat * 10**15
    assert record.carry_after_msat * 10**15 == carry_e15
    await book.mark_paid(record.key, now)
    account = book.account("n")
    with localcontext(ledger.EXACT):  # the test's own sum must not round either
        assert (account.paid_msat + account.carry_msat) * 10**15 == exact_msat_e15


# ---- 6. real Core Lightning: xkeysend, offers made once, rate-limited runes ------


async def test_keysend_neighbour_is_paid_by_xkeysend_when_keysend_is_deprecated(
    hass: HomeAssistant, net: LightningSim
) -> None:
    n1 = net.neighbours[0]
    net.ours.allow_deprecated_apis = False
    set_meter(hass, n1, "0")
    entry = await add_node(
        hass,
        net,
        "socket",
        [neighbour_subentry(n1, name="Alice", price=100, keysend=True)],
    )
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    set_meter(hass, n1, "3")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "paid"
    assert len(out["payment_hash"]) == 64  # derived from xkeysend's preimage
    assert net.received_msat(n1) == 300_000


async def test_older_node_without_xkeysend_is_paid_by_keysend(
    hass: HomeAssistant, net: LightningSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulators.lightning import node

    monkeypatch.delitem(node.PARAMS, "xkeysend")  # a node before v26.06
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=100, keysend=True)
    set_meter(hass, n1, "3")
    out = await call(hass, "settle_neighbour", entry, neighbour="Alice")
    assert out["status"] == "paid"
    assert net.received_msat(n1) == 300_000


async def test_our_offer_is_made_once_and_kept_across_reloads(
    hass: HomeAssistant, net: LightningSim
) -> None:
    """A home node without an announced address mints a new offer per call:
    HashGrid must make ours once, keep its id, and disable strays."""
    assert net.ours.announced_address is None
    n2 = net.neighbours[1]
    set_meter(hass, n2, "100")
    stray = await net.ours.call(
        "offer", {"amount": "any", "description": "old", "label": "hashgrid:gone"}
    )
    entry = await add_node(
        hass,
        net,
        "socket",
        [neighbour_subentry(n2, name="Bob", direction="they_pay", price=50)],
    )
    sid = next(iter(entry.subentries))
    offer_id, bolt12 = runtime(entry).offers[sid]
    assert entry.subentries[sid].data["our_offer_id"] == offer_id
    fetched = await n2.call("fetchinvoice", {"offer": bolt12, "amount_msat": 150_000})
    await n2.call("xpay", {"invstring": fetched["invoice"]})
    for _ in range(2):
        await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        assert runtime(entry).offers[sid] == (offer_id, bolt12)
    await restart(hass, entry)
    assert runtime(entry).offers[sid] == (offer_id, bolt12)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bob_received").state == "150"  # type: ignore[union-attr]
    offers = (await net.ours.call("listoffers", {"active_only": True}))["offers"]
    assert [o["offer_id"] for o in offers] == [offer_id]
    assert stray["offer_id"] not in [o["offer_id"] for o in offers]


async def test_rate_limited_rune_is_waited_for_not_a_reauthentication(
    hass: HomeAssistant, net: LightningSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "RATE_LIMIT_BACKOFF_S", (0.15, 0.3, 0.6))
    made = await net.ours.call("createrune", {"restrictions": [["per=100msec"]]})
    net.rune = made["rune"]
    entry = await add_node(hass, net, "rest")
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    await runtime(entry).coordinator.async_refresh()
    assert runtime(entry).coordinator.last_update_success
    state = hass.states.get("sensor.hashgrid_channels")
    assert state is not None
    assert state.state not in ("unavailable", "unknown")


async def test_baseline_shows_as_metering_started_not_refused(
    hass: HomeAssistant, net: LightningSim
) -> None:
    n1 = net.neighbours[0]
    set_meter(hass, n1, "5")
    entry = await add_node(
        hass, net, "socket", [neighbour_subentry(n1, name="Alice", price=100)]
    )
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    await hass.async_block_till_done()
    state = hass.states.get("sensor.alice_last_settlement")
    assert state is not None
    assert state.state == "baseline_set"
    assert state.attributes["options"].count("pending") == 1


async def test_each_settlement_is_one_readable_logbook_line(
    hass: HomeAssistant, net: LightningSim
) -> None:
    """The logbook's words for the settlement events HashGrid fires (the
    logbook itself needs the recorder; its describer is what HashGrid adds)."""
    from homeassistant.core import Event, callback

    from custom_components.hashgrid import logbook

    describers: dict[str, Any] = {}
    logbook.async_describe_events(
        hass, lambda domain, name, fn: describers.__setitem__(name, fn)
    )
    seen: list[Event] = []

    @callback
    def _seen(event: Event) -> None:
        seen.append(event)

    hass.bus.async_listen("hashgrid_settlement", _seen)
    n1 = net.neighbours[0]
    entry = await with_alice(hass, net, price=400)
    set_meter(hass, n1, "1.25")
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    set_meter(hass, n1, "1")
    await call(hass, "settle_neighbour", entry, neighbour="Alice")
    await hass.async_block_till_done()
    lines = [describers["hashgrid_settlement"](event) for event in seen]
    assert [(line["name"], line["message"]) for line in lines] == [
        ("Alice", "no payment: metering started"),
        ("Alice", "paid 500 sat for 1.25 kWh, routing fee 1.005 sat"),
        ("Alice", "no payment: the meter went backwards"),
    ]
    assert lines[1]["entity_id"] == "event.alice_settlement"
