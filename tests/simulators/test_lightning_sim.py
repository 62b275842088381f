"""The Lightning simulator, driven by the real pyln-client and aiohttp.

Every response is validated against Core Lightning's own schemas (v26.06).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import copy
import hashlib
import ssl
import subprocess
import sys
import time
from typing import Any

import aiohttp
from pyln.client import LightningRpc, RpcError
import pytest
import pytest_socket

from simulators.lightning import LightningSim, running_lightning
from simulators.lightning.codec import Bolt11, bech32_decode, decode_bolt11
from simulators.lightning.node import RpcFault
from simulators.lightning.schemas import load, response_errors, validate_response

METHODS = [
    "getinfo",
    "listfunds",
    "listpeerchannels",
    "invoice",
    "listinvoices",
    "waitanyinvoice",
    "wait",
    "offer",
    "listoffers",
    "fetchinvoice",
    "xpay",
    "pay",
    "keysend",
    "xkeysend",
    "disableoffer",
    "listpays",
    "listsendpays",
    "decode",
    "createrune",
    "checkrune",
]

Call = Callable[[str, Any], Awaitable[dict[str, Any]]]


class RestFailure(Exception):
    """CLNRest answered with an error status."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error


@pytest.fixture
def unix_sockets() -> None:
    """Let pyln-client connect to unix sockets (HA's plugin blocks connect())."""
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture
async def net(unix_sockets: None, tmp_path: Any) -> AsyncIterator[LightningSim]:
    """The network without CLNRest (unix sockets only)."""
    async with running_lightning(tmp_path, neighbours=2, rest_port=None) as running:
        yield running


@pytest.fixture
async def rest_net(
    socket_enabled: None, unix_sockets: None, tmp_path: Any
) -> AsyncIterator[LightningSim]:
    """The network with CLNRest on a free loopback port."""
    async with running_lightning(tmp_path, neighbours=2, rest_port=0) as running:
        yield running


def socket_caller(path: str, seen: dict[str, int] | None = None) -> Call:
    """Call through pyln-client (in a thread); validate every answer."""
    rpc = LightningRpc(path)

    async def call(method: str, params: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.to_thread(rpc.call, method, params)
        validate_response(method, result)
        if seen is not None:
            seen[method] = seen.get(method, 0) + 1
        return result

    return call


def ssl_context(net: LightningSim) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=net.ca_cert_path)


async def rest_post(
    session: aiohttp.ClientSession,
    net: LightningSim,
    method: str,
    params: Any = None,
    *,
    rune: str | None = None,
) -> tuple[int, Any]:
    headers = {"Rune": rune} if rune is not None else {}
    async with session.post(
        f"{net.rest_url}/v1/{method}",
        json=params or {},
        headers=headers,
        ssl=ssl_context(net),
    ) as resp:
        return resp.status, await resp.json()


def rest_caller(
    session: aiohttp.ClientSession, net: LightningSim, seen: dict[str, int]
) -> Call:
    async def call(method: str, params: Any = None) -> dict[str, Any]:
        status, body = await rest_post(session, net, method, params, rune=net.rune)
        if status != 201:
            raise RestFailure(status, body)
        validate_response(method, body)
        seen[method] = seen.get(method, 0) + 1
        result: dict[str, Any] = body
        return result

    return call


# ---- the schema validator itself ------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_schema_validator_accepts_cln_examples(method: str) -> None:
    """CLN's own example responses pass: the type mapping is right."""
    examples = load(method).get("examples", [])
    for example in examples:
        assert response_errors(method, example["response"]) == []


def test_schema_validator_rejects_broken_responses() -> None:
    example = copy.deepcopy(load("getinfo")["examples"][0]["response"])
    assert response_errors("getinfo", example) == []
    assert response_errors("getinfo", example | {"surprise": 1})
    assert response_errors("getinfo", example | {"id": "02" + "ab" * 31})  # 64 hex
    assert response_errors("getinfo", example | {"fees_collected_msat": "1msat"})
    broken = {k: v for k, v in example.items() if k != "blockheight"}
    assert response_errors("getinfo", broken)
    pay = copy.deepcopy(load("listpays")["examples"][1]["response"])
    pay["pays"][0]["status"] = "failed"  # a failed pay may not carry a preimage
    assert response_errors("listpays", pay)


# ---- every method, over both transports, against the schemas --------------------


