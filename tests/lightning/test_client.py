"""The HA-free node client and listener against the simulated node (both transports)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_socket

from custom_components.hashgrid.lightning.client import (
    NodeClient,
    RestClient,
    SocketClient,
    normalize_fingerprint,
)
from custom_components.hashgrid.lightning.errors import (
    CannotConnect,
    CertificateMismatch,
    ConnectionLost,
    RpcError,
    RuneRejected,
)
from custom_components.hashgrid.lightning.listener import InvoiceListener
from simulators.lightning import LightningSim, running_lightning


@pytest.fixture
async def sim(socket_enabled: None, tmp_path: Any) -> AsyncIterator[LightningSim]:
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    async with running_lightning(tmp_path, neighbours=1, rest_port=0) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture(params=["socket", "rest"])
def client(
    request: pytest.FixtureRequest, sim: LightningSim, session: aiohttp.ClientSession
) -> Iterator[NodeClient]:
    if request.param == "socket":
        yield SocketClient(sim.rpc_socket)
    else:
        yield RestClient(session, sim.rest_url, sim.rune, sim.cert_fingerprint)


async def test_calls_and_rpc_errors(client: NodeClient, sim: LightningSim) -> None:
    assert (await client.getinfo())["id"] == sim.node_id
    with pytest.raises(RpcError) as err:
        await client.decode("garbage")
    assert err.value.code == -32602
    assert await client.wait_invoice_paid(0, 0) is None
    inv = await client.call(
        "invoice", {"amount_msat": 1000, "label": "l", "description": "d"}
    )
    await sim.neighbours[0].call("xpay", {"invstring": inv["bolt11"]})
    paid = await client.wait_invoice_paid(0, 5)
    assert paid is not None
    assert paid["label"] == "l"


async def test_connection_lost_mid_payment(
    client: NodeClient, sim: LightningSim
) -> None:
    inv = await sim.neighbours[0].call(
        "invoice", {"amount_msat": 1000, "label": "l", "description": "d"}
    )
    sim.restart_mid_payment("completed", downtime_s=0.2)
    with pytest.raises(ConnectionLost):
        await client.call("xpay", {"invstring": inv["bolt11"], "label": "k"})
    with pytest.raises(CannotConnect):
        await client.getinfo()
    await asyncio.sleep(0.3)
    assert [p["label"] for p in await client.listpays()] == ["k"]


async def test_rest_errors(
    sim: LightningSim,
    session: aiohttp.ClientSession,
    tolerate_failed_handshakes: None,
) -> None:
    with pytest.raises(RuneRejected) as err:
        await RestClient(
            session, sim.rest_url, "AAAA" * 12, sim.cert_fingerprint
        ).getinfo()
    assert err.value.code == 1501
    with pytest.raises(CertificateMismatch):
        await RestClient(session, sim.rest_url, sim.rune, "00" * 32).getinfo()
    with pytest.raises(CertificateMismatch):
        await RestClient(session, sim.rest_url, sim.rune).getinfo()
    with pytest.raises(CannotConnect):
        await RestClient(session, "https://127.0.0.1:1", sim.rune).getinfo()
    sim.reject_runes()
    with pytest.raises(RuneRejected):
        await RestClient(
            session, sim.rest_url, sim.rune, sim.cert_fingerprint
        ).getinfo()


async def test_socket_missing(sim: LightningSim, tmp_path: Any) -> None:
    with pytest.raises(CannotConnect):
        await SocketClient(str(tmp_path / "nothing")).getinfo()


def test_fingerprints() -> None:
    assert normalize_fingerprint(None) is None
    assert normalize_fingerprint(" AB:" + "cd" * 31 + " ") == "ab" + "cd" * 31
    with pytest.raises(ValueError):
        normalize_fingerprint("abc")


async def test_listener_backs_off_and_resumes(sim: LightningSim) -> None:
    seen: list[dict[str, Any]] = []
    client = SocketClient(sim.rpc_socket)
    listener = InvoiceListener(
        client, seen.append, wait_timeout_s=1, backoff_s=0.02, backoff_max_s=0.1
    )
    await listener.async_prime()
    task = asyncio.ensure_future(listener.run())
    try:
        n1 = sim.neighbours[0]
        await sim.ours.simulate_restart(0.2)
        inv = await client.call(
            "invoice", {"amount_msat": 1000, "label": "a", "description": "d"}
        )
        await n1.call("xpay", {"invstring": inv["bolt11"]})
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert [i["label"] for i in seen] == ["a"]
        assert listener.errors >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # The thread still waiting in waitanyinvoice returns within 1 s.
        await asyncio.sleep(1.1)
