"""The lightning_node entry against the simulated node, over both transports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.hashgrid.const import DOMAIN
from simulators.lightning import LightningSim

from .conftest import add_node, neighbour_subentry, set_meter, unload_all


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


@pytest.mark.parametrize("transport", ["socket", "rest"])
async def test_entities_match_the_node(
    hass: HomeAssistant, net: LightningSim, transport: str
) -> None:
    entry = await add_node(hass, net, transport)
    info = await net.ours.call("getinfo")
    funds = await net.ours.call("listfunds")
    channels = (await net.ours.call("listpeerchannels"))["channels"]
    ents = {
        e.unique_id.removeprefix(f"{net.node_id}_"): e.entity_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert _state(hass, ents["node_alias"]) == "HASHGRID"
    assert _state(hass, ents["node_id"]) == net.node_id
    assert _state(hass, ents["network"]) == "regtest"
    assert _state(hass, ents["block_height"]) == str(info["blockheight"])
    assert _state(hass, ents["node_version"]) == info["version"]
    assert _state(hass, ents["onchain_balance"]) == str(
        sum(o["amount_msat"] for o in funds["outputs"]) // 1000
    )
    assert _state(hass, ents["lightning_spendable"]) == str(
        sum(c["spendable_msat"] for c in channels) // 1000
    )
    assert _state(hass, ents["lightning_receivable"]) == str(
        sum(c["receivable_msat"] for c in channels) // 1000
    )
    assert _state(hass, ents["channels_active"]) == "1"
    assert _state(hass, ents["channels_total"]) == "1"
    assert _state(hass, ents["peers"]) == "1"
    assert _state(hass, ents["fees_collected"]) == "0"
    assert entry.state is ConfigEntryState.LOADED


async def test_diagnostics_never_show_the_rune(
    hass: HomeAssistant, net: LightningSim, hass_client: Any
) -> None:
    n1 = net.neighbours[0]
    set_meter(hass, n1, "5")
    entry = await add_node(hass, net, "rest", [neighbour_subentry(n1, name="Alice")])
    diag = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert net.rune not in str(diag)
    assert diag["entry"]["data"]["rune"] == "**REDACTED**"
    runtime = diag["runtime"]
    assert runtime["node"]["alias"] == "HASHGRID"
    assert runtime["address"] == net.rest_url
    assert runtime["settlement"]["ready"] is True
    assert runtime["listener"]["errors"] == 0


async def test_node_away_at_start_is_retried(
    hass: HomeAssistant, net: LightningSim, tmp_path: Any
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={
            "kind": "lightning_node",
            "transport": "socket",
            "socket_path": str(tmp_path / "no-such-socket"),
        },
        unique_id=net.node_id,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_poll_failure_makes_entities_unavailable(
    hass: HomeAssistant, net: LightningSim
) -> None:
    entry = await add_node(hass, net, "socket")
    coordinator = entry.runtime_data.coordinator  # type: ignore[attr-defined]
    restart = asyncio.ensure_future(net.ours.simulate_restart(0.5))
    await asyncio.sleep(0.05)  # the socket is gone now
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.hashgrid_peers").state == "unavailable"  # type: ignore[union-attr]
    await restart
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.hashgrid_peers").state == "1"  # type: ignore[union-attr]


async def test_only_a_device_nothing_is_behind_can_be_deleted(
    hass: HomeAssistant, net: LightningSim, hass_ws_client: Any
) -> None:
    """The node and a neighbour are live (deleted with their entry or their own
    Delete); a device no entity of HashGrid stands behind any more may go."""
    from homeassistant.helpers import device_registry as dr
    from homeassistant.setup import async_setup_component

    from custom_components.hashgrid.const import DOMAIN

    assert await async_setup_component(hass, "config", {})
    n1 = net.neighbours[0]
    set_meter(hass, n1, "0")
    entry = await add_node(hass, net, "socket", [neighbour_subentry(n1, name="Alice")])
    devices = dr.async_get(hass)
    stale = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "gone")}, name="Gone"
    )
    node = devices.async_get_device_by_identifier((DOMAIN, net.node_id), entry.entry_id)
    alice = next(
        d
        for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
        if d.name == "Alice"
    )
    client = await hass_ws_client(hass)

    async def remove(device: dr.DeviceEntry) -> bool:
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": entry.entry_id,
                "device_id": device.id,
            }
        )
        return bool((await client.receive_json())["success"])

    assert node is not None
    assert not await remove(node)
    assert not await remove(alice)
    assert await remove(stale)
    assert devices.async_get(stale.id) is None
    assert devices.async_get(node.id) is not None