async def exercise_every_method(net: LightningSim, call: Call) -> None:
    """Call each method on our node at least once in a realistic sequence."""
    n1, n2 = net.neighbours
    info = await call("getinfo", {})
    assert info["id"] == net.node_id
    assert info["network"] == "regtest"
    assert info["num_active_channels"] == 1
    funds = await call("listfunds", {})
    assert funds["channels"][0]["peer_id"] == net.router.node_id
    chans = await call("listpeerchannels", {})
    assert len(chans["channels"]) == 1
    assert (await call("listpeerchannels", {"id": n1.node_id}))["channels"] == []

    # Incoming: an invoice of ours, paid by neighbour 1 (through the router).
    ours = await call(
        "invoice", {"amount_msat": 21_000, "label": "in-1", "description": "kWh 1"}
    )
    assert ours["bolt11"].startswith("lnbcrt210n1")
    decoded = await call("decode", {"string": ours["bolt11"]})
    assert decoded["payment_hash"] == ours["payment_hash"]
    assert decoded["amount_msat"] == 21_000
    assert decoded["payee"] == net.node_id
    assert decoded["description"] == "kWh 1"
    unpaid = await call("listinvoices", {"label": "in-1"})
    assert unpaid["invoices"][0]["status"] == "unpaid"
    await n1.call("xpay", {"invstring": ours["bolt11"]})
    paid = await call("waitanyinvoice", {"lastpay_index": 0, "timeout": 5})
    assert paid["label"] == "in-1"
    assert paid["status"] == "paid"
    assert paid["amount_received_msat"] == 21_000
    pre = bytes.fromhex(paid["payment_preimage"])
    assert hashlib.sha256(pre).hexdigest() == ours["payment_hash"]
    listed = await call("listinvoices", {"payment_hash": ours["payment_hash"]})
    assert listed["invoices"][0]["status"] == "paid"
    created = await call(
        "wait", {"subsystem": "invoices", "indexname": "created", "nextvalue": 1}
    )
    assert created["invoices"]["label"] == "in-1"
    updated = await call(
        "wait", {"subsystem": "invoices", "indexname": "updated", "nextvalue": 1}
    )
    assert updated["invoices"]["status"] == "paid"

    # Outgoing, BOLT11 with pay and xpay.
    inv1 = await n1.call(
        "invoice", {"amount_msat": 50_000, "label": "a", "description": "energy"}
    )
    result = await call("pay", {"bolt11": inv1["bolt11"], "label": "n1:1"})
    assert result["status"] == "complete"
    assert result["amount_sent_msat"] > result["amount_msat"] == 50_000
    inv2 = await n2.call(
        "invoice", {"amount_msat": 70_000, "label": "b", "description": "energy"}
    )
    xres = await call("xpay", {"invstring": inv2["bolt11"], "label": "n2:1"})
    assert xres["successful_parts"] == 1
    assert (
        hashlib.sha256(bytes.fromhex(xres["payment_preimage"])).hexdigest()
        == (inv2["payment_hash"])
    )
    # Outgoing, BOLT12: fetchinvoice on the neighbour's offer, then xpay.
    fetched = await call("fetchinvoice", {"offer": n2.offer, "amount_msat": 33_000})
    assert fetched["invoice"].startswith("lni1")
    b12 = await call("decode", {"string": fetched["invoice"]})
    assert b12["type"] == "bolt12 invoice"
    assert b12["invoice_amount_msat"] == 33_000
    assert b12["invoice_node_id"] == n2.node_id
    await call("xpay", {"invstring": fetched["invoice"], "label": "n2:2"})
    offer_decoded = await call("decode", {"string": n2.offer})
    assert offer_decoded["type"] == "bolt12 offer"
    assert offer_decoded["offer_issuer_id"] == n2.node_id
    # Keysend.
    ks = await call(
        "keysend", {"destination": n1.node_id, "amount_msat": 12_000, "label": "n1:2"}
    )
    assert ks["destination"] == n1.node_id
    xks = await call(
        "xkeysend", {"destination": n1.node_id, "amount_msat": 13_000, "label": "n1:3"}
    )
    assert "payment_hash" not in xks  # xpay's shape
    assert xks["amount_msat"] == 13_000

    pays = await call("listpays", {})
    assert all("number_of_parts" not in p for p in pays["pays"])  # single-part
    assert sorted(p.get("label") for p in pays["pays"]) == [
        "n1:1",
        "n1:2",
        "n1:3",
        "n2:1",
        "n2:2",
    ]
    assert all(p["status"] == "complete" for p in pays["pays"])
    by_hash = await call("listpays", {"payment_hash": inv1["payment_hash"]})
    assert [p["label"] for p in by_hash["pays"]] == ["n1:1"]
    sendpays = await call("listsendpays", {"bolt11": inv2["bolt11"]})
    assert [p["status"] for p in sendpays["payments"]] == ["complete"]
    assert len((await call("listsendpays", {}))["payments"]) == 5
    sp_wait = await call(
        "wait", {"subsystem": "sendpays", "indexname": "updated", "nextvalue": 5}
    )
    assert sp_wait["sendpays"]["status"] == "complete"
    fw_wait = await call(
        "wait", {"subsystem": "forwards", "indexname": "created", "nextvalue": 0}
    )
    assert fw_wait == {"subsystem": "forwards", "created": 0}  # we forward nothing

    # Offers of our own (they pay us). No announced address: each call mints a
    # new offer (new blinded paths), as a typical home node does.
    minted = await call("offer", {"amount": "any", "description": "pay HashGrid"})
    assert minted["created"] is True
    other = await call("offer", {"amount": "any", "description": "pay HashGrid"})
    assert (other["created"], other["offer_id"] != minted["offer_id"]) == (True, True)
    for old in (minted, other):
        disabled = await call("disableoffer", {"offer_id": old["offer_id"]})
        assert disabled["active"] is False
    # With an announced address the same offer comes back.
    net.ours.announced_address = "203.0.113.5"
    offer = await call("offer", {"amount": "any", "description": "pay HashGrid"})
    assert offer["bolt12"].startswith("lno1")
    assert offer["created"] is True
    again = await call("offer", {"amount": "any", "description": "pay HashGrid"})
    assert again["offer_id"] == offer["offer_id"]
    assert again["created"] is False
    offers = await call("listoffers", {"active_only": True})
    assert [o["offer_id"] for o in offers["offers"]] == [offer["offer_id"]]
    theirs = await n1.call(
        "fetchinvoice", {"offer": offer["bolt12"], "amount_msat": 9000}
    )
    await n1.call("xpay", {"invstring": theirs["invoice"]})
    by_offer = await call("listinvoices", {"offer_id": offer["offer_id"]})
    assert by_offer["invoices"][0]["status"] == "paid"
    assert by_offer["invoices"][0]["amount_received_msat"] == 9000
    assert (await call("listoffers", {"offer_id": offer["offer_id"]}))["offers"][0][
        "used"
    ] is True

    # Runes.
    restricted = await call(
        "createrune", {"restrictions": [["method=getinfo", "method^list"]]}
    )
    assert "warning_unrestricted_rune" not in restricted
    plain = await call("createrune", {})
    assert "warning_unrestricted_rune" in plain
    assert plain["unique_id"] != restricted["unique_id"]
    ok = await call("checkrune", {"rune": restricted["rune"], "method": "listpays"})
    assert ok == {"valid": True}
    decoded_rune = await call("decode", {"string": restricted["rune"]})
    assert decoded_rune["type"] == "rune"
    assert decoded_rune["restrictions"][0]["alternatives"] == [
        "method=getinfo",
        "method^list",
    ]


