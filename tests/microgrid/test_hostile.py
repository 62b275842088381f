"""Microgrid entries against a hostile Modbus-TCP server, one misbehaviour at a time.

Real Home Assistant, real pymodbus, the simulated site with its fault knobs
(issue 19, item 9). Each test asserts what a user sees: entity states, form
errors, log lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import logging
import time
from typing import Any

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.microgrid import const
from custom_components.hashgrid.microgrid.runtime import microgrid_runtime
from custom_components.hashgrid.microgrid.sunspec import MAX_SNAPSHOT_REGISTERS
from simulators.microgrid import (
    INVERTER_MODELS,
    INVERTER_UNIT_ID,
    VICTRON_UNIT_ID,
    MicrogridSite,
    running_microgrid,
)

from .conftest import GX_SERIAL, INVERTER_SERIAL, add_entry, unload_all

INV = INVERTER_UNIT_ID


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


def _registered(hass: HomeAssistant, unique_id: str, platform: str = "sensor") -> bool:
    return (
        er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id) is not None
    )


def _state(hass: HomeAssistant, unique_id: str, platform: str = "sensor") -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    found = hass.states.get(entity_id)
    assert found is not None
    return found.state


def _value(hass: HomeAssistant, unique_id: str) -> float:
    return float(_state(hass, unique_id))


def inv(key: str) -> str:
    return f"{INVERTER_SERIAL}_{key}"


def gx(key: str) -> str:
    return f"{GX_SERIAL}_{key}"


async def poll(hass: HomeAssistant, entry: ConfigEntry) -> None:
    await microgrid_runtime(entry).coordinator.async_refresh()
    await hass.async_block_till_done()


async def _form(hass: HomeAssistant, port: int, unit_id: int = 1) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "microgrid"}
    )
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": "127.0.0.1", "port": port, "unit_id": unit_id}
    )


def _header(site: MicrogridSite, model_id: int) -> int:
    """Address of a model's ID register in the inverter's map."""
    return site.inverter.image.model(model_id).start


# --------------------------------------------------------------- short models


async def test_models_cut_short_are_unknown_and_fall_back(
    hass: HomeAssistant, socket_enabled: None, fast_timeouts: None
) -> None:
    """103, 802 and 203 declared shorter than their points: never zeros.

    AC power falls back to 701, SoC to 124, the DC bus and battery power to
    714's battery port; the grid meter's power is gone, so there is no load and
    no surplus rather than a surplus computed from a grid power of 0 W.
    """
    lengths = {103: 12, 802: 20, 203: 15}  # W (103, 203), SoC's SF, V, W (802) cut
    async with running_microgrid(tick_interval=None, inverter_lengths=lengths) as site:
        site.advance(60)
        entry = await add_entry(hass, site)
        model = site.model
        assert entry.state is ConfigEntryState.LOADED
        assert _value(hass, inv("inverter_power")) == round(model.inverter_ac_w)
        assert _value(hass, inv("battery_soc")) == round(model.soc * 100, 1)
        assert _value(hass, inv("dc_bus_voltage")) == pytest.approx(
            model.battery_voltage_v, abs=0.05
        )
        assert _value(hass, inv("battery_power")) == round(model.battery_w)
        assert _value(hass, inv("pv_power")) == pytest.approx(model.pv_w, abs=1)
        # no grid power: no grid, load or surplus entity, nothing fed as 0 W
        for key in ("grid_power", "load_power", "surplus_power"):
            assert not _registered(hass, inv(key)), key
        coordinator = microgrid_runtime(entry).coordinator
        assert coordinator.data.grid_power_w is None
        assert coordinator.data.surplus is None
        await unload_all(hass)


async def test_common_model_shorter_than_its_strings_is_detected(
    hass: HomeAssistant, socket_enabled: None, fast_timeouts: None
) -> None:
    """Model 1 cut inside its serial: detection goes on, the serial is unknown."""
    async with running_microgrid(tick_interval=None, inverter_lengths={1: 40}) as site:
        result = await _form(hass, site.port)
        assert result["step_id"] == "microgrid_confirm"
        placeholders = result["description_placeholders"]
        assert placeholders["manufacturer"] == "HashGrid Sim"
        assert placeholders["serial"] == "?"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert result["result"].unique_id == f"127.0.0.1:{site.port}/1"
        assert result["result"].state is ConfigEntryState.LOADED
        await unload_all(hass)


# --------------------------------------------------------------- the chain walk


@pytest.mark.parametrize("codes", [[0x02], [0x06, 0x06], [0x04]])
async def test_a_stray_exception_in_the_chain_walk_is_retried(
    hass: HomeAssistant, grid: MicrogridSite, codes: list[int]
) -> None:
    """One "illegal address" (or busy, or failure) mid-walk is no end of the map."""
    grid.fault(INV).flaky[_header(grid, 160)] = list(codes)
    entry = await add_entry(hass, grid)
    assert entry.state is ConfigEntryState.LOADED
    assert not grid.fault(INV).flaky[_header(grid, 160)]  # it did answer them
    assert _value(hass, inv("pv_power")) > 0
    assert _registered(hass, inv("battery_soc"))
    assert _registered(hass, inv("grid_power"))
    assert not _registered(hass, inv("generator_power"))  # not demoted


async def test_a_chain_that_looks_different_is_walked_again(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """The walk ends early (an "illegal address" that outlasts its retries and
    the first poll): the unconfirmed end is probed each poll; when a model
    answers there, the chain is walked again and the entry reloads with the
    inverter's entities."""
    grid.fault(INV).flaky[_header(grid, 160)] = [0x02] * 4
    entry = await add_entry(hass, grid)
    # what the device showed at setup: models 1 and 103 only, a generator
    assert _registered(hass, inv("generator_power"))
    assert not _registered(hass, inv("pv_power"))

    await poll(hass, entry)  # a model where the map ended: walked again, reload
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert _value(hass, inv("pv_power")) > 0
    assert _registered(hass, inv("battery_soc"))
    device = microgrid_runtime(entry).coordinator.device
    assert device is not None
    assert 160 in device.models


