"""The lightning_node entry against the simulated node, over both transports."""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest

from simulators.lightning import LightningSim

from .conftest import add_node, unload_all


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
    print(ents)
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