async def test_every_method_over_unix_socket_validates(net: LightningSim) -> None:
    seen: dict[str, int] = {}
    await exercise_every_method(net, socket_caller(net.rpc_socket, seen))
    assert sorted(seen) == sorted(METHODS)


async def test_every_method_over_clnrest_validates(rest_net: LightningSim) -> None:
    seen: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        await exercise_every_method(rest_net, rest_caller(session, rest_net, seen))
    assert sorted(seen) == sorted(METHODS)


async def test_positional_params_and_unknown_method(net: LightningSim) -> None:
    call = socket_caller(net.rpc_socket)
    inv = await call("invoice", [1000, "pos", "positional"])
    assert (await call("decode", [inv["bolt11"]]))["amount_msat"] == 1000
    rpc = LightningRpc(net.rpc_socket)
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "frobnicate", {})
    assert err.value.error["code"] == -32601
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "invoice", {"amount_msat": 1, "label": "x"})
    assert err.value.error["code"] == -32602
    assert "description" in err.value.error["message"]
    # pyln's own wrapper methods send the same thing.
    info = await asyncio.to_thread(rpc.getinfo)
    validate_response("getinfo", info)


# ---- payments ------------------------------------------------------------------


async def test_payment_moves_balances_and_charges_fee(net: LightningSim) -> None:
    call = socket_caller(net.rpc_socket)
    n1 = net.neighbours[0]
    total = net.network.total_msat()
    ours_before = net.balance_msat(net.ours, net.router)
    n1_before = net.balance_msat(n1, net.router)
    inv = await n1.call(
        "invoice", {"amount_msat": 1_234_567, "label": "kwh", "description": "kWh"}
    )
    result = await call("xpay", {"invstring": inv["bolt11"]})
    fee = 1000 + 1_234_567 * 10 // 1_000_000  # the router's 1 sat + 10 ppm
    assert result["amount_sent_msat"] == 1_234_567 + fee
    assert net.balance_msat(net.ours, net.router) == ours_before - 1_234_567 - fee
    assert net.balance_msat(n1, net.router) == n1_before + 1_234_567
    assert net.router.fees_collected_msat == fee
    assert net.network.total_msat() == total
    assert net.received_msat(n1) == 1_234_567
    router_info = await net.router.call("getinfo", {})
    assert router_info["fees_collected_msat"] == fee
    listed = await n1.call("listinvoices", {"label": "kwh"})
    assert listed["invoices"][0]["status"] == "paid"
    chans = await call("listpeerchannels", {})
    assert chans["channels"][0]["to_us_msat"] == ours_before - 1_234_567 - fee
    # Paying the same invoice again: pay returns the earlier success, xpay refuses.
    rpc = LightningRpc(net.rpc_socket)
    again = await asyncio.to_thread(rpc.call, "pay", {"bolt11": inv["bolt11"]})
    assert again["payment_preimage"] == result["payment_preimage"]
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})
    assert err.value.error["code"] == 219
    assert net.received_msat(n1) == 1_234_567


