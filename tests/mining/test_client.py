"""The pyasic adapter against the miner simulator (real pyasic, real sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import math
import time

import pytest

from custom_components.hashgrid.mining.client import (
    Identity,
    MinerClient,
    identify,
    normalize_mac,
)
from custom_components.hashgrid.mining.errors import (
    AuthRequired,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    NotAMiner,
    UnsupportedMiner,
    WrongMiner,
)
from simulators.miner import Fleet, MinerSpec, running_fleet
from tests.conftest import ManualClock
from tests.net import addr

from .conftest import connect

BASE = addr("7.1")
NOTHING = addr("7.250")  # nothing listens here


@pytest.fixture
async def fleet(loopback: None, clock: ManualClock) -> AsyncIterator[Fleet]:
    async with running_fleet(3, BASE, clock=clock) as running:
        yield running


# ---- identify -------------------------------------------------------------------


async def test_identify_luxos(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    info = await identify(sim.ip)
    assert info.host == sim.ip
    assert (info.make, info.model, info.firmware) == (
        "AntMiner",
        "AntMiner S19j Pro",
        "LuxOS",
    )
    assert info.mac == sim.mac
    assert info.serial == sim.serial
    assert info.unique_id == sim.serial.upper()
    assert info.can_stop is True
    assert info.can_set_power is True
    # The profiles span 50 %..110 % of the 3050 W nominal.
    assert (info.min_power_w, info.max_power_w) == (1525, 3355)
    assert info.nominal_power_w == 3050


async def test_identify_antminer(fleet: Fleet) -> None:
    sim = fleet.miners[1]
    info = await identify(sim.ip)
    assert (info.model, info.firmware) == ("AntMiner S21", "Stock")
    assert info.mac == sim.mac
    assert info.unique_id == sim.serial
    assert info.can_stop is True
    assert info.can_set_power is False
    assert info.min_power_w is None


async def test_identify_bitaxe_falls_back_to_mac(fleet: Fleet) -> None:
    sim = fleet.miners[2]
    info = await identify(sim.ip)
    assert (info.make, info.model) == ("BitAxe", "BitAxe Gamma")
    assert info.serial == info.mac == info.unique_id == sim.mac
    assert info.can_stop is False
    assert info.can_set_power is False


def test_normalize_mac() -> None:
    assert normalize_mac("02-48-47-0A-0B-FF") == "02:48:47:0a:0b:ff"
    assert normalize_mac("024847000102") == "02:48:47:00:01:02"


# ---- identify: what goes wrong, told apart ----------------------------------------


async def test_nothing_listening_is_cannot_connect(loopback: None) -> None:
    with pytest.raises(CannotConnect):
        await identify(NOTHING)


async def test_web_server_is_not_a_miner(web_only: str) -> None:
    with pytest.raises(NotAMiner):
        await identify(web_only)


async def test_garbage_is_not_a_miner(fleet: Fleet) -> None:
    fleet.miners[0].garbage = True
    with pytest.raises(NotAMiner):
        await identify(fleet.miners[0].ip)


async def test_binary_garbage_is_not_a_miner(fleet: Fleet) -> None:
    fleet.miners[1].garbage = True
    fleet.miners[1].garbage_payload = b"\xff\xfe\x00binary"
    with pytest.raises(NotAMiner):
        await identify(fleet.miners[1].ip)


async def test_unknown_model_is_unsupported(loopback: None) -> None:
    spec = MinerSpec("Antminer S23 Hyd", 5500, 580, 3, 160, 0)
    async with running_fleet(1, addr("7.200"), ("luxos",), specs={"luxos": spec}):
        with pytest.raises(UnsupportedMiner):
            await identify(addr("7.200"))


async def test_antminer_credentials(loopback: None) -> None:
    async with running_fleet(
        2, addr("7.210"), ("antminer",), web_password="s3cret"
    ) as f:
        ip = f.miners[0].ip
        with pytest.raises(AuthRequired):
            await identify(ip)
        with pytest.raises(InvalidAuth):
            await identify(ip, password="wrong")
        client = await connect(ip, username="root", password="s3cret")
        assert client.info.unique_id == f.miners[0].serial
        assert await client.stop() is True
        assert f.miners[0].mining is False


async def test_identify_timeout_is_cannot_connect(fleet: Fleet) -> None:
    fleet.miners[2].slow = 2.0
    with pytest.raises(CannotConnect):
        await identify(fleet.miners[2].ip, timeout_s=0.5)


# ---- poll ----------------------------------------------------------------------


async def test_poll_luxos(fleet: Fleet, clock: ManualClock) -> None:
    sim = fleet.miners[0]
    client = await connect(sim.ip)
    clock.now = 600.0
    reading = await client.poll()
    assert reading.hashrate_ths == pytest.approx(145, rel=1e-3)
    assert reading.power_w == 3050
    assert reading.efficiency_j_th == pytest.approx(21.03, abs=0.01)
    assert reading.board_temps_c == (59.5, 61.0, 62.5)
    assert len(reading.chip_temps_c) == 3
    assert min(reading.chip_temps_c) > max(reading.board_temps_c)
    assert reading.fan_rpms == tuple(sim.physics.fan_rpms())
    assert reading.uptime_s == 600
    assert reading.pool_url == "stratum+tcp://pool.hashgrid.invalid:3333"
    assert reading.pool_user == f"hashgrid.{sim.hostname}"
    assert reading.errors == ()
    assert reading.is_mining is True
    assert reading.power_target_w == 3050


async def test_poll_antminer_and_bitaxe(fleet: Fleet) -> None:
    antminer = await (await connect(fleet.miners[1].ip)).poll()
    assert antminer.hashrate_ths == pytest.approx(206, rel=1e-3)
    assert antminer.power_w is None  # stock firmware does not report power
    assert antminer.is_mining is True
    assert len(antminer.fan_rpms) == 4
    bitaxe = await (await connect(fleet.miners[2].ip)).poll()
    assert bitaxe.hashrate_ths == pytest.approx(1.0)
    assert bitaxe.power_w == 15
    assert bitaxe.efficiency_j_th == pytest.approx(15.0)
    assert bitaxe.fan_rpms == tuple(fleet.miners[2].physics.fan_rpms())


async def test_poll_faults(fleet: Fleet) -> None:
    sim = fleet.miners[0]
    client = await connect(sim.ip, timeout_s=0.5)
    sim.slow = 1.0
    with pytest.raises(CannotConnect):
        await client.poll()
    sim.slow = 0.0
    sim.unreachable = True
    with pytest.raises(CannotConnect):
        await client.poll()
    with pytest.raises(CannotConnect):
        await client.stop()
    assert sim.mining is True
    sim.unreachable = False
    sim.garbage = True
    with pytest.raises(InvalidResponse):
        await client.poll()
    sim.garbage_payload = b"\xff\xfe\x00binary"
    with pytest.raises(InvalidResponse):
        await client.poll()
    sim.garbage = False
    assert (await client.poll()).power_w == 3050


@pytest.mark.parametrize(
    "lie", [-5, math.nan, "abc", 1e308, math.inf, True, [3050]], ids=repr
)
async def test_impossible_figures_are_unknown_and_logged_once(
    fleet: Fleet, lie: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A power outside physics is None; the rest of the reading is real."""
    lux, _, axe = fleet.miners
    lux_client, axe_client = await connect(lux.ip), await connect(axe.ip)
    lux.lie["power_w"] = lie
    axe.lie["hashrate_ths"] = 1e308
    for _ in range(3):
        reading = await lux_client.poll()
        assert reading.power_w is None
        assert reading.efficiency_j_th is None
        assert reading.hashrate_ths == pytest.approx(lux.hashrate_ths, rel=0.01)
        assert (await axe_client.poll()).hashrate_ths is None
    assert caplog.text.count(f"Miner {lux.ip} reports an impossible power") == 1
    assert caplog.text.count(f"Miner {axe.ip} reports an impossible hashrate") == 1
    lux.lie.clear()
    assert (await lux_client.poll()).power_w == 3050


