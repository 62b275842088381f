"""Victron GX reader: pure decoding, then the real pymodbus client vs the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import math

import pytest

from custom_components.hashgrid.microgrid.errors import (
    IllegalAddress,
    ModbusTimeout,
    OutOfRange,
)
from custom_components.hashgrid.microgrid.transport import ModbusTransport
from custom_components.hashgrid.microgrid.victron import (
    READ_BLOCKS,
    SetpointKeeper,
    VictronGX,
    snapshot_from_registers,
)
from simulators.microgrid import (
    VICTRON_UNIT_ID,
    MicrogridSite,
    ModelParams,
    running_microgrid,
)


def _regs(**overrides: int) -> dict[int, int]:
    regs = {a: 0 for start, n in READ_BLOCKS for a in range(start, start + n)}
    for key, value in overrides.items():
        regs[int(key[1:])] = value
    return regs


def test_decoding_conventions() -> None:
    snap = snapshot_from_registers(
        _regs(
            r817=300,
            r818=200,
            r819=100,  # consumption, uint16 W
            r820=0xFFF6,
            r821=5,
            r822=0,  # grid int16: -10 + 5
            r840=512,
            r841=0xFF9C,
            r842=0xFB2E,
            r843=87,
            r844=2,  # 51.2 V, -10 A, -1234 W
            r850=4000,
            r2700=0xFC18,  # -1000 W
            r2705=0xFFFF,  # -1: no DVCC limit
            r2706=30,  # 3000 W (scale 0.01)
            r2901=155,
            r2902=3,
        )
    )
    assert snap.consumption_w == 600
    assert snap.grid_power_w == -5
    assert snap.battery_voltage_v == 51.2
    assert snap.battery_current_a == -10.0
    assert snap.battery_power_w == -1234
    assert snap.battery_soc_pct == 87
    assert snap.battery_state == 2
    assert snap.pv_dc_power_w == 4000
    assert snap.pv_power_w == 4000
    assert snap.ess_grid_setpoint_w == -1000
    assert snap.dvcc_max_charge_current_a is None
    assert snap.ess_max_feed_in_w == 3000
    assert snap.ess_minimum_soc_pct == 15.5
    assert snap.ess_mode == 3
    assert snap.rejected == ()


def test_absurd_values_are_dropped() -> None:
    """No sentinels: a GX never serves 0xFFFF/0x7FFF for "not available"."""
    snap = snapshot_from_registers(_regs(r843=0xFFFF, r842=0x7FFF, r840=20000, r844=9))
    assert snap.battery_soc_pct is None  # 65535 %
    assert snap.battery_voltage_v is None  # 2000 V on a 48 V bus
    assert snap.battery_state is None
    assert set(snap.rejected) == {
        "battery_voltage_v",
        "battery_state",
        "battery_soc_pct",
    }
    snap = snapshot_from_registers(_regs(r840=520, r843=250, r845=100))
    assert snap.battery_soc_pct is None
    assert snap.rejected == ("battery_soc_pct",)
    # int16 -1 is -1 W of grid on a phase, not "not available"
    assert snapshot_from_registers(_regs(r820=0xFFFF)).grid_power_w == -1


def test_availability_from_what_the_gx_exposes() -> None:
    """dbus_modbustcp serves an invalid D-Bus value as 0 (Mappings::getValue)."""
    # no battery service: 0 V -> every battery value unknown, not 0 V / 0 %
    snap = snapshot_from_registers(_regs(r840=0, r843=0, r841=0, r842=0))
    assert snap.battery_voltage_v is None
    assert snap.battery_soc_pct is None
    assert snap.battery_power_w is None
    assert not snap.battery_present
    # a Multi without a battery monitor: a DC bus, no SoC (0 %, 0 Ah consumed)
    snap = snapshot_from_registers(_regs(r840=532, r842=0xFF38, r843=0, r845=0))
    assert snap.battery_voltage_v == 53.2
    assert snap.battery_power_w == -200
    assert snap.battery_soc_pct is None
    assert snap.battery_present
    assert not snap.battery_monitor
    # a monitored battery really at 0 %: it has consumed amp-hours
    snap = snapshot_from_registers(_regs(r840=470, r843=0, r845=2000))
    assert snap.battery_soc_pct == 0
    assert snap.battery_monitor
    # a single-phase GX serves L2/L3 as 0 W: the total is L1
    snap = snapshot_from_registers(_regs(r840=520, r843=80, r820=1500, r817=900))
    assert snap.grid_power_w == 1500
    assert snap.consumption_w == 900
    # an all-0xFFFF block is no GX value (reserved ranges are served so)
    snap = snapshot_from_registers(
        {**_regs(r840=520, r843=80), **dict.fromkeys(range(808, 827), 0xFFFF)}
    )
    assert snap.grid_power_w is None  # not -3 W
    assert snap.genset_power_w is None
    assert snap.battery_soc_pct == 80
    everything = dict.fromkeys(_regs(), 0xFFFF)
    assert snapshot_from_registers(everything) == snapshot_from_registers({})


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[MicrogridSite]:
    params = ModelParams(start_time_of_day_s=0.0)  # midnight: battery covers the load
    async with running_microgrid(
        tick_interval=None, victron_port=0, params=params
    ) as site:
        site.advance(60)
        yield site


@pytest.fixture
async def gx(site: MicrogridSite) -> AsyncIterator[VictronGX]:
    assert site.victron_port is not None
    async with ModbusTransport("127.0.0.1", site.victron_port, timeout=0.5) as t:
        yield VictronGX(t)


async def test_snapshot_matches_the_model(site: MicrogridSite, gx: VictronGX) -> None:
    snap = await gx.read_snapshot()
    m = site.model
    assert gx.last_read_requests == len(READ_BLOCKS) == 7
    assert snap.battery_soc_pct == round(m.soc * 100)
    assert snap.battery_power_w == round(m.battery_w)
    assert snap.battery_power_w is not None
    assert snap.battery_power_w < 0  # discharging at night
    assert snap.battery_voltage_v == pytest.approx(m.battery_voltage_v, abs=0.05)
    assert snap.consumption_w == pytest.approx(m.load_w, abs=2)
    assert snap.grid_power_w == pytest.approx(m.grid_w, abs=2)
    assert snap.pv_power_w == 0
    assert snap.ess_grid_setpoint_w == 50  # Victron's default setting
    assert snap.ess_mode == 1
    assert snap.dvcc_max_charge_current_a is None
    assert await gx.read_serial() == "c0619ab1d2e3"


async def test_setpoint_writes(site: MicrogridSite, gx: VictronGX) -> None:
    """Older Venus OS (firmware not read): 2700, int16, read back."""
    c = site.model.controls
    assert await gx.set_grid_setpoint(1200) == 1200
    assert c.ess_grid_setpoint_w == 1200
    site.advance(10)
    assert site.model.grid_w == pytest.approx(1200)
    assert (await gx.read_snapshot()).ess_grid_setpoint_w == 1200
    with pytest.raises(OutOfRange):
        await gx.set_grid_setpoint(-45_000)  # 2700 is int16: refused, not wrapped


@pytest.mark.parametrize(
    "call",
    [
        lambda gx: gx.set_grid_setpoint(math.nan),
        lambda gx: gx.set_grid_setpoint(3e9),
    ],
)
async def test_out_of_range_writes_write_nothing(
    site: MicrogridSite, gx: VictronGX, call: Callable[[VictronGX], Awaitable[None]]
) -> None:
    writes = site.writes[VICTRON_UNIT_ID]
    with pytest.raises(OutOfRange):
        await call(gx)
    assert site.writes[VICTRON_UNIT_ID] == writes


async def test_faults(site: MicrogridSite, gx: VictronGX) -> None:
    site.fault(VICTRON_UNIT_ID).illegal_address = True
    with pytest.raises(IllegalAddress):
        await gx.read_snapshot()
    site.clear_faults()
    site.fault(VICTRON_UNIT_ID).timeout = True
    with pytest.raises(ModbusTimeout):
        await gx.read_snapshot()
    site.clear_faults()
    site.fault(VICTRON_UNIT_ID).garbage[843] = 0xFFFF  # 65535 %: dropped
    assert (await gx.read_snapshot()).battery_soc_pct is None
    site.clear_faults()
    assert (await gx.read_snapshot()).battery_soc_pct is not None


async def test_setpoint_keeper_reasserts_only_what_the_gx_lost(
    socket_enabled: None,
) -> None:
    """No periodic re-send: a poll's read-back that differs is written once again."""
    now = [0.0]
    async with (
        running_microgrid(tick_interval=None, setpoint_timeout_s=60) as site,
        ModbusTransport("127.0.0.1", site.port, timeout=0.5) as t,
    ):
        gx = VictronGX(t)
        await gx.read_firmware()
        assert gx.uses_override
        keeper = SetpointKeeper(gx, interval=30, clock=lambda: now[0])
        await keeper.set(-700)
        assert keeper.active
        assert keeper.read_back == -700
        writes = site.writes[VICTRON_UNIT_ID]
        for _ in range(10):  # polls while the GX holds it: nothing written
            now[0] += 30
            await keeper.check((await gx.read_snapshot()).ess_grid_setpoint_w)
        assert site.writes[VICTRON_UNIT_ID] == writes
        site.victron.override = None  # the GX rebooted: the override is gone
        site.refresh()
        await keeper.check((await gx.read_snapshot()).ess_grid_setpoint_w)
        assert keeper.reasserts == 1
        assert site.victron.override == -700
        assert site.model.controls.ess_grid_setpoint_w == -700
        await keeper.set(None)  # release: the GX's own setting (2700), not 0
        assert not keeper.active
        assert site.model.controls.ess_grid_setpoint_w == 50
        with pytest.raises(ValueError):
            SetpointKeeper(gx, interval=0)
