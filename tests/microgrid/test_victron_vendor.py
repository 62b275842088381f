"""A Victron GX read and written as Victron defines it (issue 14, points 1, 2, 7, 8).

The simulated GX is built from Victron's own register rows
(``simulators/microgrid/data/victron_attributes_v1.0.101.csv``: the
``attributes.csv`` of victronenergy/dbus_modbustcp at v1.0.101) and serves an
invalid D-Bus value as 0 (``Mappings::getValue`` in its ``mappings.cpp``).
The setpoint rules are those of Victron's "ESS mode 2 and 3" page (2716/2717
from Venus OS 3.50, 2700 before). Real Home Assistant, real pymodbus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.microgrid.runtime import microgrid_runtime
from simulators.microgrid import VICTRON_REGISTERS, MicrogridSite, running_microgrid
from simulators.microgrid.devices import VICTRON_ATTRIBUTES

from .conftest import GX_SERIAL, add_entry, unload_all

SETTING = "settings:/Settings/CGwacs/AcPowerSetPoint"
OVERRIDE = "hub4:/Overrides/Setpoint"


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


def _state(hass: HomeAssistant, key: str, platform: str = "sensor") -> str:
    """The state a user sees; "absent" when the GX never gave the entity a value."""
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{GX_SERIAL}_{key}"
    )
    if entity_id is None:
        return "absent"
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


def _entity(hass: HomeAssistant, platform: str, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{GX_SERIAL}_{key}"
    )
    assert entity_id is not None
    return entity_id


async def _poll(hass: HomeAssistant, entry: ConfigEntry) -> None:
    await microgrid_runtime(entry).coordinator.async_refresh()
    await hass.async_block_till_done()


async def _gx_entry(hass: HomeAssistant, site: MicrogridSite) -> ConfigEntry:
    return await add_entry(
        hass, site, unit_id=100, device="victron", serial=GX_SERIAL, title="GX"
    )


@pytest.fixture
async def site_factory(socket_enabled: None, fast_timeouts: None):  # type: ignore[no-untyped-def]
    """Start a site with the GX's firmware and battery as the test asks."""
    stack: list[object] = []

    async def make(**kwargs: object) -> MicrogridSite:
        cm = running_microgrid(tick_interval=None, **kwargs)  # type: ignore[arg-type]
        site = await cm.__aenter__()
        stack.append(cm)
        site.advance(60)
        return site

    yield make
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)  # type: ignore[attr-defined]


# ------------------------------------------------------------- the table (8)


def test_the_simulated_gx_is_victrons_table() -> None:
    """Types, scales and access as in attributes.csv, not as we guessed them."""
    header = VICTRON_ATTRIBUTES.read_text().splitlines()[:2]
    assert "victronenergy/dbus_modbustcp" in header[0]
    assert "v1.0.101" in header[1]
    rows = {r.address: r for r in VICTRON_REGISTERS}
    assert (rows[2704].type, rows[2704].scale) == ("int16", 0.1)
    assert rows[2707].type == rows[2708].type == "uint16"
    assert (rows[2709].service, rows[2709].type, rows[2709].writable) == (
        "hub4",
        "uint16",
        False,
    )
    assert rows[806].writable  # the GX's relays
    assert rows[807].writable
    assert (rows[2716].service, rows[2716].path, rows[2716].type) == (
        "hub4",
        "/Overrides/Setpoint",
        "int32",
    )
    assert rows[2700].path == rows[2703].path == "/Settings/CGwacs/AcPowerSetPoint"
    assert (rows[827].type, rows[827].size) == ("reserved", 3)
    assert (rows[834].type, rows[834].path) == ("uint32", "/FirmwareVersion")


# ------------------------------------------------------- not available (1)


async def test_a_gx_without_a_battery_monitor_shows_no_soc(
    hass: HomeAssistant, site_factory
) -> None:  # type: ignore[no-untyped-def]
    """A Multi without a monitor: the GX serves SoC 0; HashGrid shows unknown."""
    site = await site_factory(victron_battery="no_monitor")
    assert site.victron.regs[843] == 0  # what the GX really serves
    entry = await _gx_entry(hass, site)
    assert _state(hass, "battery_soc") == "absent"  # never 0 %
    assert float(_state(hass, "dc_bus_voltage")) == pytest.approx(
        site.model.battery_voltage_v, abs=0.1
    )
    assert microgrid_runtime(entry).coordinator.data.battery_soc_pct is None


