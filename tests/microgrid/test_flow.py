"""The microgrid config flow against the simulated site (real pymodbus, no mocks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import socket
from typing import Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.microgrid.detect import (
    DetectedDevice,
    device_name,
    entry_title,
)
from simulators.microgrid import (
    GENERATOR_UNIT_ID,
    VICTRON_UNIT_ID,
    MicrogridSite,
    running_microgrid,
)
from tests.flows import open_form

from .conftest import GENSET_SERIAL, GX_SERIAL, INVERTER_SERIAL, unload_all


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


async def _form(hass: HomeAssistant) -> str:
    return await open_form(hass, "microgrid")


async def _submit(
    hass: HomeAssistant, flow_id: str, port: int, unit_id: int = 1
) -> dict[str, Any]:
    return await hass.config_entries.flow.async_configure(
        flow_id, {"host": "127.0.0.1", "port": port, "unit_id": unit_id}
    )


async def test_detects_sunspec_and_creates_the_entry(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """The flow says what it found, then adds it; the entry loads."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, grid.port)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "microgrid_confirm"
    placeholders = result["description_placeholders"]
    assert placeholders["kind"] == "SunSpec"
    assert placeholders["manufacturer"] == "HashGrid Sim"
    assert placeholders["model"] == "HG-Hybrid-6K"
    assert placeholders["serial"] == INVERTER_SERIAL

    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "SunSpec inverter HashGrid Sim HG-Hybrid-6K"
    assert result["data"] == {
        "kind": "microgrid",
        "host": "127.0.0.1",
        "port": grid.port,
        "unit_id": 1,
        "device": "sunspec",
    }
    assert result["options"]["policy"] == "battery_first"
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.unique_id == INVERTER_SERIAL
    assert entry.state is config_entries.ConfigEntryState.LOADED

    # the same device again is refused
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, grid.port)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_detects_a_victron_gx(hass: HomeAssistant, grid: MicrogridSite) -> None:
    """Unit 100: a Victron GX."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, grid.port, VICTRON_UNIT_ID)
    assert result["step_id"] == "microgrid_confirm"
    assert result["description_placeholders"]["kind"] == "Victron GX"
    assert result["description_placeholders"]["manufacturer"] == "Victron Energy"
    assert result["description_placeholders"]["serial"] == GX_SERIAL
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Victron GX {GX_SERIAL}"
    assert result["data"]["device"] == "victron"
    assert result["data"]["unit_id"] == VICTRON_UNIT_ID
    await hass.async_block_till_done()
    assert result["result"].state is config_entries.ConfigEntryState.LOADED


async def test_a_genset_is_titled_as_a_generator(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """A SunSpec device with AC output only: a generator; its device is its product."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, grid.port, GENERATOR_UNIT_ID)
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["title"] == "SunSpec generator HashGrid Sim HG-FlareGen-3K"
    await hass.async_block_till_done()
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, GENSET_SERIAL), result["result"].entry_id
    )
    assert device is not None
    assert device.name == "HashGrid Sim HG-FlareGen-3K"


@pytest.mark.parametrize(
    ("found", "title", "name"),
    [
        (
            DetectedDevice(
                "victron", "10.0.0.7", 502, 100, "Victron Energy", "GX", None
            ),
            "Victron GX",
            "Victron GX",
        ),
        (
            DetectedDevice(
                "sunspec", "10.0.0.7", 502, 1, None, None, "SN1", models=(1, 103, 160)
            ),
            "SunSpec inverter SN1",
            "SunSpec inverter",
        ),
        (
            DetectedDevice(
                "sunspec", "10.0.0.7", 502, 1, None, None, None, models=(1, 103)
            ),
            "SunSpec generator",
            "SunSpec generator",
        ),
    ],
)
def test_names_without_a_product_never_use_the_address(
    found: DetectedDevice, title: str, name: str
) -> None:
    """A device that names no product or serial is called by its kind, not its IP."""
    assert entry_title(found) == title
    assert device_name(found) == name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_nothing_listening_is_cannot_connect(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A port where nothing listens: cannot_connect, and the form again."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, _free_port())
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["step_id"] == "microgrid"


@pytest.mark.parametrize(
    ("fault", "error"), [("timeout", "timeout"), ("illegal_address", "not_supported")]
)
async def test_faulty_device_is_a_form_error(
    hass: HomeAssistant, grid: MicrogridSite, fault: str, error: str
) -> None:
    """A device that does not answer, or answers illegal address to everything."""
    setattr(grid.fault(1), fault, True)
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, grid.port)
    assert result["errors"] == {"base": error}
    assert hass.config_entries.async_entries(DOMAIN) == []
    # fixed: the same flow goes on
    grid.clear_faults()
    result = await _submit(hass, flow_id, grid.port)
    assert result["step_id"] == "microgrid_confirm"


async def test_unknown_unit_is_the_gateways_error(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """A unit id with no device behind the gateway: said so, not "not supported"."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, grid.port, 7)
    assert result["errors"] == {"base": "gateway_target_failed"}


async def _created(hass: HomeAssistant, port: int, unit_id: int = 1) -> Any:
    flow_id = await _form(hass)
    await _submit(hass, flow_id, port, unit_id)
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    await hass.async_block_till_done()
    return result["result"]


async def test_reconfigure_keeps_the_device(
    hass: HomeAssistant, socket_enabled: None, fast_timeouts: None
) -> None:
    """A new address of the same device is taken; another device is refused."""
    async with running_microgrid(tick_interval=None, victron_port=0) as grid:
        entry = await _created(hass, grid.port)
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={
                "source": config_entries.SOURCE_RECONFIGURE,
                "entry_id": entry.entry_id,
            },
        )
        assert result["step_id"] == "reconfigure_microgrid"
        flow_id = result["flow_id"]
        result = await _submit(hass, flow_id, _free_port())
        assert result["errors"] == {"base": "cannot_connect"}

        # the second listener of the same site: the same inverter
        assert grid.victron_port is not None
        result = await _submit(hass, flow_id, grid.victron_port)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert entry.data["port"] == grid.victron_port
        assert entry.state is config_entries.ConfigEntryState.LOADED

        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={
                "source": config_entries.SOURCE_RECONFIGURE,
                "entry_id": entry.entry_id,
            },
        )
        result = await _submit(hass, result["flow_id"], grid.port, GENERATOR_UNIT_ID)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "wrong_device"
        assert entry.data["unit_id"] == 1
        assert entry.title == "SunSpec inverter HashGrid Sim HG-Hybrid-6K"  # kept
        await unload_all(hass)


async def test_options_flow(hass: HomeAssistant, grid: MicrogridSite) -> None:
    """The options: policy, target SoC, shortfall threshold and delays."""
    entry = await _created(hass, grid.port)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "microgrid"
    options = {
        "policy": "mining_first",
        "target_soc": 60,
        "shortfall_threshold_w": 200,
        "shortfall_on_delay_s": 30,
        "shortfall_off_delay_s": 120,
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == options
    assert entry.state is config_entries.ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert coordinator.policy == "mining_first"
    assert coordinator.shortfall.threshold_w == 200
    assert coordinator.shortfall.on_delay_s == 30
