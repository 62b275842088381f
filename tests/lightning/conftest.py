"""Fixtures of the Lightning HA tests: the simulated network and entries on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import Context, HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import pytest_socket

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.lightning import const, ledger
from simulators.lightning import LightningSim, Neighbour, running_lightning

METER = "sensor.meter_{}"


@pytest.fixture
def fast_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    """waitanyinvoice waits 1 s per call (60 s in production); short back-off."""
    monkeypatch.setattr(const, "WAIT_TIMEOUT_S", 1)
    monkeypatch.setattr(const, "LISTENER_BACKOFF_S", 0.05)
    monkeypatch.setattr(const, "LISTENER_BACKOFF_MAX_S", 0.2)


#: "Unknown to the node" is final after this long in these tests (300 s in
#: production): the simulated node gets every request within milliseconds.
TEST_GRACE_S = 0.3


@pytest.fixture
async def net(
    hass: HomeAssistant,
    socket_enabled: None,
    tmp_path: Any,
    fast_listener: None,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[LightningSim]:
    """Our node, a router and two neighbours; our node on a socket and CLNRest.

    Entries are unloaded before the simulator stops (no listener left waiting).
    """
    monkeypatch.setattr(ledger, "UNKNOWN_GRACE_S", TEST_GRACE_S)
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    async with running_lightning(tmp_path, neighbours=2, rest_port=0) as running:
        yield running
        await unload_all(hass)


def node_data(net: LightningSim, transport: str) -> dict[str, Any]:
    """The entry data of our node over one transport."""
    if transport == "socket":
        return {
            "kind": "lightning_node",
            "transport": "socket",
            "socket_path": net.rpc_socket,
        }
    return {
        "kind": "lightning_node",
        "transport": "rest",
        "url": net.rest_url,
        "rune": net.rune,
        "fingerprint": net.cert_fingerprint,
    }


def neighbour_subentry(
    n: Neighbour,
    *,
    name: str | None = None,
    keysend: bool = False,
    price: float | None = 100.0,
    direction: str = "we_pay",
    **extra: Any,
) -> dict[str, Any]:
    """A neighbour subentry we pay by offer (or keysend) from its meter sensor."""
    title = name or n.name
    data: dict[str, Any] = {
        "name": title,
        "direction": direction,
        "meter_entity": METER.format(n.name.replace("-", "_")),
        "min_settlement_sats": 1,
        **extra,
    }
    if price is not None:
        data["price_sats_per_kwh"] = price
        data["price_mode"] = "fixed"
    if direction == "we_pay":
        if keysend:
            data |= {"node_id": n.node_id, "pay_method": "keysend"}
        else:
            data |= {"offer": n.offer, "pay_method": "offer"}
    return {
        "data": data,
        "subentry_type": "neighbour",
        "title": title,
        "unique_id": f"{direction}:{n.node_id}",
    }


async def call(
    hass: HomeAssistant,
    service: str,
    entry: ConfigEntry,
    context: Context | None = None,
    **data: Any,
) -> dict[str, Any]:
    """Call a HashGrid action on an entry; return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        service,
        {"config_entry_id": entry.entry_id, **data},
        blocking=True,
        return_response=True,
        context=context,
    )
    assert isinstance(response, dict)
    return response


def set_meter(hass: HomeAssistant, n: Neighbour, kwh: str | float) -> None:
    """Set a neighbour's (fake) energy meter sensor."""
    hass.states.async_set(
        METER.format(n.name.replace("-", "_")),
        str(kwh),
        {"unit_of_measurement": "kWh", "state_class": "total_increasing"},
    )


async def add_node(
    hass: HomeAssistant,
    net: LightningSim,
    transport: str = "socket",
    subentries: list[dict[str, Any]] | None = None,
    *,
    expect: ConfigEntryState = ConfigEntryState.LOADED,
) -> ConfigEntry:
    """Add our node's entry and set it up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HASHGRID",
        data=node_data(net, transport),
        unique_id=net.node_id,
        subentries_data=subentries or [],
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is expect
    return entry


async def unload_all(hass: HomeAssistant) -> None:
    """Unload every loaded entry (stops the payment listeners)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