async def test_amountless_invoice_and_maxfee(net: LightningSim) -> None:
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    inv = await n1.call(
        "invoice", {"amount_msat": "any", "label": "z", "description": "d"}
    )
    assert inv["bolt11"].startswith("lnbcrt1")
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})
    assert err.value.error["code"] == -32602
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call,
            "xpay",
            {"invstring": inv["bolt11"], "amount_msat": 5000, "maxfee": 10},
        )
    assert err.value.error["code"] == 205
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call,
            "pay",
            {"bolt11": inv["bolt11"], "amount_msat": 5000, "maxfee": 10},
        )
    assert err.value.error["code"] == 206
    ok = await asyncio.to_thread(
        rpc.call, "xpay", {"invstring": inv["bolt11"], "amount_msat": "5sat"}
    )
    assert ok["amount_msat"] == 5000


async def test_duplicate_label_and_preimage(net: LightningSim) -> None:
    rpc = LightningRpc(net.rpc_socket)
    params = {"amount_msat": 1, "label": "dup", "description": "d"}
    await asyncio.to_thread(rpc.call, "invoice", params)
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "invoice", params)
    assert err.value.error["code"] == 900


async def test_neighbour_socket_speaks_too(net: LightningSim) -> None:
    n2 = net.neighbours[1]
    call = socket_caller(n2.rpc_socket)
    info = await call("getinfo", {})
    assert info["id"] == n2.node_id
    offers = await call("listoffers", {})
    assert offers["offers"][0]["bolt12"] == n2.offer


# ---- decode --------------------------------------------------------------------


def test_invoice_strings_are_deterministic_and_carry_their_fields() -> None:
    fields = {
        "currency": "bcrt",
        "payee": "02" + "11" * 32,
        "payment_hash": "22" * 32,
        "payment_secret": "33" * 32,
        "amount_msat": 150_000_000,
        "description": "kWh ☀",
        "created_at": 1_800_000_000,
        "expiry": 3600,
    }
    one, two = Bolt11(**fields).encode(), Bolt11(**fields).encode()  # type: ignore[arg-type]
    assert one == two
    assert one.startswith("lnbcrt1500u1")
    back = decode_bolt11(one)
    assert back == Bolt11(**fields)  # type: ignore[arg-type]
    other = Bolt11(**(fields | {"amount_msat": 1}))  # type: ignore[arg-type]
    assert other.encode().startswith("lnbcrt10p1")
    assert bech32_decode(one)[0] == "lnbcrt1500u"