async def test_bad_presets_and_serial_do_not_stop_identification(
    fleet: Fleet,
) -> None:
    """A preset of -50 W is left out; a NaN one leaves no presets; a numeric
    serial is unknown (the MAC identifies the miner)."""
    lux = fleet.miners[0]
    lux.lie["preset_w"] = -50
    info = await identify(lux.ip)
    assert info.min_power_w == pytest.approx(1830)
    lux.lie["preset_w"] = math.nan
    info = await identify(lux.ip)
    assert (info.can_set_power, info.min_power_w) == (False, None)
    assert info.can_stop
    lux.lie = {"serial": 12345}
    info = await identify(lux.ip)
    assert info.unique_id == lux.mac
    client = await connect(lux.ip, expect=Identity(serial=lux.serial, mac=lux.mac))
    assert (await client.poll()).power_w == 3050


async def test_another_miner_at_the_address_is_wrong_miner(fleet: Fleet) -> None:
    """Each full poll checks serial/MAC; a connect checks what it expects."""
    lux, ant, axe = fleet.miners
    clients = [await connect(m.ip) for m in fleet.miners]
    lux.lie["serial"] = ant.serial  # claims another miner's serial
    ant.lie["mac"] = axe.mac
    axe.lie["mac"] = "02:00:00:00:00:01"
    for client in clients:
        with pytest.raises(WrongMiner):
            await client.poll()
        await client.poll(state_only=True)  # read-backs do not re-read it
    with pytest.raises(WrongMiner):
        await connect(lux.ip, expect=Identity.from_unique_id(lux.serial))
    with pytest.raises(WrongMiner):
        await connect(axe.ip, expect=Identity.from_unique_id(axe.mac.upper()))
    for sim in fleet.miners:
        sim.lie.clear()
    for client in clients:
        await client.poll()
    # A figure nobody knows proves nothing either way.
    assert not Identity(serial="A").conflicts(Identity(mac=lux.mac))
    assert not Identity(serial="A").confirms(Identity(mac=lux.mac))
    assert Identity.from_unique_id("HGS0001") == Identity(serial="HGS0001")


