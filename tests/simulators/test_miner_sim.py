"""The miner simulator, driven by the real pyasic over loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
import time

import aiohttp
import pyasic
from pyasic.device.algorithm import SHA256Unit
import pytest

from simulators.miner import S21, Fleet, MinerSpec, SimulatedMiner, running_fleet
from simulators.miner.model import MinerModel
from tests.conftest import ManualClock
from tests.net import addr

BASE = addr("3.1")


@pytest.fixture
async def fleet(loopback: None, clock: ManualClock) -> AsyncIterator[Fleet]:
    async with running_fleet(3, BASE, clock=clock) as running:
        yield running


def ths(hashrate: object) -> float:
    return float(hashrate.into(SHA256Unit.TH))  # type: ignore[attr-defined]


async def rpc(ip: str, command: str, parameter: str | None = None) -> bytes:
    """Send one raw API request and read the reply until the miner closes."""
    reader, writer = await asyncio.open_connection(ip, 4028)
    request = {"command": command} | ({"parameter": parameter} if parameter else {})
    writer.write(json.dumps(request).encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


# ---- the physical model, on a manual clock -----------------------------------


def test_model_ramps_and_counts_energy(clock: ManualClock) -> None:
    model = MinerModel(S21, clock, ramp_tau_s=1.5)
    assert model.power_w == pytest.approx(3500)
    assert model.hashrate_ths == pytest.approx(206)
    clock.now = 3600.0
    assert model.energy_wh == pytest.approx(3500, rel=1e-6)
    model.set_mining(False)
    assert model.hashrate_ths == 0
    clock.now += 1.5  # one time constant: 63 % of the way down
    assert model.power_w == pytest.approx(15 + (3500 - 15) * 0.3679, rel=1e-3)
    clock.now += 30
    assert model.power_w == pytest.approx(15, abs=0.01)
    assert model.fan_rpms()[0] < 1300
    model.set_mining(True)
    model.set_power_target(1750)
    clock.now += 30
    assert model.power_w == pytest.approx(1750, abs=0.01)
    # Underclocked, the miner is more efficient than nameplate (17 J/TH).
    assert 1750 / model.hashrate_ths < S21.efficiency_j_th
    model.reboot()
    assert model.uptime_s == 0
    assert model.power_w == 15


# ---- identification ------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "cls_name", "model"),
    [
        (0, "LUXMinerS19jPro", "S19j Pro"),
        (1, "BMMinerS21", "S21"),
        (2, "BitAxeGamma", "Gamma"),
    ],
)
async def test_pyasic_identifies_each_firmware(
    fleet: Fleet, index: int, cls_name: str, model: str
) -> None:
    miner = await pyasic.get_miner(fleet.miners[index].ip)
    assert type(miner).__name__ == cls_name
    assert str(miner.raw_model) == model


# ---- data ----------------------------------------------------------------------


async def test_luxos_get_data(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    data = await (await pyasic.get_miner(sim.ip)).get_data()
    assert ths(data.hashrate) == pytest.approx(145, rel=1e-3)
    assert data.wattage == 3050
    assert data.wattage_limit == 3050
    assert data.efficiency_fract == pytest.approx(21.0, abs=0.1)
    assert [round(b.temp) for b in data.hashboards] == [60, 61, 62]
    assert all(b.chip_temp > b.temp for b in data.hashboards)
    assert [f.speed for f in data.fans] == sim.physics.fan_rpms()
    assert data.fw_ver.startswith("2025.")
    assert data.pools[0].user == f"hashgrid.{sim.hostname}"
    assert str(data.firmware) == "LuxOS"


async def test_antminer_get_data(fleet: Fleet, clock: ManualClock) -> None:
    sim = fleet.miners[1]
    clock.now = 125.0
    data = await (await pyasic.get_miner(sim.ip)).get_data()
    assert ths(data.hashrate) == pytest.approx(206, rel=1e-3)
    assert data.mac == sim.mac.upper()
    assert data.serial_number == sim.serial
    assert data.hostname == sim.hostname
    assert data.uptime == 125
    assert data.is_mining is True
    assert len(data.hashboards) == 3
    assert {b.chips for b in data.hashboards} == {108}
    assert len(data.fans) == 4
    assert all(f.speed > 4000 for f in data.fans)
    assert data.errors == []
    # Stock firmware reports no power through pyasic.
    assert data.wattage is None


async def test_bitaxe_get_data(fleet: Fleet) -> None:
    sim = fleet.miners[2]
    data = await (await pyasic.get_miner(sim.ip)).get_data()
    assert ths(data.hashrate) == pytest.approx(1.0)
    assert data.wattage == 15
    assert data.mac == sim.mac.upper()
    assert data.fw_ver == "v2.6.1"
    assert data.hashboards[0].chip_temp == sim.physics.chip_temps_c()[0]
    assert [f.speed for f in data.fans] == sim.physics.fan_rpms()


# ---- commands ------------------------------------------------------------------


async def test_luxos_stop_resume_power_reboot(fleet: Fleet, clock: ManualClock) -> None:
    sim = fleet.miners[0]
    miner = await pyasic.get_miner(sim.ip)
    assert await miner.stop_mining() is True
    assert sim.mining is False
    clock.now += 20
    data = await miner.get_data()
    assert data.wattage == 15
    assert ths(data.hashrate) == 0
    assert await miner.resume_mining() is True
    assert sim.mining is True
    # The highest profile at or below 2000 W is 60 % of 3050 W.
    assert await miner.set_power_limit(2000) is True
    assert sim.power_target_w == 1830
    clock.now += 20
    data = await miner.get_data()
    assert data.wattage == 1830
    assert data.wattage_limit == 1830
    assert await miner.set_power_limit(1000) is False  # below every profile
    clock.now += 100
    assert await miner.reboot() is True
    assert sim.physics.uptime_s == 0
    assert sim.power_w == 15
    # A reboot ends the LuxOS session that pyasic cached.
    assert await miner.stop_mining() is False
    assert sim.mining is True


async def test_antminer_sleep_and_resume(fleet: Fleet, clock: ManualClock) -> None:
    sim = fleet.miners[1]
    miner = await pyasic.get_miner(sim.ip)
    assert await miner.stop_mining() is True
    assert sim.mining is False
    clock.now += 20
    assert await miner.is_mining() is False
    assert sim.power_w == pytest.approx(15, abs=0.1)
    assert await miner.resume_mining() is True
    assert await miner.is_mining() is True
    assert await miner.set_power_limit(2000) is False  # stock: no power target
    assert await miner.reboot() is True
    assert sim.physics.uptime_s == 0


async def test_bitaxe_cannot_stop(fleet: Fleet) -> None:
    sim = fleet.miners[2]
    miner = await pyasic.get_miner(sim.ip)
    assert await miner.stop_mining() is False
    assert sim.mining is True


# ---- faults --------------------------------------------------------------------


async def test_unreachable_refuses_then_recovers(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    sim.unreachable = True
    for port in (80, 4028):
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(sim.ip, port)
    assert await pyasic.get_miner(sim.ip) is None
    sim.unreachable = False
    assert b"LUXminer" in await rpc(sim.ip, "version")
    assert type(await pyasic.get_miner(sim.ip)).__name__ == "LUXMinerS19jPro"


async def test_slow_delays_replies(fleet: Fleet) -> None:
    sim = fleet.miners[2]
    sim.slow = 0.4
    miner = await pyasic.get_miner(sim.ip)
    started = time.monotonic()
    data = await miner.get_data()
    assert time.monotonic() - started >= 0.4
    assert data.wattage == 15
    started = time.monotonic()
    await rpc(fleet.miners[1].ip, "version")  # the others are not slowed
    assert time.monotonic() - started < 0.3


async def test_garbage_is_not_json(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    sim.garbage = True
    reply = await rpc(sim.ip, "version")
    with pytest.raises(ValueError):
        json.loads(reply)
    assert await pyasic.get_miner(sim.ip) is None
    sim.garbage = False
    assert json.loads(await rpc(sim.ip, "version"))["VERSION"][0]["Type"] == sim.model


async def test_lies_reach_pyasic(fleet: Fleet) -> None:
    """What pyasic reads is the lie: power, hashrate, serial, MAC, a preset."""
    lux, ant, axe = fleet.miners
    lux.lie.update(power_w=-5, serial=12345, mac="zz", preset_w=-50)
    axe.lie.update(power_w=1e308, hashrate_ths=2.0)
    ant.lie["serial"] = "HGSOTHER"
    data = await (await pyasic.get_miner(lux.ip)).get_data(include=["wattage"])
    assert data.wattage == -5
    config = json.loads(await rpc(lux.ip, "config"))["CONFIG"][0]
    assert (config["SerialNumber"], config["MACAddr"]) == (12345, "zz")
    profiles = json.loads(await rpc(lux.ip, "profiles"))["PROFILES"]
    assert profiles[0]["Watts"] == -50
    data = await (await pyasic.get_miner(axe.ip)).get_data(
        include=["wattage", "hashrate"]
    )
    assert data.wattage == 1e308
    assert ths(data.hashrate) == pytest.approx(2.0)
    data = await (await pyasic.get_miner(ant.ip)).get_data(include=["serial_number"])
    assert data.serial_number == "HGSOTHER"
    lux.lie["power_w"] = float("nan")
    assert b"NaN" in await rpc(lux.ip, "power")
    lux.lie.clear()
    assert json.loads(await rpc(lux.ip, "power"))["POWER"][0]["Watts"] > 0


async def test_flood_never_ends_until_the_client_hangs_up(fleet: Fleet) -> None:
    """RPC and HTTP: bytes keep coming as fast as they are read."""
    lux, _, axe = fleet.miners
    lux.flood = axe.flood = True
    reader, writer = await asyncio.open_connection(lux.ip, 4028)
    writer.write(b'{"command":"version"}')
    received = 0
    while received < 8 * 1024 * 1024:
        chunk = await reader.read(1 << 20)
        assert chunk
        received += len(chunk)
    writer.close()
    await writer.wait_closed()
    reader, writer = await asyncio.open_connection(axe.ip, 80)
    writer.write(f"GET /api/system/info HTTP/1.1\r\nHost: {axe.ip}\r\n\r\n".encode())
    received = 0
    while received < 8 * 1024 * 1024:
        chunk = await reader.read(1 << 20)
        assert chunk
        received += len(chunk)
    writer.close()
    await writer.wait_closed()
    assert lux.flood_sent >= 8 * 1024 * 1024
    lux.flood = axe.flood = False
    assert b"LUXminer" in await rpc(lux.ip, "version")


async def test_swap_addresses(fleet: Fleet) -> None:
    """Two miners trade addresses: each answers at the other's, as itself."""
    lux, ant, _ = fleet.miners
    ip_lux, ip_ant = lux.ip, ant.ip
    await fleet.swap_addresses(lux, ant)
    assert (lux.ip, ant.ip) == (ip_ant, ip_lux)
    assert fleet[ip_ant] is lux
    assert b"LUXminer" in await rpc(ip_ant, "version")
    assert b"LUXminer" not in await rpc(ip_lux, "version")
    await fleet.swap_addresses(lux, ant)
    assert b"LUXminer" in await rpc(ip_lux, "version")


