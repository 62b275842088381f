"""Braiins OS+ (BOSer), driven by the real pyasic: identified, read, commanded."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
import statistics
import time

from grpclib import GRPCError, Status
import pyasic
from pyasic import APIError
from pyasic.device.algorithm import SHA256Unit
from pyasic.miners.backends import BOSer
from pyasic.miners.data import DataOptions
from pyasic.web.braiins_os import BOSerWebAPI
import pytest

from simulators.miner import Fleet, SimulatedMiner, running_fleet
from simulators.miner.braiins import BraiinsOS, decode, encode
from tests.conftest import ManualClock
from tests.net import addr

from .test_miner_sim import rpc

BASE = addr("3.140")
# What HashGrid reads in a poll (pyasic's own `config` is not simulated).
READ = [
    DataOptions.MAC,
    DataOptions.SERIAL_NUMBER,
    DataOptions.FW_VERSION,
    DataOptions.HASHRATE,
    DataOptions.EXPECTED_HASHRATE,
    DataOptions.HASHBOARDS,
    DataOptions.WATTAGE,
    DataOptions.WATTAGE_LIMIT,
    DataOptions.FANS,
    DataOptions.UPTIME,
    DataOptions.POOLS,
    DataOptions.ERRORS,
    DataOptions.IS_MINING,
]


@pytest.fixture
async def fleet(loopback: None, clock: ManualClock) -> AsyncIterator[Fleet]:
    async with running_fleet(1, BASE, ("braiins",), clock=clock) as running:
        yield running


def bos(sim: SimulatedMiner) -> BraiinsOS:
    assert isinstance(sim.personality, BraiinsOS)
    return sim.personality


def ths(hashrate: object) -> float:
    return float(hashrate.into(SHA256Unit.TH))  # type: ignore[attr-defined]


def test_wire_codec_round_trip() -> None:
    message = encode([(1, "root"), (2, [(1, 3050)]), (3, 1.5), (4, True), (5, None)])
    fields = decode(message)
    assert fields[1] == b"root"
    assert decode(fields[2]) == {1: 3050}
    assert fields[4] == 1
    assert 5 not in fields


async def test_pyasic_identifies_braiins_os(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    # Both of pyasic's probes say Braiins OS: the page and the RPC `version`.
    assert "BOSer" in json.loads(await rpc(sim.ip, "version"))["VERSION"][0]
    miner = await pyasic.get_miner(sim.ip)
    assert type(miner).__name__ == "BOSMinerS19jPro"
    assert isinstance(miner, BOSer)
    assert isinstance(miner.web, BOSerWebAPI)
    assert str(miner.raw_model) == "S19j Pro"
    assert str(miner.firmware) == "BOS+"


async def test_pyasic_reads_braiins_os(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    miner = await pyasic.get_miner(sim.ip)
    data = await miner.get_data(include=READ)
    physics = sim.physics
    assert ths(data.hashrate) == pytest.approx(145.0)
    assert ths(data.expected_hashrate) == pytest.approx(145.0)
    assert data.wattage == 3050
    assert data.wattage_limit == 3050
    assert data.mac == sim.mac.upper()
    assert data.serial_number == sim.serial
    assert data.fw_ver == "26.05"
    assert data.is_mining is True
    assert data.errors == []
    assert [f.speed for f in data.fans] == physics.fan_rpms()
    assert [b.temp for b in data.hashboards] == [
        int(t) for t in physics.board_temps_c()
    ]
    assert [b.chip_temp for b in data.hashboards] == [
        int(t) for t in physics.chip_temps_c()
    ]
    assert {b.chips for b in data.hashboards} == {126}
    assert sum(ths(b.hashrate) for b in data.hashboards) == pytest.approx(145.0)
    assert data.pools[0].user == f"hashgrid.{sim.hostname}"
    # Every privileged gRPC call carried a token (pyasic logs in once per
    # concurrent call: its token is cached only after the first login).
    assert bos(sim).logins >= 1
    assert bos(sim).refused == 0


async def test_pyasic_pauses_resumes_and_sets_the_power_target(
    fleet: Fleet, clock: ManualClock
) -> None:
    sim = fleet.miners[0]
    miner = await pyasic.get_miner(sim.ip)
    assert await miner.stop_mining() is True
    assert sim.mining is False
    assert await miner.is_mining() is False
    clock.now += 30
    assert (await miner.get_data(include=READ)).wattage == 15
    assert await miner.resume_mining() is True
    assert sim.mining is True
    assert await miner.set_power_limit(2500) is True
    assert sim.power_target_w == 2500
    assert await miner.get_wattage_limit() == 2500
    # Outside the tuner's range: refused (INVALID_ARGUMENT), nothing changes.
    assert await miner.set_power_limit(500) is False
    assert sim.power_target_w == 2500


async def test_a_wrong_password_is_refused(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    web = BOSerWebAPI(sim.ip)
    web.pwd = "wrong"
    # pyasic logs in outside its own error handling: the gRPC error escapes.
    with pytest.raises(GRPCError) as refused:
        await web.pause_mining()
    assert refused.value.status is Status.UNAUTHENTICATED
    assert sim.mining is True
    # The API version needs no login.
    assert (await web.get_api_version())["minor"] == 11
    # A reboot forgets the tokens: pyasic logs in again when refused.
    web.pwd = "root"
    await web.get_miner_details()
    logins, refused = bos(sim).logins, bos(sim).refused
    sim.reboot()
    await web.get_miner_details()
    assert bos(sim).logins == logins + 1
    assert bos(sim).refused == refused + 1


async def test_a_new_password_ends_every_session(fleet: Fleet) -> None:
    """As Braiins' API answers a wrong login: UNAUTHENTICATED, "Bad credentials"
    (braiins/bos-plus-api#33); a new password voids the tokens given so far."""
    sim = fleet.miners[0]
    web = BOSerWebAPI(sim.ip)
    await web.get_miner_details()  # logged in with root/root
    sim.web_password = "n3w"
    # The token is refused, and so is the login pyasic tries again with.
    with pytest.raises(APIError) as refused:
        await web.get_miner_details()
    cause = refused.value.__cause__
    assert isinstance(cause, GRPCError)
    assert (cause.status, cause.message) == (Status.UNAUTHENTICATED, "Bad credentials")
    assert bos(sim).refused_logins == 1
    web.pwd = "n3w"
    assert (await web.get_miner_details())["serialNumber"] == sim.serial


async def test_a_grpc_call_is_not_held_by_nagle(fleet: Fleet) -> None:
    """The server's HTTP/2 headers and message go out at once (TCP_NODELAY):
    without it every call waited for the client's delayed ACK (~40 ms)."""
    sim = fleet.miners[0]
    web = BOSerWebAPI(sim.ip)
    await web.auth()
    took = []
    for _ in range(9):
        started = time.perf_counter()
        await web.get_miner_stats()
        took.append(time.perf_counter() - started)
    assert statistics.median(took) < 0.03, took
