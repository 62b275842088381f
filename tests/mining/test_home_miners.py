"""HashGrid's client on the miners people own at home (real pyasic, simulators).

Avalon Nano 3S and Avalon Q (Canaan's cgminer), Whatsminer (btminer API
2.0.5), AxeOS 2.14 (pause/resume): identified, polled, stopped and resumed,
given a power target or a work mode, and which kept-alive transports carry
them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import time

import pytest

from custom_components.hashgrid.mining import transport
from custom_components.hashgrid.mining.client import (
    identify,
)
from custom_components.hashgrid.mining.errors import (
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from simulators.miner import Fleet, running_fleet
from tests.conftest import ManualClock
from tests.net import addr

from .conftest import connect

BASE = addr("7.101")
NANO, Q, WHATSMINER, AXEOS = 0, 1, 2, 3


@pytest.fixture
async def home(loopback: None, clock: ManualClock) -> AsyncIterator[Fleet]:
    """Avalon Nano 3S, Avalon Q, Whatsminer M30S+, Bitaxe on AxeOS 2.14."""
    async with running_fleet(
        4, BASE, ("avalon_nano3s", "avalon_q", "whatsminer", "bitaxe"), clock=clock
    ) as running:
        running.miners[AXEOS].personality.version = "v2.14.0"
        yield running


# ---- identify --------------------------------------------------------------------


async def test_identify_each(home: Fleet) -> None:
    nano = await identify(home.miners[NANO].ip)
    assert (nano.make, nano.model) == ("AvalonMiner", "AvalonMiner Avalon Nano 3s")
    assert nano.unique_id == home.miners[NANO].mac  # pyasic reads no Avalon serial
    assert nano.can_stop is True  # soft off/on
    assert nano.can_set_power is True  # as work modes
    assert [(m.name, m.power_w) for m in nano.work_modes] == [
        ("low", 70),
        ("medium", 100),
        ("high", 140),
    ]
    assert (nano.min_power_w, nano.max_power_w) == (70, 140)
    q = await identify(home.miners[Q].ip)
    assert q.model == "AvalonMiner Avalon Q Home"
    assert (q.min_power_w, q.max_power_w) == (800, 1674)
    wm = await identify(home.miners[WHATSMINER].ip)
    assert (wm.make, wm.model) == ("WhatsMiner", "WhatsMiner M30S+ VE40")
    assert wm.unique_id == home.miners[WHATSMINER].serial
    assert (wm.can_stop, wm.can_set_power) == (True, True)
    assert [m.name for m in wm.work_modes] == ["low", "normal", "high"]
    assert wm.power_by_mode is False  # power modes beside a power limit
    axe = await identify(home.miners[AXEOS].ip)
    assert axe.can_stop is True  # 2.14 reports miningPaused
    home.miners[AXEOS].personality.version = "v2.6.1"
    assert (await identify(home.miners[AXEOS].ip)).can_stop is False


# ---- poll and command ------------------------------------------------------------


async def test_avalon_soft_off_on_is_seen_at_once(
    home: Fleet, clock: ManualClock
) -> None:
    sim = home.miners[NANO]
    client = await connect(sim.ip)
    reading = await client.poll()
    assert (reading.power_w, reading.hashrate_ths) == (140, 6.0)
    assert (reading.work_mode, reading.power_target_w) == ("high", 140)
    assert reading.is_mining is True
    # Soft off now by the miner's clock (pyasic's own waits 5 s: unverifiable).
    assert await client.stop() is True
    assert sim.mining is False
    clock.now += 20
    reading = await client.poll(state_only=True)
    assert reading.is_mining is False
    assert reading.power_w == 6
    assert await client.resume() is True
    assert sim.mining is True


async def test_avalon_work_modes_are_power_steps(
    home: Fleet, clock: ManualClock
) -> None:
    sim = home.miners[Q]
    client = await connect(sim.ip)
    assert await client.set_work_mode("medium") is True
    assert sim.power_target_w == 1300
    clock.now += 20
    reading = await client.poll()
    assert (reading.work_mode, reading.power_target_w, reading.power_w) == (
        "medium",
        1300,
        1300,
    )
    # A power target: the highest mode at or below it.
    assert await client.set_power_target(1000) is True
    assert sim.power_target_w == 800
    assert (await client.poll()).work_mode == "low"
    assert await client.set_power_target(500) is False  # below every mode
    assert await client.set_work_mode("turbo") is False
    assert sim.power_target_w == 800


async def test_whatsminer_commands(home: Fleet, clock: ManualClock) -> None:
    sim = home.miners[WHATSMINER]
    client = await connect(sim.ip, password="admin")
    reading = await client.poll()
    assert (reading.power_w, reading.is_mining) == (3400, True)
    assert await client.stop() is True  # verified by `status`
    assert sim.mining is False
    assert await client.resume() is True
    assert sim.mining is True
    assert await client.set_power_target(2500) is True
    clock.now += 20
    reading = await client.poll()
    assert (reading.power_target_w, reading.power_w) == (2500, 2500)
    # Another password (set with WhatsminerTool): our token is refused.
    sim.personality.password = "s3cret"
    with pytest.raises(InvalidAuth):
        await client.stop()
    assert sim.mining is True
    other = await connect(sim.ip, password="s3cret")
    assert await other.stop() is True
    assert sim.mining is False


async def test_axeos_pause_and_resume(home: Fleet, clock: ManualClock) -> None:
    sim = home.miners[AXEOS]
    client = await connect(sim.ip)
    assert await client.stop() is True  # verified: miningPaused
    assert sim.mining is False
    clock.now += 20
    reading = await client.poll()
    assert reading.is_mining is False
    assert reading.hashrate_ths == 0
    assert await client.resume() is True
    assert (await client.poll()).is_mining is True
    sim.ignore_commands = True
    assert await client.stop() is False  # acknowledged, still mining: refused
    assert sim.mining is True


# ---- the kept-alive transports -----------------------------------------------------


async def test_axeos_pause_goes_through_the_kept_alive_session(home: Fleet) -> None:
    sim = home.miners[AXEOS]
    client = await connect(sim.ip)
    assert isinstance(client._miner.web, transport.KeptAliveESPMinerWebAPI)
    await client.poll()
    connections, requests = sim.http_connections, sim.http_requests
    assert await client.stop() is True
    assert await client.resume() is True
    await client.poll()
    # Pause, read-back, resume, read-back, poll: one kept-alive connection.
    assert sim.http_requests >= requests + 5
    assert sim.http_connections == connections


@pytest.mark.parametrize("index", [NANO, Q, WHATSMINER])
async def test_rpc_makes_use_the_lean_bounded_exchange(home: Fleet, index: int) -> None:
    """Avalon and Whatsminer: every request, the encrypted writes too, goes
    through the bounded one-exchange transport; their web APIs are not used."""
    sim = home.miners[index]
    client = await connect(sim.ip)
    rpc = client._miner.rpc
    assert "_send_bytes" in vars(rpc)  # swapped in by transport.keep_alive
    assert not isinstance(client._miner.web, transport._KeptAliveWeb)
    http = sim.http_requests
    assert await client.stop() is True
    assert await client.resume() is True
    await client.poll()
    assert sim.http_requests == http  # RPC only
    # Bounded: a flooding miner is cut off at once, for reads and writes.
    sim.flood = True
    started = time.monotonic()
    with pytest.raises(InvalidResponse):
        await client.poll()
    with pytest.raises(InvalidResponse):
        await client.stop()
    assert time.monotonic() - started < 3.0
    sim.flood = False
    # Counted: a miner gone reads as unreachable, not as an empty reply.
    sim.unreachable = True
    with pytest.raises(CannotConnect):
        await client.poll()
    with pytest.raises(CannotConnect):
        await client.resume()