async def test_ignore_commands_acknowledges_without_effect(
    fleet: Fleet, clock: ManualClock
) -> None:
    luxos, antminer = fleet.miners[0], fleet.miners[1]
    luxos.ignore_commands = antminer.ignore_commands = True
    for sim in (luxos, antminer):
        miner = await pyasic.get_miner(sim.ip)
        assert await miner.stop_mining() is True
        assert sim.mining is True
    assert await (await pyasic.get_miner(luxos.ip)).set_power_limit(2000) is True
    assert luxos.power_target_w == 3050


async def test_privileged_luxos_command_needs_session(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    reply = json.loads(await rpc(sim.ip, "curtail", "bogus,sleep"))
    assert reply["STATUS"][0]["STATUS"] == "E"
    assert sim.mining is True
    session = json.loads(await rpc(sim.ip, "logon"))["SESSION"][0]["SessionID"]
    reply = json.loads(await rpc(sim.ip, "curtail", f"{session},sleep"))
    assert reply["STATUS"][0]["STATUS"] == "S"
    assert sim.mining is False


async def test_antminer_web_needs_digest_auth(fleet: Fleet) -> None:
    sim = fleet.miners[1]
    sim.web_password = "secret"
    miner = await pyasic.get_miner(sim.ip)  # still found, through the RPC
    assert type(miner).__name__ == "BMMinerS21"
    assert (await miner.web.get_system_info()).get("success") is False
    miner.web.pwd = "secret"
    assert (await miner.web.get_system_info())["serinum"] == sim.serial


# ---- scale and lifecycle ---------------------------------------------------------


async def test_fleet_of_240_starts_and_stops_fast(loopback: None) -> None:
    started = time.monotonic()
    async with running_fleet(240, addr("4.1"), ("luxos", "antminer", "bitaxe")) as big:
        assert len(big) == 240
        assert big.miners[-1].ip == addr("4.240")
        assert len(big.by_firmware("bitaxe")) == 80
        replies = await asyncio.gather(
            *(rpc(m.ip, "version") for m in big.miners[:60] if m.firmware != "bitaxe")
        )
        assert all(b"VERSION" in r for r in replies)
    assert time.monotonic() - started < 10


async def test_custom_spec_and_address_checks(
    loopback: None, clock: ManualClock
) -> None:
    spec = MinerSpec("Antminer S19", 3250, 95, 3, 76, 4)
    async with running_fleet(
        1, addr("5.1"), ("luxos",), clock=clock, specs={"luxos": spec}
    ) as one:
        sim: SimulatedMiner = one[addr("5.1")]
        assert sim.model == "Antminer S19"
        assert type(await pyasic.get_miner(sim.ip)).__name__ == "LUXMinerS19"
    with pytest.raises(ValueError, match="loopback"):
        async with running_fleet(1, "10.0.0.1"):
            pass
    with pytest.raises(ValueError, match="unknown firmware"):
        async with running_fleet(1, BASE, ("innosilicon",)):
            pass


# ---- the miners people own at home: Avalon, Whatsminer, AxeOS 2.14 ---------------

HOME_BASE = addr("3.120")


@pytest.fixture
async def home_fleet(loopback: None, clock: ManualClock) -> AsyncIterator[Fleet]:
    """Avalon Nano 3S, Avalon Q, Whatsminer M30S+ (in that order)."""
    async with running_fleet(
        3, HOME_BASE, ("avalon_nano3s", "avalon_q", "whatsminer"), clock=clock
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("index", "cls_name", "model", "make"),
    [
        (0, "CGMinerAvalonNano3s", "Avalon Nano 3s", "AvalonMiner"),
        (1, "CGMinerAvalonQHome", "Avalon Q Home", "AvalonMiner"),
        (2, "BTMinerM30SPlusVE40", "M30S+ VE40", "WhatsMiner"),
    ],
)
async def test_pyasic_identifies_home_miners(
    home_fleet: Fleet, index: int, cls_name: str, model: str, make: str
) -> None:
    miner = await pyasic.get_miner(home_fleet.miners[index].ip)
    assert type(miner).__name__ == cls_name
    assert str(miner.raw_model) == model
    assert str(miner.make) == make


async def test_avalon_get_data(home_fleet: Fleet) -> None:
    nano, q = home_fleet.miners[0], home_fleet.miners[1]
    data = await (await pyasic.get_miner(nano.ip)).get_data()
    assert ths(data.hashrate) == pytest.approx(6.0)
    assert data.wattage == 140  # PS[6] on the Nano 3S
    assert data.wattage_limit == 140  # MPO: the high work mode
    assert data.mac == nano.mac.upper()
    assert data.fw_ver == "4.11.1"
    assert [f.speed for f in data.fans] == nano.physics.fan_rpms()
    data = await (await pyasic.get_miner(q.ip)).get_data()
    assert ths(data.hashrate) == pytest.approx(90.0)
    assert data.wattage == 1674  # WALLPOWER on the Q
    assert len(data.fans) == 2


async def test_avalon_replies_end_in_nul_and_know_canaans_options(
    home_fleet: Fleet,
) -> None:
    nano = home_fleet.miners[0]
    reply = await rpc(nano.ip, "version")
    assert reply.endswith(b"\x00")
    assert json.loads(reply[:-1])["VERSION"][0]["PROD"] == "Avalon Nano3s"
    # Work mode: set (0 low, 1 medium, 2 high) and query.
    reply = json.loads((await rpc(nano.ip, "ascset", "0,workmode,set,0"))[:-1])
    assert reply["STATUS"][0]["Msg"] == "ASC 0 set OK"
    assert nano.power_target_w == 70
    reply = json.loads((await rpc(nano.ip, "ascset", "0,workmode"))[:-1])
    assert reply["STATUS"][0]["Msg"] == "ASC 0 set info: WORKMODE[0]"
    assert "WORKMODE[0]" in (await rpc(nano.ip, "estats")).decode()
    # pyasic's "worklevel" is in no Canaan document: an unknown option.
    reply = json.loads((await rpc(nano.ip, "ascset", "0,worklevel,set,1"))[:-1])
    assert reply["STATUS"][0]["STATUS"] == "E"
    assert nano.power_target_w == 70


async def test_avalon_soft_off_acts_at_its_time(home_fleet: Fleet) -> None:
    nano = home_fleet.miners[0]
    miner = await pyasic.get_miner(nano.ip)
    # pyasic asks for soft off 5 s from now: acknowledged, not yet done.
    assert await miner.stop_mining() is True
    assert nano.mining is True
    # A time already reached acts at once; the pending one is replaced.
    now = int(time.time())
    await rpc(nano.ip, "ascset", f"0,softoff,1:{now}")
    assert nano.mining is False
    assert "SoftOFF[1]" in (await rpc(nano.ip, "estats")).decode()
    data = await miner.get_data()
    assert ths(data.hashrate) == 0
    await rpc(nano.ip, "ascset", f"0,softon,1:{now}")
    assert nano.mining is True


async def test_whatsminer_get_data(home_fleet: Fleet) -> None:
    sim = home_fleet.miners[2]
    data = await (await pyasic.get_miner(sim.ip)).get_data()
    assert ths(data.hashrate) == pytest.approx(100.0, rel=1e-6)
    assert data.wattage == 3400
    assert data.serial_number == sim.serial
    assert data.mac == sim.mac.upper()
    assert data.is_mining is True
    assert data.fw_ver == "20230911.12.Rel"
    assert len(data.hashboards) == 3
    assert {b.chips for b in data.hashboards} == {156}


async def test_whatsminer_writes_are_token_signed_and_encrypted(
    home_fleet: Fleet,
) -> None:
    sim = home_fleet.miners[2]
    miner = await pyasic.get_miner(sim.ip)
    # A plain (unencrypted) write is refused.
    reply = json.loads(await rpc(sim.ip, "power_off"))
    assert reply["Msg"] == "can't access write cmd"
    assert await miner.stop_mining() is True
    assert sim.mining is False
    assert await miner.is_mining() is False
    assert await miner.resume_mining() is True
    assert sim.mining is True
    reply = await miner.rpc.set_low_power()
    assert reply["Msg"] == "API command OK"
    assert sim.power_target_w == pytest.approx(3400 * 0.8)
    assert await miner.set_power_limit(2500) is True
    assert sim.power_target_w == 2500
    assert (await miner.get_data()).wattage_limit == 2500
    # The wrong password signs a token the miner does not know.
    other = await pyasic.get_miner(sim.ip)
    other.rpc.pwd = "wrong"
    with pytest.raises(pyasic.APIError, match="check token err"):
        await other.rpc.power_off()
    # Write access off (the WhatsminerTool switch): refused.
    sim.personality.write_enabled = False
    assert await other.stop_mining() is False
    assert sim.mining is True


async def test_axeos_2_14_pauses_and_resumes(fleet: Fleet) -> None:
    sim = fleet.miners[2]
    url = f"http://{sim.ip}/api/system"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/pause") as response:
            assert response.status == 404  # v2.6.1: no pause
        sim.personality.version = "v2.14.0"
        async with session.post(f"{url}/pause") as response:
            assert response.status == 200
        assert sim.mining is False
        async with session.get(f"{url}/info") as response:
            assert (await response.json())["miningPaused"] is True
        async with session.post(f"{url}/resume") as response:
            assert response.status == 200
        assert sim.mining is True
