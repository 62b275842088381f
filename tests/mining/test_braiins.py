"""Braiins OS+ (BOSer) in HashGrid: the real pyasic on the simulator.

Identified (make, model, serial, the tuner's power target range), polled,
stopped and resumed (pause/resume mining), given a power target; which of
the kept-alive transports carry it (the RPC port: the one-exchange transport;
the gRPC API: pyasic's calls on one HTTP/2 connection, closed when idle; a
read-back without the hash boards); and a site in Home Assistant that adds
it in the UI, switches it and curtails it to a budget by its power target.
A password other than the default: asked for by the flow, checked by the
gRPC login (a wrong one said so, nothing changed); one changed after setup
ends in a repair that asks for the new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import time

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining import transport
from custom_components.hashgrid.mining.client import (
    identify,
)
from custom_components.hashgrid.mining.errors import (
    AuthRequired,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from simulators.miner import Fleet, SimulatedMiner, running_fleet
from simulators.miner.braiins import BraiinsOS
from tests.conftest import ManualClock
from tests.net import addr

from .conftest import TIME_SCALE, connect, open_credentials_repair, setup_site

CLIENT_BASE = addr("7.170")
SITE_BASE = addr("2.170")
AUTH_BASE = addr("7.172")
AUTH_SITE_BASE = addr("2.172")


@pytest.fixture
async def bos(loopback: None, clock: ManualClock) -> AsyncIterator[SimulatedMiner]:
    """One Antminer S19j Pro on Braiins OS+."""
    async with running_fleet(1, CLIENT_BASE, ("braiins",), clock=clock) as fleet:
        yield fleet.miners[0]


def personality(sim: SimulatedMiner) -> BraiinsOS:
    assert isinstance(sim.personality, BraiinsOS)
    return sim.personality


# ---- the client ----------------------------------------------------------------


async def test_identify(bos: SimulatedMiner) -> None:
    info = await identify(bos.ip)
    assert (info.make, info.model, info.firmware) == (
        "AntMiner",
        "AntMiner S19j Pro",
        "BOS+",
    )
    assert info.unique_id == bos.serial
    assert info.mac == bos.mac
    assert (info.can_stop, info.can_set_power) == (True, True)
    # The tuner's range (GetConstraints), which pyasic does not read.
    assert (info.min_power_w, info.max_power_w) == (1525, 3355)
    assert info.nominal_power_w == 3050
    assert info.work_modes == ()


async def test_poll_stop_resume_and_power_target(
    bos: SimulatedMiner, clock: ManualClock
) -> None:
    client = await connect(bos.ip)
    reading = await client.poll()
    assert (reading.hashrate_ths, reading.power_w) == (145.0, 3050)
    assert reading.power_target_w == 3050
    assert reading.is_mining is True
    # pyasic takes whole degrees of BOSer's temperatures.
    assert reading.board_temps_c == tuple(int(t) for t in bos.physics.board_temps_c())
    assert reading.chip_temps_c == tuple(int(t) for t in bos.physics.chip_temps_c())
    assert reading.fan_rpms == tuple(bos.physics.fan_rpms())
    assert reading.pool_user == f"hashgrid.{bos.hostname}"
    assert await client.stop() is True  # verified by `devs`
    assert bos.mining is False
    clock.now += 30
    reading = await client.poll(state_only=True)
    assert (reading.is_mining, reading.hashrate_ths, reading.power_w) == (
        False,
        0,
        15,
    )
    assert await client.resume() is True
    assert bos.mining is True
    assert await client.set_power_target(2500) is True
    assert bos.power_target_w == 2500
    clock.now += 30
    reading = await client.poll()
    assert (reading.power_target_w, reading.power_w) == (2500, 2500)
    # Outside the tuner's range: refused by the miner, nothing changes.
    assert await client.set_power_target(1000) is False
    assert bos.power_target_w == 2500
    # Acknowledged but not done: the read-back says so.
    bos.ignore_commands = True
    assert await client.stop() is False
    assert bos.mining is True


async def test_a_password_other_than_the_default(
    loopback: None, clock: ManualClock
) -> None:
    """The login says which password works; a refused one changes nothing."""
    async with running_fleet(
        1, AUTH_BASE, ("braiins",), clock=clock, web_password="s3cret"
    ) as fleet:
        sim = fleet.miners[0]
        bos = personality(sim)
        with pytest.raises(AuthRequired) as required:
            await identify(sim.ip)  # pyasic's default, root/root
        assert required.value.password_only is False
        with pytest.raises(InvalidAuth):
            await identify(sim.ip, username="root", password="nope")
        assert bos.refused_logins == 2
        info = await identify(sim.ip, username="root", password="s3cret")
        assert info.unique_id == sim.serial
        assert (info.min_power_w, info.max_power_w) == (1525, 3355)

        client = await connect(sim.ip, username="root", password="s3cret")
        assert (await client.poll()).power_w == 3050
        # The owner sets another password: every session ends.
        sim.web_password = "changed"
        with pytest.raises(InvalidAuth):
            await client.poll()
        with pytest.raises(InvalidAuth):
            await client.stop()
        with pytest.raises(InvalidAuth):
            await client.set_power_target(2500)
        assert (sim.mining, sim.power_target_w) == (True, 3050)
        # Back to the password the client has: it works again.
        sim.web_password = "s3cret"
        assert (await client.poll()).power_w == 3050
        assert await client.stop() is True
        assert sim.mining is False


# ---- the kept-alive transports -------------------------------------------------------


async def test_rpc_is_lean_and_grpc_is_kept_alive(
    bos: SimulatedMiner, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RPC port takes the bounded one-exchange transport; the gRPC API
    (pyasic's calls and login) one HTTP/2 connection, kept while in use and
    closed when idle; the web page is not used after identification."""
    monkeypatch.setattr(transport, "KEEPALIVE_S", 0.2)
    sim = personality(bos)
    client = await connect(bos.ip)
    miner = client._miner
    assert "_send_bytes" in vars(miner.rpc)  # swapped in by transport.keep_alive
    assert isinstance(miner.web, transport.KeptAliveBOSerWebAPI)
    assert sim.grpc_connections == 1  # identification: login, details, range
    # A read-back takes the total hashrate from the RPC port: the boards
    # (gRPC, the costliest reply to decode) are not asked for.
    sim.grpc_methods.clear()
    assert (await client.poll(state_only=True)).hashrate_ths == 145.0
    assert set(sim.grpc_methods) == {"GetMinerStats", "GetActivePerformanceMode"}
    http, rpc = bos.http_requests, bos.rpc_connections
    calls = sim.grpc_calls
    await client.poll()
    assert bos.http_requests == http
    assert bos.rpc_connections > rpc
    assert sim.grpc_calls - calls >= 5  # details, stats, boards, cooling, mode, pools
    assert sim.grpc_connections == 1
    # Idle: closed; the next call opens one again.
    await asyncio.sleep(0.4)
    assert miner.web._channel is None
    assert await client.stop() is True
    assert sim.grpc_connections == 2
    # Sessions gone (a reboot): pyasic's one new login, on the same connection.
    bos.reboot()
    logins = sim.logins
    assert await client.stop(verify=False) is True
    assert bos.mining is False
    assert (sim.logins, sim.grpc_connections) == (logins + 1, 2)
    assert await client.resume(verify=False) is True
    clock.now += 30
    # So after a full poll too.
    sim.grpc_methods.clear()
    reading = await client.poll(state_only=True)
    assert (reading.hashrate_ths, reading.power_w) == (145.0, 3050)
    assert reading.power_target_w == 3050
    assert reading.is_mining is True
    assert sim.grpc_methods["GetHashboards"] == 0
    assert set(sim.grpc_methods) == {
        "GetMinerStats",
        "GetActivePerformanceMode",
    }
    # The RPC port is bounded: a flooding miner is cut off at once.
    bos.flood = True
    started = time.monotonic()
    with pytest.raises(InvalidResponse):
        await client.poll()
    assert time.monotonic() - started < 3.0
    bos.flood = False
    # Counted: a miner gone reads as unreachable, for reads and commands.
    bos.unreachable = True
    with pytest.raises(CannotConnect):
        await client.poll()
    with pytest.raises(CannotConnect):
        await client.stop()