async def test_decode_rejects_garbage(net: LightningSim) -> None:
    rpc = LightningRpc(net.rpc_socket)
    inv = await net.neighbours[0].call(
        "invoice", {"amount_msat": 1000, "label": "g", "description": "d"}
    )
    good = inv["bolt11"]
    flipped = good[:-10] + ("q" if good[-10] != "q" else "p") + good[-9:]
    for garbage in [
        "garbage",
        "lnbcrt1qqqqqq",
        flipped,
        "lno1" + "x" * 20,
        "lni1qqqq",
        good.replace("lnbcrt", "lnbc", 1),
    ]:
        with pytest.raises(RpcError) as err:
            await asyncio.to_thread(rpc.call, "decode", {"string": garbage})
        assert err.value.error["code"] == -32602, garbage
        assert "invalid token" in err.value.error["message"]


# ---- faults --------------------------------------------------------------------


async def test_no_route(net: LightningSim) -> None:
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    inv = await n1.call(
        "invoice", {"amount_msat": 1000, "label": "r", "description": "d"}
    )
    net.set_no_route(to=n1.node_id)
    for method, key in (("pay", "bolt11"), ("xpay", "invstring")):
        with pytest.raises(RpcError) as err:
            await asyncio.to_thread(rpc.call, method, {key: inv["bolt11"]})
        assert err.value.error["code"] == 205
    # Core Lightning v26.06 on regtest: keysend (the pay plugin) gives up with
    # 210 "Ran out of routes…", xkeysend (xpay) with 205.
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call, "keysend", {"destination": n1.node_id, "amount_msat": 1000}
        )
    assert err.value.error["code"] == 210
    assert err.value.error["message"].startswith("Ran out of routes")
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call, "xkeysend", {"destination": n1.node_id, "amount_msat": 1000}
        )
    assert err.value.error["code"] == 205
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call, "fetchinvoice", {"offer": n1.offer, "amount_msat": 1}
        )
    assert err.value.error["code"] == 1003
    assert (await asyncio.to_thread(rpc.call, "listpays"))["pays"] == []
    net.clear_faults()
    # Real lack of liquidity: more than the router can pass on to neighbour 1.
    big = await n1.call(
        "invoice", {"amount_msat": 1_500_000_000, "label": "big", "description": "d"}
    )
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "xpay", {"invstring": big["bolt11"]})
    assert err.value.error["code"] == 205
    await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})


async def test_payment_timeout(net: LightningSim) -> None:
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    net.set_payment_timeout(after_s=0.05)
    inv = await n1.call(
        "invoice", {"amount_msat": 1000, "label": "t", "description": "d"}
    )
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "pay", {"bolt11": inv["bolt11"]})
    assert err.value.error["code"] == 210
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})
    assert err.value.error["code"] == 209
    pays = await asyncio.to_thread(
        rpc.call, "listpays", {"payment_hash": inv["payment_hash"]}
    )
    validate_response("listpays", pays)
    assert [p["status"] for p in pays["pays"]] == ["failed", "failed"]
    assert net.received_msat(n1) == 0
    net.clear_faults()
    await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})
    assert net.received_msat(n1) == 1000


async def wait_until_back(rpc: LightningRpc, within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            await asyncio.to_thread(rpc.call, "getinfo")
            return
        except OSError, RpcError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("outcome", ["completed", "failed"])
async def test_restart_mid_payment_over_socket(net: LightningSim, outcome: str) -> None:
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    inv = await n1.call(
        "invoice", {"amount_msat": 4000, "label": "c", "description": "d"}
    )
    net.restart_mid_payment(outcome, downtime_s=0.3)  # type: ignore[arg-type]
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call, "xpay", {"invstring": inv["bolt11"], "label": "n1:7"}
        )
    assert err.value.error == "Connection to RPC server lost."
    # While "restarting", the socket is gone.
    with pytest.raises(OSError):
        await asyncio.to_thread(rpc.call, "getinfo")
    await wait_until_back(rpc)
    pays = await asyncio.to_thread(
        rpc.call, "listpays", {"payment_hash": inv["payment_hash"]}
    )
    validate_response("listpays", pays)
    assert [(p["label"], p["status"]) for p in pays["pays"]] == [
        ("n1:7", "complete" if outcome == "completed" else "failed")
    ]
    assert net.received_msat(n1) == (4000 if outcome == "completed" else 0)
    status = (await n1.call("listinvoices", {"label": "c"}))["invoices"][0]["status"]
    assert status == ("paid" if outcome == "completed" else "unpaid")