async def test_a_chain_past_65535_is_a_form_error(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """A model length that runs past the address space: named, no ValueError."""
    grid.fault(INV).garbage[_header(grid, 203) + 1] = 0xF000
    result = await _form(hass, grid.port)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "malformed_map"}


async def test_a_chain_filling_the_address_space_stays_within_budget(
    hass: HomeAssistant,
    socket_enabled: None,
    fast_timeouts: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 160 of 1200 modules (24,000 registers): left out, said once; PV from 714."""
    chain = [
        (mid, {"module": 1200} if mid == 160 else rep) for mid, rep in INVERTER_MODELS
    ]
    async with running_microgrid(tick_interval=None, inverter_chain=chain) as site:
        site.advance(60)
        entry = await add_entry(hass, site)
        assert _value(hass, inv("pv_power")) == round(site.model.pv_w)
        reads = site.reads[INV]
        await poll(hass, entry)
        assert site.reads[INV] - reads <= MAX_SNAPSHOT_REGISTERS // 125
        assert caplog.text.count("too large to read every poll") == 1
        assert "160 (24" in caplog.text
        await unload_all(hass)


# --------------------------------------------------------------- a poll's bounds


async def test_a_poll_has_a_deadline(
    hass: HomeAssistant,
    inverter: ConfigEntry,
    grid: MicrogridSite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each answer in time, all of them too late: unavailable, not old values."""
    monkeypatch.setattr(const, "POLL_DEADLINE", 0.4)
    grid.fault(INV).delay_s = 0.15  # < the 0.3 s request timeout; 6 reads a poll
    started = time.monotonic()
    await poll(hass, inverter)
    assert time.monotonic() - started < 1.0
    assert _state(hass, inv("pv_power")) == STATE_UNAVAILABLE
    grid.clear_faults()
    await poll(hass, inverter)
    assert _value(hass, inv("pv_power")) > 0


async def test_cancelling_a_poll_cancels_the_modbus_request(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """A poll cancelled mid-request leaves no pymodbus request running."""
    coordinator = microgrid_runtime(inverter).coordinator
    grid.fault(INV).delay_s = 0.2
    task = asyncio.create_task(coordinator.async_refresh())
    await asyncio.sleep(0.05)
    assert coordinator.transport.connected
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    pending = [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "execute" in t.get_coro().__qualname__  # type: ignore[union-attr]
    ]
    assert pending == []
    assert not coordinator.transport.connected  # no answer can be due on it
    grid.clear_faults()
    await poll(hass, inverter)
    assert _value(hass, inv("pv_power")) > 0
    await asyncio.sleep(0.3)  # the simulator's delayed answer to nobody ends


# --------------------------------------------------------------- values


async def test_energy_counters_going_backwards_are_unknown(
    hass: HomeAssistant,
    inverter: ConfigEntry,
    grid: MicrogridSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Import 2000 kWh -> 1 kWh: unknown (said once), never the new total."""
    before = _value(hass, inv("grid_import_energy"))
    assert before >= 2000
    grid.inverter.lifetime_wh["grid_imp"] = 1000.0
    grid.refresh()
    for _ in range(2):
        await poll(hass, inverter)
        assert _state(hass, inv("grid_import_energy")) == STATE_UNKNOWN
    assert caplog.text.count("grid_import_kwh went backwards") == 1
    assert _value(hass, inv("pv_energy")) > 0  # the others go on
    grid.inverter.lifetime_wh["grid_imp"] = 2_000_000.0
    grid.refresh()
    await poll(hass, inverter)
    assert _value(hass, inv("grid_import_energy")) >= before


async def test_a_gx_answering_all_ones_or_zeros(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """0xFFFF everywhere is not -1 W a phase; 0 everywhere is not 0 V / 0 %."""
    faults = grid.fault(VICTRON_UNIT_ID)
    for fill in (0xFFFF, 0):  # not taken for a GX at setup
        faults.fill = fill
        result = await _form(hass, grid.port, VICTRON_UNIT_ID)
        assert result["errors"] == {"base": "not_supported"}, fill
    faults.clear()
    entry = await add_entry(
        hass, grid, unit_id=VICTRON_UNIT_ID, device="victron", serial=GX_SERIAL
    )
    assert _value(hass, gx("dc_bus_voltage")) > 40

    faults.fill = 0xFFFF
    await poll(hass, entry)
    for key in ("grid_power", "battery_power", "dc_bus_voltage", "battery_soc"):
        assert _state(hass, gx(key)) == STATE_UNKNOWN, key

    faults.fill = 0
    await poll(hass, entry)
    for key in ("dc_bus_voltage", "battery_soc", "battery_power", "battery_current"):
        assert _state(hass, gx(key)) == STATE_UNKNOWN, key

    faults.clear()
    await poll(hass, entry)
    assert _value(hass, gx("battery_soc")) > 0


# --------------------------------------------------------------- logs and errors


async def test_a_silent_device_is_one_log_line(
    hass: HomeAssistant,
    inverter: ConfigEntry,
    grid: MicrogridSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No pymodbus ERROR per poll: HashGrid's one line when it goes, one back."""
    caplog.set_level(logging.INFO)
    grid.fault(INV).timeout = True
    for _ in range(3):
        await poll(hass, inverter)
    assert _state(hass, inv("pv_power")) == STATE_UNAVAILABLE
    noisy = [
        r
        for r in caplog.records
        if r.name.startswith("pymodbus") and r.levelno >= logging.WARNING
    ]
    assert noisy == []
    assert caplog.text.count("Error fetching hashgrid microgrid Hybrid data") == 1
    grid.clear_faults()
    await poll(hass, inverter)
    assert caplog.text.count("Fetching hashgrid microgrid Hybrid data recovered") == 1


async def test_malformed_frames_are_contained(
    hass: HomeAssistant,
    inverter: ConfigEntry,
    grid: MicrogridSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply pymodbus cannot decode: no asyncio traceback, one line, unavailable."""
    grid.fault(INV).malformed = True
    for _ in range(3):
        await poll(hass, inverter)
    assert grid.malformed >= 3
    assert _state(hass, inv("pv_power")) == STATE_UNAVAILABLE
    assert "Fatal error" not in caplog.text
    assert "data_received" not in caplog.text
    noisy = [
        r
        for r in caplog.records
        if r.name.startswith(("pymodbus", "asyncio")) and r.levelno >= logging.WARNING
    ]
    assert noisy == []
    assert caplog.text.count("Error fetching hashgrid microgrid Hybrid data") == 1
    result = await _form(hass, grid.port)
    assert result["errors"] == {"base": "malformed_reply"}
    grid.clear_faults()
    await poll(hass, inverter)
    assert _value(hass, inv("pv_power")) > 0


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (0x0A, "gateway_path_unavailable"),
        (0x0B, "gateway_target_failed"),
        (0x06, "device_busy"),
        (0x04, "device_failure"),
    ],
)
async def test_device_exceptions_at_setup_are_named(
    hass: HomeAssistant, grid: MicrogridSite, code: int, error: str
) -> None:
    """The device's own exception, not "neither SunSpec nor a Victron GX"."""
    grid.fault(INV).exception = code
    # 0x0A sends detection on to a GX's unit 100 (issue 14, 7): none answers
    grid.fault(VICTRON_UNIT_ID).exception = code
    result = await _form(hass, grid.port)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert hass.config_entries.async_entries(DOMAIN) == []