# ---- in Home Assistant -------------------------------------------------------------


@pytest.fixture
async def site_miners(loopback: None) -> AsyncIterator[Fleet]:
    """Two S19j Pro on Braiins OS+."""
    async with running_fleet(
        2, SITE_BASE, ("braiins",), time_scale=TIME_SCALE
    ) as fleet:
        yield fleet


def entity(hass: HomeAssistant, unique_id: str, key: str) -> str:
    platform, _, suffix = key.partition(".")
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{unique_id}_{suffix}"
    )
    assert found is not None, key
    return found


async def test_braiins_site_in_home_assistant(
    hass: HomeAssistant, site_miners: Fleet
) -> None:
    site = await setup_site(hass, [], "Barn")
    # Added in the UI: host, then the limits (the tuner's range as defaults).
    for priority, sim in zip((80, 20), site_miners.miners, strict=True):
        result = await hass.config_entries.subentries.async_init(
            (site.entry_id, "miner"), context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"host": sim.ip}
        )
        assert result["step_id"] == "limits"
        assert "S19j Pro" in result["description_placeholders"]["model"]
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"priority": priority}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
    first, second = site_miners.miners
    assert {s.unique_id for s in site.subentries.values()} == {
        first.serial,
        second.serial,
    }
    assert first.serial is not None
    await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done()

    # The switch stops and resumes it.
    switch_id = entity(hass, first.serial, "switch.mining")
    assert hass.states.get(switch_id).state == STATE_ON
    await hass.services.async_call(
        "switch", "turn_off", {ATTR_ENTITY_ID: switch_id}, blocking=True
    )
    assert first.mining is False
    assert hass.states.get(switch_id).state == STATE_OFF
    await hass.services.async_call(
        "switch", "turn_on", {ATTR_ENTITY_ID: switch_id}, blocking=True
    )
    assert first.mining is True
    # The power target number sets the tuner's target.
    number_id = entity(hass, first.serial, "number.power_target")
    await hass.services.async_call(
        "number", "set_value", {ATTR_ENTITY_ID: number_id, "value": 2600}, blocking=True
    )
    assert first.power_target_w == 2600
    assert float(hass.states.get(number_id).state) == 2600

    # A 4.5 kW limit: both keep running, the power targets share it.
    response = await hass.services.async_call(
        DOMAIN,
        "set_limit",
        {
            "config_entry_id": site.entry_id,
            "source": "solar",
            "power_kw": 4.5,
            "stagger": 0,
        },
        blocking=True,
        return_response=True,
    )
    assert all(m["success"] for m in response["miners"]), response
    assert first.mining
    assert second.mining
    assert first.power_target_w + second.power_target_w <= 4500
    for sim in (first, second):
        assert 1525 <= sim.power_target_w <= 3355
    # A DR event at 0: both stop, confirmed.
    response = await hass.services.async_call(
        DOMAIN,
        "set_limit",
        {
            "config_entry_id": site.entry_id,
            "source": "demand_response",
            "power_kw": 0,
            "stagger": 0,
        },
        blocking=True,
        return_response=True,
    )
    assert all(m["success"] for m in response["miners"]), response
    assert not first.mining
    assert not second.mining