async def test_a_flooding_miner_is_cut_off(fleet: Fleet) -> None:
    """RPC and web replies: at most MAX_REPLY_BYTES, then InvalidResponse at once."""
    clients = [await connect(m.ip) for m in fleet.miners]
    for sim, client in zip(fleet.miners, clients, strict=True):
        sim.flood = True
        started = time.monotonic()
        with pytest.raises(InvalidResponse):
            await client.poll()
        assert time.monotonic() - started < 2.0
        with pytest.raises(InvalidResponse):
            await connect(sim.ip)
        sim.flood = False
        await client.poll()


# ---- commands ------------------------------------------------------------------


async def test_luxos_commands(fleet: Fleet, clock: ManualClock) -> None:
    sim = fleet.miners[0]
    client = await connect(sim.ip)
    assert await client.stop() is True
    clock.now += 20
    reading = await client.poll()
    assert reading.is_mining is False
    assert reading.hashrate_ths == 0
    assert reading.power_w == 15
    assert await client.resume() is True
    assert sim.mining is True
    assert await client.set_power_target(2500) is True
    assert sim.power_target_w == 2440  # the 80 % profile
    clock.now += 20
    assert (await client.poll()).power_target_w == 2440
    assert await client.set_power_target(100) is False
    assert await client.restart() is True
    assert sim.physics.uptime_s == 0
    # The reboot expired pyasic's cached LuxOS session: the client logs on again.
    assert await client.stop() is True
    assert sim.mining is False


async def test_antminer_commands_are_verified(fleet: Fleet) -> None:
    sim = fleet.miners[1]
    client = await connect(sim.ip)
    assert await client.stop() is True
    assert sim.mining is False
    assert (await client.poll()).is_mining is False
    assert await client.resume() is True
    assert sim.mining is True
    assert await client.set_power_target(2000) is False
    sim.ignore_commands = True
    # pyasic says yes; the read-back of the work mode says it did not happen.
    assert await client.stop() is False
    assert sim.mining is True


async def test_bitaxe_commands(fleet: Fleet, clock: ManualClock) -> None:
    sim = fleet.miners[2]
    client: MinerClient = await connect(sim.ip)
    assert await client.stop() is False
    assert await client.set_power_target(10) is False
    assert sim.mining is True
    clock.now += 50
    assert await client.restart() is True
    assert sim.physics.uptime_s == 0


# ---- transport -----------------------------------------------------------------


async def test_antminer_web_keeps_its_connections_and_digest(fleet: Fleet) -> None:
    sim = fleet.miners[1]
    client = await connect(sim.ip)
    await client.poll()
    assert await client.stop() is True
    connections, challenges = sim.http_connections, sim.http_challenges
    requests = sim.http_requests
    for _ in range(3):
        await client.poll()
        assert await client.resume() is True
        assert await client.stop() is True
    # Every request went out on a kept-alive connection, already authenticated
    # (the digest challenge of the first one is reused): no 401 round trips.
    assert sim.http_requests > requests
    assert sim.http_connections == connections
    assert sim.http_challenges == challenges


async def test_a_miner_gone_between_requests_is_cannot_connect(fleet: Fleet) -> None:
    """Nothing probes the miner first: an undelivered request says it is gone."""
    for sim in fleet.miners[:2]:  # LuxOS (RPC), Antminer (web, kept alive)
        client = await connect(sim.ip)
        await client.poll()
        sim.unreachable = True
        with pytest.raises(CannotConnect):
            await client.stop(verify=False)
        with pytest.raises(CannotConnect):
            await client.poll(state_only=True)
        assert sim.mining is True
        sim.unreachable = False
        assert await client.stop(verify=False) is True
        assert sim.mining is False


async def test_state_read_takes_the_hashrate_from_the_boards(fleet: Fleet) -> None:
    """Where the boards carry the hashrate, a read-back skips the miner's total."""
    sim = fleet.miners[1]  # Antminer: the total on RPC, the boards on the web
    client = await connect(sim.ip)
    full = await client.poll()
    connections = sim.rpc_connections
    state = await client.poll(state_only=True)
    assert sim.rpc_connections == connections
    assert state.hashrate_ths == full.hashrate_ths
    assert state.is_mining is True
