"""The lightning_node config flow against the simulated node (socket and CLNRest)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.lightning import LightningSim
from tests.flows import open_form

from .conftest import add_node, set_meter, unload_all


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


async def _start(hass: HomeAssistant, transport: str) -> str:
    return await open_form(hass, "lightning_node", f"lightning_{transport}")


async def test_a_node_is_reached_by_socket_or_rest(hass: HomeAssistant) -> None:
    """The node step is a menu of the two transports, socket first."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "lightning_node"}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["lightning_socket", "lightning_rest"]


async def test_socket_creates_the_entry(hass: HomeAssistant, net: LightningSim) -> None:
    flow_id = await _start(hass, "socket")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"socket_path": net.rpc_socket + ".missing"}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"socket_path": net.rpc_socket}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Lightning node HASHGRID"
    assert result["data"] == {
        "kind": "lightning_node",
        "transport": "socket",
        "socket_path": net.rpc_socket,
    }
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.unique_id == net.node_id
    assert entry.state is ConfigEntryState.LOADED

    # The same node again, over CLNRest this time: refused.
    flow_id = await _start(hass, "rest")
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "url": net.rest_url,
            "rune": net.rune,
            "fingerprint": net.cert_fingerprint,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_rest_errors_then_creates_the_entry(
    hass: HomeAssistant, net: LightningSim, tolerate_failed_handshakes: None
) -> None:
    flow_id = await _start(hass, "rest")
    good = {"url": net.rest_url, "rune": net.rune, "fingerprint": net.cert_fingerprint}

    async def submit(**changes: Any) -> dict[str, Any]:
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**good, **changes}
        )
        return dict(result)

    assert (await submit(rune="AAAA" * 12))["errors"] == {"base": "invalid_auth"}
    assert (await submit(fingerprint="00" * 32))["errors"] == {
        "base": "invalid_certificate"
    }
    # No fingerprint: the self-signed certificate does not verify.
    no_pin = dict(good)
    no_pin.pop("fingerprint")
    result = await hass.config_entries.flow.async_configure(flow_id, no_pin)
    assert result["errors"] == {"base": "invalid_certificate"}
    assert (await submit(fingerprint="xyz"))["errors"] == {
        "fingerprint": "invalid_fingerprint"
    }
    assert (await submit(url="https://127.0.0.1:1"))["errors"] == {
        "base": "cannot_connect"
    }
    for url in ("file:///etc/passwd", "not a url", "ftp://node", "https://:3010"):
        assert (await submit(url=url))["errors"] == {"url": "invalid_url"}
    # Colons and upper case are fine in a fingerprint.
    pretty = ":".join(net.cert_fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    result = await submit(fingerprint=pretty)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "kind": "lightning_node",
        "transport": "rest",
        "url": net.rest_url,
        "rune": net.rune,
        "fingerprint": net.cert_fingerprint,
    }
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_rejected_rune_starts_reauth(
    hass: HomeAssistant, net: LightningSim
) -> None:
    """The node refuses the rune: setup fails with reauth; a new rune fixes it."""
    net.reject_runes()
    entry = await add_node(hass, net, "rest", expect=ConfigEntryState.SETUP_ERROR)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, None)
    assert result["step_id"] == "reauth_confirm_lightning"
    result = await hass.config_entries.flow.async_configure(flow_id, {"rune": net.rune})
    assert result["errors"] == {"base": "invalid_auth"}
    net.clear_faults()
    fresh = (await net.ours.call("createrune", {}))["rune"]
    result = await hass.config_entries.flow.async_configure(flow_id, {"rune": fresh})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data["rune"] == fresh
    assert entry.state is ConfigEntryState.LOADED