async def test_restart_mid_payment_over_rest(rest_net: LightningSim) -> None:
    n1 = rest_net.neighbours[0]
    inv = await n1.call(
        "invoice", {"amount_msat": 4000, "label": "c", "description": "d"}
    )
    rest_net.restart_mid_payment("completed", downtime_s=0.2)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await rest_post(
                session,
                rest_net,
                "xpay",
                {"invstring": inv["bolt11"]},
                rune=rest_net.rune,
            )
        await asyncio.sleep(0.4)
        status, pays = await rest_post(
            session,
            rest_net,
            "listpays",
            {"payment_hash": inv["payment_hash"]},
            rune=rest_net.rune,
        )
    assert status == 201
    assert [p["status"] for p in pays["pays"]] == ["complete"]


async def test_runes_checked_by_clnrest(rest_net: LightningSim) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await rest_post(session, rest_net, "getinfo")
        assert (status, body["code"]) == (403, 1501)
        assert body["message"] == "Not authorized: Missing rune"
        status, body = await rest_post(session, rest_net, "getinfo", rune="AAAA" * 12)
        assert (status, body["code"]) == (401, 1501)
        _, made = await rest_post(
            session,
            rest_net,
            "createrune",
            {"restrictions": [["method=getinfo"]]},
            rune=rest_net.rune,
        )
        status, body = await rest_post(session, rest_net, "getinfo", rune=made["rune"])
        assert status == 201
        validate_response("getinfo", body)
        status, body = await rest_post(
            session, rest_net, "xpay", {"invstring": "x"}, rune=made["rune"]
        )
        assert (status, body["code"]) == (401, 1502)
        assert body["message"] == "Not permitted: method is not equal to getinfo"
        # A rune for "not getinfo" refuses getinfo with CLN's wording.
        _, notinfo = await rest_post(
            session,
            rest_net,
            "createrune",
            {"restrictions": [["method/getinfo"]]},
            rune=rest_net.rune,
        )
        status, body = await rest_post(
            session, rest_net, "getinfo", rune=notinfo["rune"]
        )
        assert body == {
            "code": 1502,
            "message": "Not permitted: method is equal to getinfo",
        }
        # Tampering with the restrictions breaks the authcode.
        raw = made["rune"]
        tampered = raw[:-4] + ("AAAA" if raw[-4:] != "AAAA" else "BBBB")
        status, body = await rest_post(session, rest_net, "getinfo", rune=tampered)
        assert status == 401
        # Fault knobs: blacklist, reject everything.
        rest_net.blacklist_rune(made["unique_id"])
        status, body = await rest_post(session, rest_net, "getinfo", rune=made["rune"])
        assert (status, body["code"]) == (401, 1503)
        rest_net.reject_runes()
        status, body = await rest_post(session, rest_net, "getinfo", rune=rest_net.rune)
        assert (status, body["code"]) == (401, 1501)
        rest_net.clear_faults()
        status, body = await rest_post(session, rest_net, "getinfo", rune=rest_net.rune)
        assert status == 201
        # Unknown methods and failing methods.
        status, body = await rest_post(
            session, rest_net, "frobnicate", rune=rest_net.rune
        )
        assert (status, body["code"]) == (404, -32601)
        status, body = await rest_post(
            session, rest_net, "decode", {"string": "nope"}, rune=rest_net.rune
        )
        assert (status, body["code"]) == (500, -32602)


async def test_certificate_fingerprint_pins(
    rest_net: LightningSim, tolerate_failed_handshakes: None
) -> None:
    good = aiohttp.Fingerprint(bytes.fromhex(rest_net.cert_fingerprint))
    bad = aiohttp.Fingerprint(hashlib.sha256(b"other").digest())
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{rest_net.rest_url}/v1/getinfo",
            json={},
            headers={"Rune": rest_net.rune},
            ssl=good,
        ) as resp:
            assert resp.status == 201
        with pytest.raises(aiohttp.ServerFingerprintMismatch):
            await session.post(f"{rest_net.rest_url}/v1/getinfo", json={}, ssl=bad)
        # The default verification refuses the self-signed certificate.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.post(f"{rest_net.rest_url}/v1/getinfo", json={})


# ---- following incoming payments ------------------------------------------------


