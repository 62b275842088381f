"""The grid signal config flow against openleadr's VTN: register, errors, options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.grid_signal import SimulatedVtn, free_port

from .conftest import VEN_NAME, add_entry, unload_all


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


async def _form(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert "grid_signal" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "grid_signal"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "grid_signal"
    return result["flow_id"]


async def _submit(hass: HomeAssistant, flow_id: str, **data: Any) -> dict[str, Any]:
    return await hass.config_entries.flow.async_configure(flow_id, data)


async def test_registers_and_creates_the_entry(
    hass: HomeAssistant, vtn: SimulatedVtn
) -> None:
    """Registering succeeds: the entry is made, loads and refuses a duplicate."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url + "/", ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"{VEN_NAME} @ 127.0.0.1"
    assert result["data"] == {
        "kind": "grid_signal",
        "vtn_url": vtn.url,
        "ven_name": VEN_NAME,
    }
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.unique_id == f"{vtn.url}#{VEN_NAME}"
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert VEN_NAME in vtn.ven_ids

    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_nothing_listening(hass: HomeAssistant, socket_enabled: None) -> None:
    """No VTN at the URL: cannot_connect."""
    flow_id = await _form(hass)
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    result = await _submit(hass, flow_id, vtn_url=url, ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_rejected(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """The VTN refuses this VEN: rejected."""
    vtn.reject.add("stranger")
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name="stranger")
    assert result["errors"] == {"base": "rejected"}


async def test_certificate_mismatch(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """A fingerprint is expected but the VTN's messages are not signed with it."""
    flow_id = await _form(hass)
    result = await _submit(
        hass,
        flow_id,
        vtn_url=vtn.url,
        ven_name=VEN_NAME,
        vtn_fingerprint="00:11:22:33:44:55:66:77:88:99",
    )
    assert result["errors"] == {"base": "certificate_mismatch"}
    assert VEN_NAME not in vtn.ven_ids


async def test_certificate_files(
    hass: HomeAssistant, vtn: SimulatedVtn, tmp_path: Any
) -> None:
    """A certificate without its key, or files that do not exist, are refused."""
    flow_id = await _form(hass)
    result = await _submit(
        hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME, client_cert="/nope.pem"
    )
    assert result["errors"] == {"base": "certificate_incomplete"}
    result = await _submit(
        hass,
        flow_id,
        vtn_url=vtn.url,
        ven_name=VEN_NAME,
        client_cert=str(tmp_path / "missing.pem"),
        client_key=str(tmp_path / "missing.key"),
    )
    assert result["errors"] == {"base": "unreadable_certificate"}


async def test_reconfigure(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """A new VEN name registers again and becomes the entry's identity."""
    entry = await add_entry(hass, vtn)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_grid_signal"
    vtn.reject.add("renamed-bad")
    result = await _submit(
        hass, result["flow_id"], vtn_url=vtn.url, ven_name="renamed-bad"
    )
    assert result["errors"] == {"base": "rejected"}
    result = await _submit(hass, result["flow_id"], vtn_url=vtn.url, ven_name="barn")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["ven_name"] == "barn"
    assert entry.unique_id == f"{vtn.url}#barn"
    assert "barn" in vtn.ven_ids


async def test_options_pick_the_telemetry_sensor(
    hass: HomeAssistant, vtn: SimulatedVtn
) -> None:
    """The options flow stores the power sensor to report."""
    entry = await add_entry(hass, vtn)
    hass.states.async_set("sensor.site_power", "100", {"device_class": "power"})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "grid_signal"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"telemetry_sensor": "sensor.site_power"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {"telemetry_sensor": "sensor.site_power"}
    assert entry.state is config_entries.ConfigEntryState.LOADED