async def test_rune_rejected_while_running_starts_reauth(
    hass: HomeAssistant, net: LightningSim
) -> None:
    entry = await add_node(hass, net, "rest")
    net.reject_runes()
    await entry.runtime_data.coordinator.async_refresh()  # type: ignore[attr-defined]
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_reconfigure(
    hass: HomeAssistant, net: LightningSim, tmp_path: Any
) -> None:
    entry = await add_node(hass, net, "socket")
    result = await entry.start_reconfigure_flow(hass)  # type: ignore[attr-defined]
    assert result["step_id"] == "reconfigure_lightning_node"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"socket_path": str(tmp_path / "nothing")}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    # A neighbour's node answers there: another node, refused.
    n1 = net.neighbours[0]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"socket_path": n1.rpc_socket}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_node"
    assert entry.data["socket_path"] == net.rpc_socket


async def test_reconfigure_moves_to_a_new_socket_path(
    hass: HomeAssistant, net: LightningSim, tmp_path: Any
) -> None:
    entry = await add_node(hass, net, "socket")
    link = tmp_path / "rpc-link"
    link.symlink_to(net.rpc_socket)
    result = await entry.start_reconfigure_flow(hass)  # type: ignore[attr-defined]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"socket_path": str(link)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["socket_path"] == str(link)
    assert entry.state is ConfigEntryState.LOADED


async def test_neighbour_subentry_flow(hass: HomeAssistant, net: LightningSim) -> None:
    entry = await add_node(hass, net, "socket")
    n1, n2 = net.neighbours
    set_meter(hass, n1, 10)

    async def start() -> str:
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "neighbour"),
            context={"source": config_entries.SOURCE_USER},
        )
        assert result["type"] is FlowResultType.FORM
        return str(result["flow_id"])

    base = {
        "name": "Alice",
        "direction": "we_pay",
        "meter_entity": "sensor.meter_neighbour_1",
        "min_settlement_sats": 1,
    }
    flow_id = await start()
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**base, "offer": "lno1nonsense"}
    )
    assert result["errors"] == {
        "price_sats_per_kwh": "price_required",
        "offer": "invalid_offer",
    }
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**base, "name": "  ", "price_sats_per_kwh": 100, "offer": n1.offer}
    )
    assert result["errors"] == {"name": "empty_name"}
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**base, "price_sats_per_kwh": 100}
    )
    assert result["errors"] == {"base": "offer_or_node_id"}
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**base, "price_sats_per_kwh": 100, "node_id": "02abc"}
    )
    assert result["errors"] == {"node_id": "invalid_node_id"}
    result = await hass.config_entries.subentries.async_configure(
        flow_id,
        {**base, "price_sats_per_kwh": 100, "offer": n1.offer, "cap_per_day_sats": 500},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    sub = next(iter(entry.subentries.values()))
    assert sub.unique_id == f"we_pay:{n1.node_id}"
    assert sub.data["pay_method"] == "offer"
    assert sub.data["cap_per_day_sats"] == 500
    assert sub.data["price_mode"] == "fixed"
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.alice_paid") is not None

    # The same offer again: already configured. Keysend to n2: fine.
    flow_id = await start()
    result = await hass.config_entries.subentries.async_configure(
        flow_id, {**base, "price_sats_per_kwh": 100, "offer": n1.offer}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    flow_id = await start()
    result = await hass.config_entries.subentries.async_configure(
        flow_id,
        {
            **base,
            "name": "Bob",
            "meter_entity": "sensor.meter_neighbour_2",
            "price_entity": "sensor.price",
            "node_id": n2.node_id,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    bob = next(s for s in entry.subentries.values() if s.title == "Bob")
    assert bob.data["pay_method"] == "keysend"
    assert bob.data["price_mode"] == "sensor"

    # Reconfigure Bob: a fixed price now.
    await hass.async_block_till_done()
    result = await entry.start_subentry_reconfigure_flow(  # type: ignore[attr-defined]
        hass, bob.subentry_id
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            k: v
            for k, v in {**bob.data, "price_sats_per_kwh": 55}.items()
            if k
            in ("name", "direction", "node_id", "meter_entity", "price_sats_per_kwh")
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    bob = entry.subentries[bob.subentry_id]
    assert bob.data["price_sats_per_kwh"] == 55
    assert bob.data["price_mode"] == "fixed"
    assert "price_entity" not in bob.data