async def test_a_gx_with_no_battery_at_all_is_still_a_gx(
    hass: HomeAssistant, site_factory
) -> None:  # type: ignore[no-untyped-def]
    """No battery service: detected, battery values unknown (not 0 V / 0 %)."""
    site = await site_factory(victron_battery="none", gx_port=0)
    assert site.victron.regs[840] == 0
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "microgrid"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": "127.0.0.1", "port": site.gx_port, "unit_id": 100}
    )
    assert result["step_id"] == "microgrid_confirm"
    assert result["description_placeholders"]["kind"] == "Victron GX"
    await _gx_entry(hass, site)
    for key in ("battery_soc", "dc_bus_voltage", "battery_power"):
        assert _state(hass, key) in ("absent", STATE_UNKNOWN), key
    assert float(_state(hass, "load_power")) == pytest.approx(site.model.load_w, abs=2)


# ------------------------------------------------------------ setpoint (2)


async def test_venus_3_50_setpoint_goes_to_2716_and_is_not_resent(
    hass: HomeAssistant, site_factory
) -> None:  # type: ignore[no-untyped-def]
    """The override, read back from 2716; polls write nothing; a reboot is healed."""
    site = await site_factory(victron_firmware=(3, 50))
    entry = await _gx_entry(hass, site)
    number = _entity(hass, "number", "ess_grid_setpoint")
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": -1500}, blocking=True
    )
    gx = site.victron
    assert gx.override == -1500
    assert gx.path_writes == {OVERRIDE: 1}  # 2700 (flash, VRM log) untouched
    assert gx.settings[SETTING] == 50
    writes = site.writes[100]
    for _ in range(10):
        await _poll(hass, entry)
    assert site.writes[100] == writes  # no periodic re-send
    assert float(hass.states.get(number).state) == -1500

    gx.override = None  # the GX rebooted: the volatile override is gone
    site.refresh()
    runtime = microgrid_runtime(entry)
    assert runtime.keeper is not None
    runtime.keeper._last_write = None  # past the re-assert interval
    await _poll(hass, entry)
    assert gx.override == -1500
    assert runtime.keeper.reasserts == 1
    assert gx.path_writes == {OVERRIDE: 2}


async def test_older_venus_writes_2700_and_releases_to_the_previous_setting(
    hass: HomeAssistant, site_factory
) -> None:  # type: ignore[no-untyped-def]
    """Before 3.50: 2700, once; release restores the installer's value, not 0."""
    site = await site_factory(victron_firmware=(3, 40))
    site.victron.settings[SETTING] = 120.0  # the installer's setpoint
    site.refresh()
    entry = await _gx_entry(hass, site)
    number = _entity(hass, "number", "ess_grid_setpoint")
    assert float(hass.states.get(number).state) == 120
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": 900}, blocking=True
    )
    gx = site.victron
    assert gx.settings[SETTING] == 900
    assert OVERRIDE not in gx.path_writes
    for _ in range(5):
        await _poll(hass, entry)
    assert gx.path_writes == {SETTING: 1}  # one flash write, no re-sends
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": _entity(hass, "button", "release_ess_grid_setpoint")},
        blocking=True,
    )
    assert gx.settings[SETTING] == 120  # back to what it was, not 0
    assert site.model.controls.ess_grid_setpoint_w == 120


# ------------------------------------------------------------- unit id (7)


async def test_unit_1_on_a_gx_finds_its_system_unit(
    hass: HomeAssistant, site_factory
) -> None:  # type: ignore[no-untyped-def]
    """The form's default unit 1 answers 0x0A on a GX: unit 100 is found."""
    site = await site_factory(gx_port=0)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "microgrid"}
    )
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"host": "127.0.0.1", "port": site.gx_port, "unit_id": 1}
    )
    assert result["step_id"] == "microgrid_confirm"
    assert result["description_placeholders"]["kind"] == "Victron GX"
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["unit_id"] == 100
    assert result["data"]["device"] == "victron"