async def test_braiins_password_in_the_flow_and_its_repair(
    hass: HomeAssistant, loopback: None
) -> None:
    """Asked for when not the default, checked, kept; asked again when changed."""
    assert await async_setup_component(hass, "repairs", {})
    async with running_fleet(
        1, AUTH_SITE_BASE, ("braiins",), time_scale=TIME_SCALE, web_password="s3cret"
    ) as fleet:
        sim = fleet.miners[0]
        site = await setup_site(hass, [], "Shed")
        result = await hass.config_entries.subentries.async_init(
            (site.entry_id, "miner"), context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"host": sim.ip}
        )
        assert result["step_id"] == "credentials"
        assert list(result["data_schema"].schema) == ["username", "password"]
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"username": "root", "password": "nope"}
        )
        assert result["step_id"] == "credentials"
        assert result["errors"] == {"base": "invalid_auth"}
        assert site.subentries == {}
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"username": "root", "password": "s3cret"}
        )
        assert result["step_id"] == "limits"
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"priority": 50}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        subentry_id, subentry = next(iter(site.subentries.items()))
        assert subentry.data["password"] == "s3cret"
        coordinator = site.runtime_data.coordinator
        assert coordinator.slots[subentry_id].reading is not None
        switch_id = entity(hass, sim.serial or "", "switch.mining")

        # The owner changes the password: a command fails and changes nothing,
        # and a fixable repair asks for the new password.
        sim.web_password = "n3w"
        with pytest.raises(HomeAssistantError):
            await hass.services.async_call(
                "switch", "turn_off", {ATTR_ENTITY_ID: switch_id}, blocking=True
            )
        assert sim.mining is True
        manager, flow = await open_credentials_repair(hass, coordinator, subentry_id)
        issue_id = f"miner_credentials_{subentry_id}"
        assert list(flow["data_schema"].schema) == ["username", "password"]
        flow = await manager.async_configure(
            flow["flow_id"], {"username": "root", "password": "s3cret"}
        )
        assert flow["errors"] == {"base": "invalid_auth"}
        assert site.subentries[subentry_id].data["password"] == "s3cret"
        flow = await manager.async_configure(
            flow["flow_id"], {"username": "root", "password": "n3w"}
        )
        assert flow["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert site.subentries[subentry_id].data["password"] == "n3w"
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        coordinator = site.runtime_data.coordinator
        assert coordinator.slots[subentry_id].reading is not None
        await hass.services.async_call(
            "switch", "turn_off", {ATTR_ENTITY_ID: switch_id}, blocking=True
        )
        assert sim.mining is False
        assert await hass.config_entries.async_unload(site.entry_id)


async def test_closing_the_client_closes_its_grpc_connection(
    bos: SimulatedMiner,
) -> None:
    client = await connect(bos.ip)
    assert client._miner.web._channel is not None
    await client.aclose()
    assert client._miner.web._channel is None