async def test_waitanyinvoice_and_wait_follow_incoming(net: LightningSim) -> None:
    call = socket_caller(net.rpc_socket)
    n2 = net.neighbours[1]
    with pytest.raises(RpcError) as err:
        await call("waitanyinvoice", {"lastpay_index": 0, "timeout": 0})
    assert err.value.error["code"] == 904
    inv = await call("invoice", {"amount_msat": 777, "label": "w", "description": "d"})
    waiting = asyncio.ensure_future(call("waitanyinvoice", {"lastpay_index": 0}))
    waiting_updated = asyncio.ensure_future(call("wait", ["invoices", "updated", 1]))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await n2.call("xpay", {"invstring": inv["bolt11"]})
    got = await asyncio.wait_for(waiting, 5)
    assert (got["label"], got["pay_index"]) == ("w", 1)
    upd = await asyncio.wait_for(waiting_updated, 5)
    assert upd == {
        "subsystem": "invoices",
        "updated": 1,
        "invoices": {
            "status": "paid",
            "label": "w",
            "description": "d",
            "bolt11": inv["bolt11"],
        },
    }
    # Keysend to us shows up as a paid invoice too.
    await n2.call("keysend", {"destination": net.node_id, "amount_msat": 5000})
    nxt = await call("waitanyinvoice", {"lastpay_index": 1, "timeout": 5})
    assert nxt["label"].startswith("keysend-")
    assert nxt["amount_received_msat"] == 5000


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simulators.lightning", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--rpc-socket" in out.stdout
    assert "--rest-port" in out.stdout
    assert "--neighbours" in out.stdout


# ---- what a real lightningd v26.06 does (DESIGN.md, "Real-world facts") -------------


async def test_keysend_is_deprecated_when_deprecated_apis_are_off(
    net: LightningSim,
) -> None:
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    net.ours.allow_deprecated_apis = False
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(
            rpc.call, "keysend", {"destination": n1.node_id, "amount_msat": 1000}
        )
    assert err.value.error == {
        "code": -32601,
        "message": 'Command "keysend" is deprecated',
    }
    paid = await asyncio.to_thread(
        rpc.call,
        "xkeysend",
        {"destination": n1.node_id, "amount_msat": 1000, "label": "x", "maxfee": 5000},
    )
    assert paid["amount_msat"] == 1000
    assert [p["label"] for p in (await net.ours.call("listpays"))["pays"]] == ["x"]


async def test_xpay_answers_already_paid_and_garbage_as_cln_does(
    net: LightningSim,
) -> None:
    rpc = LightningRpc(net.rpc_socket)
    n1 = net.neighbours[0]
    inv = await n1.call(
        "invoice", {"amount_msat": 1000, "label": "r", "description": "d"}
    )
    await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "xpay", {"invstring": inv["bolt11"]})
    assert err.value.error["code"] == 219
    assert err.value.error["message"] == "Already paid this invoice successfully"
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(rpc.call, "xpay", {"invstring": "lnbcrt1garbage"})
    assert err.value.error["code"] == -32602
    info = await asyncio.to_thread(rpc.call, "getinfo")
    assert {"type": "ipv4", "address": "127.0.0.1", "port": 9735} in info["binding"]


async def test_runes_enforce_per_rate_time_and_both_pname_spellings(
    net: LightningSim,
) -> None:
    ours = net.ours
    now = int(time.time())

    async def rune(*restrictions: str) -> str:
        made = await ours.call(
            "createrune", {"restrictions": [[r] for r in restrictions]}
        )
        return str(made["rune"])

    async def check(text: str, method: str = "getinfo", **params: Any) -> None:
        await ours.call("checkrune", {"rune": text, "method": method, "params": params})

    per = await rune("per=2sec")
    await check(per)
    with pytest.raises(RpcFault) as err:
        await check(per)  # a poll's second call, at once
    assert (err.value.code, err.value.message) == (1502, "Not permitted: Too soon")
    rate = await rune("rate=2")
    await check(rate)
    await check(rate)
    with pytest.raises(RpcFault) as err:
        await check(rate)
    assert "Rate of 2 per minute exceeded" in err.value.message
    expired = await rune(f"time<{now - 10}")
    with pytest.raises(RpcFault):
        await check(expired)
    await check(await rune(f"time<{now + 3600}"))
    for spelling in ("pnameamount_msat<1001", "pnameamountmsat<1001"):
        capped = await rune(spelling)
        await check(capped, "xpay", amount_msat=1000)
        with pytest.raises(RpcFault):
            await check(capped, "xpay", amount_msat=5000)
