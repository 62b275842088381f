"""Microgrid entries in a real Home Assistant against the simulated site (real pymodbus)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import logging
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.microgrid import coordinator as coordinator_module
from custom_components.hashgrid.microgrid.runtime import microgrid_runtime
from simulators.microgrid import (
    GENERATOR_UNIT_ID,
    VICTRON_UNIT_ID,
    MicrogridSite,
)

from .conftest import (
    GENSET_SERIAL,
    GX_SERIAL,
    IMMEDIATE,
    INVERTER_SERIAL,
    add_entry,
    unload_all,
)


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """Return the entity id of a HashGrid entity by its unique id."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


def value(hass: HomeAssistant, platform: str, unique_id: str) -> float:
    """Return a numeric state."""
    state = hass.states.get(entity_id(hass, platform, unique_id))
    assert state is not None
    return float(state.state)


def state(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """Return a state as it is."""
    found = hass.states.get(entity_id(hass, platform, unique_id))
    assert found is not None
    return found.state


async def poll(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Poll the device now, as the 5 s timer would."""
    await microgrid_runtime(entry).coordinator.async_refresh()
    await hass.async_block_till_done()


def inv(key: str) -> str:
    """Unique id of one of the inverter's entities."""
    return f"{INVERTER_SERIAL}_{key}"


async def test_sunspec_entities_follow_the_model(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """PV, battery, grid and load read as the model has them; counters increase."""
    assert inverter.state is ConfigEntryState.LOADED
    model = grid.model
    # two MPPT strings, each rounded to a watt
    assert value(hass, "sensor", inv("pv_power")) == pytest.approx(model.pv_w, abs=1)
    assert value(hass, "sensor", inv("battery_soc")) == round(model.soc * 100, 1)
    assert value(hass, "sensor", inv("battery_power")) == round(model.battery_w)
    assert value(hass, "sensor", inv("grid_power")) == round(model.grid_w)
    assert value(hass, "sensor", inv("dc_bus_voltage")) == pytest.approx(
        model.battery_voltage_v, abs=0.01
    )
    assert value(hass, "sensor", inv("load_power")) == pytest.approx(
        model.load_w, abs=2
    )
    energy = hass.states.get(entity_id(hass, "sensor", inv("pv_energy")))
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["unit_of_measurement"] == "kWh"
    assert energy.attributes["device_class"] == "energy"

    before = {
        key: value(hass, "sensor", inv(key))
        for key in ("pv_energy", "battery_charged_energy", "inverter_energy")
    }
    grid.advance(600)
    await poll(hass, inverter)
    for key, old in before.items():
        assert value(hass, "sensor", inv(key)) > old, key
    # no genset on the inverter, no ESS setpoint on SunSpec
    registry = er.async_get(hass)
    assert not registry.async_get_entity_id("sensor", DOMAIN, inv("generator_power"))
    assert not registry.async_get_entity_id("number", DOMAIN, inv("ess_grid_setpoint"))

    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, INVERTER_SERIAL), inverter.entry_id
    )
    assert device is not None
    assert device.manufacturer == "HashGrid Sim"
    assert device.model == "HG-Hybrid-6K"
    assert device.serial_number == INVERTER_SERIAL


async def test_entity_registry_snapshot(
    hass: HomeAssistant, grid: MicrogridSite, snapshot: SnapshotAssertion
) -> None:
    """The entities of an inverter, a genset and a GX: names, classes, units."""
    entries = [
        await add_entry(hass, grid),
        await add_entry(
            hass, grid, unit_id=GENERATOR_UNIT_ID, serial=GENSET_SERIAL, title="Genset"
        ),
        await add_entry(
            hass,
            grid,
            unit_id=VICTRON_UNIT_ID,
            device="victron",
            serial=GX_SERIAL,
            title="GX",
        ),
    ]
    registry = er.async_get(hass)
    rows = sorted(
        (
            e.entity_id,
            e.unique_id,
            e.translation_key,
            e.original_device_class,
            e.unit_of_measurement,
            e.entity_category,
            hass.states.get(e.entity_id).attributes.get("state_class"),
        )
        for entry in entries
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    )
    assert rows == snapshot
    # devices are named as their products (not by the entries' titles), never
    # by an address
    devices = dr.async_get(hass)
    names = sorted(
        str(d.name)
        for entry in entries
        for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
    )
    assert names == [
        "HashGrid Sim HG-FlareGen-3K",
        "HashGrid Sim HG-Hybrid-6K",
        "Victron GX",
    ]
    friendly = [hass.states.get(row[0]).attributes["friendly_name"] for row in rows]
    assert "Victron GX Battery power" in friendly
    assert not [n for n in names + friendly if "127.0.0.1" in n or str(grid.port) in n]


async def test_export_limit_write_reaches_the_device(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """A number write changes the simulated inverter; out of range writes nothing."""
    limit_id = entity_id(hass, "number", inv("export_limit"))
    limit = hass.states.get(limit_id)
    assert float(limit.state) == 6000  # no limit: the nameplate maximum
    assert limit.attributes["max"] == 6000
    assert limit.attributes["unit_of_measurement"] == "W"

    await hass.services.async_call(
        "number", "set_value", {"entity_id": limit_id, "value": 2500}, blocking=True
    )
    assert grid.model.controls.export_limit_w == pytest.approx(2500, abs=1)
    await poll(hass, inverter)
    assert float(hass.states.get(limit_id).state) == pytest.approx(2500, abs=1)
    grid.advance(30)
    await poll(hass, inverter)
    assert value(hass, "sensor", inv("inverter_power")) <= 2500

    writes = grid.writes[1]
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "number", "set_value", {"entity_id": limit_id, "value": 7000}, blocking=True
        )
    # below HA's own range check: our translated refusal, nothing written
    number = hass.data["entity_components"]["number"].get_entity(limit_id)
    with pytest.raises(ServiceValidationError) as err:
        await number.async_set_native_value(-1)
    assert err.value.translation_key == "microgrid_value_out_of_range"
    assert grid.writes[1] == writes
    assert grid.model.controls.export_limit_w == pytest.approx(2500, abs=1)


async def test_battery_limits_write_reaches_the_device(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """Max charge / discharge power go to SunSpec 124 and limit the battery."""
    charge_id = entity_id(hass, "number", inv("max_charge_power"))
    discharge_id = entity_id(hass, "number", inv("max_discharge_power"))
    assert float(hass.states.get(charge_id).state) == 5000
    await hass.services.async_call(
        "number", "set_value", {"entity_id": charge_id, "value": 1000}, blocking=True
    )
    await hass.services.async_call(
        "number", "set_value", {"entity_id": discharge_id, "value": 1500}, blocking=True
    )
    assert grid.model.controls.max_charge_w == pytest.approx(1000, abs=1)
    assert grid.model.controls.max_discharge_w == pytest.approx(1500, abs=1)
    grid.advance(10)
    await poll(hass, inverter)
    assert float(hass.states.get(charge_id).state) == pytest.approx(1000, abs=1)
    assert value(hass, "sensor", inv("battery_power")) <= 1000

    writes = grid.writes[1]
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "number",
            "set_value",
            {"entity_id": charge_id, "value": 9000},
            blocking=True,
        )
    assert grid.writes[1] == writes


@pytest.mark.parametrize("fault", ["reset", "timeout", "illegal_address"])
async def test_device_going_away_makes_entities_unavailable(
    hass: HomeAssistant,
    inverter: ConfigEntry,
    grid: MicrogridSite,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    """Never stale: unavailable while the device fails, one log line each way."""
    pv_id = entity_id(hass, "sensor", inv("pv_power"))
    limit_id = entity_id(hass, "number", inv("export_limit"))
    caplog.set_level(logging.INFO, logger="custom_components.hashgrid")

    setattr(grid.fault(1), fault, True)
    await poll(hass, inverter)
    await poll(hass, inverter)
    assert hass.states.get(pv_id).state == STATE_UNAVAILABLE
    assert hass.states.get(limit_id).state == STATE_UNAVAILABLE
    assert caplog.text.count("Error fetching hashgrid microgrid Hybrid data") == 1

    grid.clear_faults()
    await poll(hass, inverter)
    assert float(hass.states.get(pv_id).state) > 0
    assert caplog.text.count("Fetching hashgrid microgrid Hybrid data recovered") == 1
    assert inverter.state is ConfigEntryState.LOADED


async def test_surplus_and_shortfall_follow_the_model(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """mining_first: surplus = PV - load, up to what the inverter's AC side
    can still deliver (its 6 kW rating less the load: noon's 8 kW of PV is
    more); at night it is a deficit: shortfall."""
    surplus_id = entity_id(hass, "sensor", inv("surplus_power"))
    shortfall_id = entity_id(hass, "binary_sensor", inv("shortfall"))
    pv = value(hass, "sensor", inv("pv_power"))
    load = value(hass, "sensor", inv("load_power"))
    rating = grid.model.params.inverter_max_w
    assert float(hass.states.get(surplus_id).state) == pytest.approx(
        min(pv - load, rating - load)
    )
    assert pv > rating  # the AC rating binds at noon
    assert pv - load > 0
    assert hass.states.get(shortfall_id).state == STATE_OFF
    # not a "Problem": its states are named "Short of power" / "Enough power"
    assert "device_class" not in hass.states.get(shortfall_id).attributes

    grid.advance(10 * 3600)  # 22:00: no sun
    await poll(hass, inverter)
    assert value(hass, "sensor", inv("pv_power")) == 0
    assert float(hass.states.get(surplus_id).state) == pytest.approx(
        -value(hass, "sensor", inv("load_power"))
    )
    assert hass.states.get(shortfall_id).state == STATE_ON


async def test_battery_first_reserves_the_charge_power(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """Below the target SoC the battery takes up to its 5 kW before mining."""
    entry = await add_entry(
        hass, grid, options={**IMMEDIATE, "policy": "battery_first", "target_soc": 90}
    )
    pv = value(hass, "sensor", inv("pv_power"))
    load = value(hass, "sensor", inv("load_power"))
    net = pv - load
    headroom = grid.model.params.inverter_max_w - load
    assert value(hass, "sensor", inv("battery_soc")) < 90
    assert value(hass, "sensor", inv("surplus_power")) == pytest.approx(
        min(net - min(net, 5000), headroom)
    )
    # the options flow changes the policy (the entry reloads)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "microgrid"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**IMMEDIATE, "policy": "mining_first"}
    )
    await hass.async_block_till_done()
    assert entry.options["policy"] == "mining_first"
    assert entry.state is ConfigEntryState.LOADED
    assert value(hass, "sensor", inv("surplus_power")) == pytest.approx(
        min(net, headroom)
    )


async def test_victron_gx_entities_and_kept_setpoint(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """A GX: live values; the ESS setpoint is written and kept; 0 releases it."""
    before_setup = time.monotonic()
    entry = await add_entry(
        hass,
        grid,
        unit_id=VICTRON_UNIT_ID,
        device="victron",
        serial=GX_SERIAL,
        title="GX",
    )
    model = grid.model

    def gx(key: str) -> float:
        return value(hass, "sensor", f"{GX_SERIAL}_{key}")

    assert gx("pv_power") == round(model.pv_w)
    assert gx("battery_soc") == int(model.soc * 100 + 0.5)
    assert gx("grid_power") == pytest.approx(model.grid_w, abs=2)
    assert gx("load_power") == pytest.approx(model.load_w, abs=2)
    assert gx("dc_bus_voltage") == pytest.approx(model.battery_voltage_v, abs=0.1)

    # the GX keeps no energy counters: HashGrid integrates its power readings
    assert gx("pv_energy") == 0
    await asyncio.sleep(0.05)
    await poll(hass, entry)
    # Between the setup's poll and this one: at least 0.05 s, at most all of it
    # (real time, on a machine that may be busy); the model stands still.
    elapsed_max = time.monotonic() - before_setup
    pv_kwh = gx("pv_energy")
    assert model.pv_w * 0.05 / 3.6e6 * 0.9 <= pv_kwh
    assert pv_kwh <= model.pv_w * elapsed_max / 3.6e6 * 1.1
    assert gx("battery_charged_energy") > 0
    energy = hass.states.get(entity_id(hass, "sensor", f"{GX_SERIAL}_pv_energy"))
    assert energy.attributes["state_class"] == "total_increasing"
    # kept across a reload
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert gx("pv_energy") == pytest.approx(pv_kwh)

    setpoint_id = entity_id(hass, "number", f"{GX_SERIAL}_ess_grid_setpoint")
    await hass.services.async_call(
        "number", "set_value", {"entity_id": setpoint_id, "value": 800}, blocking=True
    )
    runtime = microgrid_runtime(entry)
    assert runtime.keeper is not None
    assert runtime.keeper.active
    assert model.controls.ess_grid_setpoint_w == 800
    # Venus OS >= 3.50: the override (2716/2717), never the flash-backed 2700
    setting = "settings:/Settings/CGwacs/AcPowerSetPoint"
    assert grid.victron.override == 800
    assert grid.victron.path_writes.get(setting, 0) == 0
    await poll(hass, entry)
    assert float(hass.states.get(setpoint_id).state) == 800

    # 0 W is a setpoint like any other (zero feed-in), held
    await hass.services.async_call(
        "number", "set_value", {"entity_id": setpoint_id, "value": 0}, blocking=True
    )
    assert runtime.keeper.active
    assert model.controls.ess_grid_setpoint_w == 0
    # the release button hands control back to the GX's own setting (50 W)
    release_id = entity_id(hass, "button", f"{GX_SERIAL}_release_ess_grid_setpoint")
    await hass.services.async_call(
        "button", "press", {"entity_id": release_id}, blocking=True
    )
    assert not runtime.keeper.active
    assert model.controls.ess_grid_setpoint_w == 50
    await poll(hass, entry)
    assert float(hass.states.get(setpoint_id).state) == 50
    assert grid.victron.path_writes.get(setting, 0) == 0

    await hass.services.async_call(
        "number", "set_value", {"entity_id": setpoint_id, "value": -500}, blocking=True
    )
    assert runtime.keeper.active
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not runtime.keeper.active  # stopped at unload
    assert not runtime.coordinator.transport.connected


async def test_gx_energy_is_not_guessed_across_an_outage(
    hass: HomeAssistant, grid: MicrogridSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls that fail for longer than the gap limit add no energy for the gap."""
    # 3 polls (15 s) in production; 1 s here, so that real time can pass it
    monkeypatch.setattr(coordinator_module, "MAX_GAP_POLLS", 0.2)
    entry = await add_entry(
        hass, grid, unit_id=VICTRON_UNIT_ID, device="victron", serial=GX_SERIAL
    )
    pv_energy = entity_id(hass, "sensor", f"{GX_SERIAL}_pv_energy")
    assert grid.model.pv_w > 1000  # noon: a gap of seconds is worth energy
    await poll(hass, entry)
    before = float(hass.states.get(pv_energy).state)

    grid.fault(VICTRON_UNIT_ID).exception = 0x04  # the GX fails for a while
    await poll(hass, entry)
    assert hass.states.get(pv_energy).state == STATE_UNAVAILABLE
    await asyncio.sleep(1.5)
    grid.clear_faults()
    await poll(hass, entry)
    # back, with the energy it had: the outage's energy is not invented
    assert float(hass.states.get(pv_energy).state) == before
    await poll(hass, entry)  # then it counts again
    assert float(hass.states.get(pv_energy).state) > before


async def test_a_full_battery_at_rest_shows_0_w(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """A battery at rest is "0 W", not "-0 W" (802's sign is negated)."""
    grid.model.soc = 1.0  # full at noon: it takes nothing
    grid.advance(5)
    await poll(hass, inverter)
    assert grid.model.battery_w == 0
    shown = state(hass, "sensor", inv("battery_power"))
    assert float(shown) == 0
    assert not shown.startswith("-")


async def test_genset_is_a_generator(hass: HomeAssistant, grid: MicrogridSite) -> None:
    """A SunSpec device with only AC output is a generator: power and energy."""
    entry = await add_entry(
        hass, grid, unit_id=GENERATOR_UNIT_ID, serial=GENSET_SERIAL, title="Genset"
    )
    registry = er.async_get(hass)
    assert not registry.async_get_entity_id(
        "sensor", DOMAIN, f"{GENSET_SERIAL}_pv_power"
    )
    assert value(hass, "sensor", f"{GENSET_SERIAL}_generator_power") == 0
    energy = value(hass, "sensor", f"{GENSET_SERIAL}_generator_energy")
    grid.model.controls.generator_running = True
    grid.advance(600)
    await poll(hass, entry)
    assert value(hass, "sensor", f"{GENSET_SERIAL}_generator_power") == 3000
    assert value(hass, "sensor", f"{GENSET_SERIAL}_generator_energy") > energy


async def test_setup_retries_while_the_device_is_away(
    hass: HomeAssistant, grid: MicrogridSite
) -> None:
    """Nothing answers at setup: the entry retries, and closes what it opened."""
    grid.fault(1).illegal_address = True
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Hybrid",
        data={
            "kind": "microgrid",
            "host": "127.0.0.1",
            "port": grid.port,
            "unit_id": 1,
            "device": "sunspec",
        },
        options=IMMEDIATE,
        unique_id=INVERTER_SERIAL,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_diagnostics(
    hass: HomeAssistant, hass_client: Any, inverter: ConfigEntry
) -> None:
    """Diagnostics: the detected device and the last poll; the serial redacted."""
    diag = await get_diagnostics_for_config_entry(hass, hass_client, inverter)
    runtime = diag["runtime"]
    assert runtime["device"]["kind"] == "sunspec"
    assert runtime["device"]["serial"] == "**REDACTED**"
    assert 160 in runtime["device"]["models"]
    assert runtime["data"]["pv_power_w"] > 0
    assert runtime["policy"] == "mining_first"
    assert INVERTER_SERIAL not in str(diag)


async def test_garbage_registers(
    hass: HomeAssistant, inverter: ConfigEntry, grid: MicrogridSite
) -> None:
    """An implausible value is unknown; a broken model chain is unavailable + rescan."""
    coordinator = microgrid_runtime(inverter).coordinator
    sunspec = coordinator.sunspec
    assert sunspec is not None
    battery = sunspec.model_info(802)
    assert battery is not None
    layout = sunspec.layout(battery)
    assert layout is not None
    soc_id = entity_id(hass, "sensor", inv("battery_soc"))
    pv_id = entity_id(hass, "sensor", inv("pv_power"))

    # SoC 6553.4 %: dropped, the rest of the poll stands
    grid.fault(1).garbage[battery.address + layout.points["SoC"].offset] = 0xFFFE
    await poll(hass, inverter)
    assert hass.states.get(soc_id).state == STATE_UNKNOWN
    assert float(hass.states.get(pv_id).state) > 0

    # the model header moved (as after a firmware update): unavailable, then rescan
    grid.fault(1).garbage = {battery.address: 999}
    await poll(hass, inverter)
    assert hass.states.get(pv_id).state == STATE_UNAVAILABLE
    assert sunspec.base_address is None  # scans again at the next poll
    grid.clear_faults()
    await poll(hass, inverter)
    assert float(hass.states.get(soc_id).state) == round(grid.model.soc * 100, 1)
