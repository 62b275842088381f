"""SunSpec reader: pure decoding/planning, then the real pymodbus client vs the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import math
import socket
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.hashgrid.microgrid.detect import detect
from custom_components.hashgrid.microgrid.errors import (
    CannotConnect,
    GatewayTargetFailed,
    IllegalAddress,
    InvalidValue,
    ModbusTimeout,
    OutOfRange,
)
from custom_components.hashgrid.microgrid.sunspec import SunSpecDevice, plan_reads
from custom_components.hashgrid.microgrid.sunspec_codec import (
    decode_model,
    decode_point,
    encode_value,
    scale,
)
from custom_components.hashgrid.microgrid.sunspec_layout import Point, layout_model
from custom_components.hashgrid.microgrid.sunspec_snapshot import snapshot_from_models
from custom_components.hashgrid.microgrid.transport import ModbusTransport
from simulators.microgrid import INVERTER_UNIT_ID, MicrogridSite, running_microgrid

# ------------------------------------------------------------------ pure


def test_scale_is_exact() -> None:
    assert scale(1234, -2) == 12.34
    assert scale(5, -1) == 0.5
    assert scale(12, 3) == 12000.0
    assert scale(-32767, -2) == -327.67
    assert scale(1, -1) == 0.1  # the float nearest 1/10, not 1 * 0.1 in binary


@given(raw=st.integers(-32767, 32767), sf=st.integers(-10, 10))
def test_encode_inverts_scale(raw: int, sf: int) -> None:
    point = Point("W", "int16", 1, 0, "W_SF", True)
    regs = encode_value(point, scale(raw, sf), sf)
    assert decode_point(point, regs) == raw


@pytest.mark.parametrize(
    ("type_", "size", "regs"),
    [
        ("int16", 1, [0x8000]),
        ("uint16", 1, [0xFFFF]),
        ("enum16", 1, [0xFFFF]),
        ("bitfield16", 1, [0xFFFF]),
        ("sunssf", 1, [0x8000]),
        ("int32", 2, [0x8000, 0]),
        ("uint32", 2, [0xFFFF, 0xFFFF]),
        ("acc32", 2, [0, 0]),
        ("acc32", 2, [0xFFFF, 0xFFFF]),
        ("uint64", 4, [0xFFFF] * 4),
        ("string", 4, [0, 0, 0, 0]),
        ("float32", 2, [0x7FC0, 0]),
    ],
)
def test_not_implemented_is_none(type_: str, size: int, regs: list[int]) -> None:
    assert decode_point(Point("X", type_, size, 0, None, False), regs) is None


def test_signed_and_string_decoding() -> None:
    assert decode_point(Point("X", "int16", 1, 0, None, False), [0xFFFE]) == -2
    assert decode_point(Point("X", "int32", 2, 0, None, False), [0xFFFF, 0xFFFE]) == -2
    assert decode_point(Point("X", "acc32", 2, 0, None, False), [1, 2]) == 65538
    assert (
        decode_point(Point("X", "string", 2, 0, None, False), [0x4142, 0x4300]) == "ABC"
    )
    assert (
        decode_point(Point("X", "sunssf", 1, 0, None, False), [42]) is None
    )  # absurd sf


def test_scale_factor_not_implemented_reads_unscaled() -> None:
    """0x8000: unscaled, as pysunspec2 (issue 14, 5); beyond +-10: unknown."""
    layout = layout_model(802, 62)
    assert layout is not None
    regs = [802, 62] + [0] * 62
    soc, soc_sf = layout.points["SoC"], layout.points["SoC_SF"]
    regs[soc.offset] = 505
    regs[soc_sf.offset] = 0xFFFF  # -1
    assert decode_model(layout, regs)["SoC"] == 50.5
    regs[soc_sf.offset] = 0x8000
    assert decode_model(layout, regs)["SoC"] == 505
    regs[soc_sf.offset] = 40
    assert decode_model(layout, regs)["SoC"] is None


def test_points_exist_only_within_the_declared_length() -> None:
    """103 declared 12 long: W (offset 14) and later do not exist; no zeros."""
    short = layout_model(103, 12)
    assert short is not None
    assert "A" in short.points
    assert "W" not in short.points
    assert all(p.offset + p.size <= 14 for p in short.points.values())
    decoded = decode_model(short, [103, 12, *([0] * 12)])
    assert decoded.get("W") is None
    common = layout_model(1, 40)  # cut inside Md: the strings after it are gone
    assert common is not None
    assert set(common.points) >= {"Mn"}
    assert "SN" not in common.points


async def test_ranges_past_65535_are_refused_before_sending(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    requests = transport.requests
    with pytest.raises(InvalidValue, match="65535"):
        await transport.read_registers(1, 65500, 100)
    with pytest.raises(InvalidValue):
        await transport.write_registers(1, 65535, [1, 2])
    assert transport.requests == requests


def test_layout_repeating_groups_from_length() -> None:
    two = layout_model(160, 48)
    three = layout_model(160, 68)
    assert two is not None
    assert three is not None
    assert "module[1].DCW" in two.points
    assert "module[2].DCW" not in two.points
    assert "module[2].DCWH" in three.points
    assert two.points["module[1].DCWH"].offset == 10 + 20 + 12  # ID, IDStr(8), DCA..DCW
    assert layout_model(99999, 10) is None


@st.composite
def _spans(draw: st.DrawFn) -> tuple[list[tuple[int, int]], frozenset[int]]:
    addr = draw(st.integers(0, 1000))
    spans: list[tuple[int, int]] = []
    no_cut: set[int] = set()
    for _ in range(draw(st.integers(1, 8))):
        addr += draw(st.integers(0, 60))
        length = draw(st.integers(1, 300))
        spans.append((addr, addr + length))
        # a few multi-register points inside
        for _ in range(draw(st.integers(0, 5))):
            start = draw(st.integers(addr, addr + length - 1))
            size = draw(st.sampled_from([2, 4]))
            no_cut.update(range(start + 1, min(start + size, addr + length)))
        addr += length
    return spans, frozenset(no_cut)


@settings(max_examples=300)
@given(_spans())
def test_plan_reads_properties(
    case: tuple[list[tuple[int, int]], frozenset[int]],
) -> None:
    spans, no_cut = case
    reads = plan_reads(spans, no_cut)
    covered: set[int] = set()
    for start, count in reads:
        assert 1 <= count <= 125
        assert start + count not in no_cut or count == 1
        covered.update(range(start, start + count))
    for s, e in spans:
        assert set(range(s, e)) <= covered
    assert reads == sorted(reads)
    if not no_cut and len(spans) == 1:
        ((s, e),) = spans
        assert len(reads) == math.ceil((e - s) / 125)


def test_plan_reads_skips_gaps_only_when_cheaper() -> None:
    assert plan_reads([(0, 10), (20, 30)]) == [(0, 30)]
    assert plan_reads([(0, 10), (500, 510)]) == [(0, 10), (500, 10)]
    assert plan_reads([(0, 250)], frozenset({125})) == [(0, 124), (124, 125), (249, 1)]


# ------------------------------------------------------------------ against the simulator


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[MicrogridSite]:
    async with running_microgrid(tick_interval=None) as site:
        site.advance(60)
        yield site


@pytest.fixture
async def transport(site: MicrogridSite) -> AsyncIterator[ModbusTransport]:
    async with ModbusTransport(
        "127.0.0.1", site.port, timeout=0.5, backoff_initial=0.05
    ) as t:
        yield t


async def test_scan_and_snapshot_match_the_model(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    dev = SunSpecDevice(transport, INVERTER_UNIT_ID)
    models = await dev.scan()
    assert [m.model_id for m in models] == [
        1,
        103,
        160,
        124,
        802,
        701,
        702,
        704,
        714,
        203,
    ]
    assert dev.base_address == 40000
    reads_before, requests_before = site.reads[1], transport.requests
    snap = await dev.read_snapshot()
    total = sum(m.length + 2 for m in models)
    assert transport.requests - requests_before == math.ceil(total / 125) == 6
    assert site.reads[1] - reads_before == 6
    m, k = site.model, site.model.counters
    assert snap.pv_power_w == 2 * round(m.pv_w / 2)
    assert snap.ac_power_w == round(m.inverter_ac_w)
    assert snap.battery_soc_pct == round(m.soc * 100, 1)
    assert snap.battery_power_w == round(m.battery_w)  # > 0 charging (802 negated)
    assert snap.battery_power_w is not None
    assert snap.battery_power_w > 0
    assert snap.dc_bus_voltage_v == round(m.battery_voltage_v, 2)  # sf -2, exact
    assert snap.grid_power_w == round(m.grid_w)
    assert snap.battery_charged_wh == round(1_500_000 + k.battery_charged_wh)
    assert snap.grid_export_wh == round(2_500_000 + k.grid_export_wh)
    assert snap.max_power_w == 6000
    assert snap.export_limit_w is None
    assert snap.max_charge_w == 5000
    assert snap.rejected == ()


async def test_energy_counters_increase(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    dev = SunSpecDevice(transport)
    first = await dev.read_snapshot()
    site.advance(600)
    second = await dev.read_snapshot()
    for name in ("pv_energy_wh", "battery_charged_wh", "ac_energy_wh"):
        a, b = getattr(first, name), getattr(second, name)
        assert a is not None
        assert b is not None
        assert b > a, name


async def test_identity(site: MicrogridSite, transport: ModbusTransport) -> None:
    identity = await SunSpecDevice(transport).read_identity()
    assert identity.manufacturer == "HashGrid Sim"
    assert identity.serial == "HGSIM-INV-0001"


async def test_export_limit_write(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    dev = SunSpecDevice(transport)
    await dev.scan()
    await dev.set_export_limit(1500)
    assert site.model.controls.export_limit_w == pytest.approx(1500)
    site.advance(10)
    assert site.model.inverter_ac_w <= 1500 + 1e-9
    snap = await dev.read_snapshot()
    assert snap.export_limit_w == pytest.approx(1500)
    assert snap.export_limit_enabled
    await dev.set_export_limit(None)
    assert site.model.controls.export_limit_w is None


@pytest.mark.parametrize("bad", [-1.0, 6000.5, 1e9, math.nan, math.inf])
async def test_out_of_range_writes_write_nothing(
    site: MicrogridSite, transport: ModbusTransport, bad: float
) -> None:
    dev = SunSpecDevice(transport)
    await dev.scan()
    writes = site.writes[1]
    with pytest.raises(OutOfRange):
        await dev.set_export_limit(bad)
    with pytest.raises(OutOfRange):
        await dev.set_max_charge_power(bad if bad != 6000.5 else 5000.5)
    with pytest.raises(OutOfRange):
        await dev.set_max_discharge_power(bad if bad != 6000.5 else 5001)
    assert site.writes[1] == writes
    assert site.model.controls.export_limit_w is None
    assert site.model.controls.max_charge_w is None


async def test_storage_limits(site: MicrogridSite, transport: ModbusTransport) -> None:
    dev = SunSpecDevice(transport)
    await dev.set_max_charge_power(1234)
    await dev.set_max_discharge_power(800)
    c = site.model.controls
    assert c.max_charge_w == pytest.approx(1234, abs=0.5)  # InWRte at 0.01 %
    assert c.max_discharge_w == pytest.approx(800, abs=0.5)
    site.advance(10)
    assert site.model.battery_w <= 1234.5
    snap = await dev.read_snapshot()
    assert snap.max_charge_w == pytest.approx(1234, abs=0.5)
    await dev.set_max_charge_power(None)
    assert c.max_charge_w is None
    assert c.max_discharge_w == pytest.approx(800, abs=0.5)  # untouched


async def test_garbage_values(site: MicrogridSite, transport: ModbusTransport) -> None:
    dev = SunSpecDevice(transport)
    await dev.scan()
    img = site.inverter.image
    faults = site.fault(INVERTER_UNIT_ID)
    # not implemented in 802 and 124: no SoC at all
    faults.garbage[img.address_of(802, "SoC")] = 0xFFFF
    faults.garbage[img.address_of(124, "ChaState")] = 0xFFFF
    # a scale factor beyond +-10 is garbage: grid W unknown
    faults.garbage[img.address_of(203, "W_SF")] = 0x7FFF
    snap = await dev.read_snapshot()
    assert snap.battery_soc_pct is None
    assert snap.grid_power_w is None
    # an unimplemented one (0x8000) reads unscaled, as pysunspec2 (issue 14, 5)
    faults.garbage[img.address_of(203, "W_SF")] = 0x8000
    snap = await dev.read_snapshot()
    assert snap.grid_power_w == pytest.approx(site.model.grid_w, abs=1)
    faults.garbage.clear()
    faults.garbage[img.address_of(802, "SoC")] = 60000
    snap = await dev.read_snapshot()
    assert snap.battery_soc_pct is None
    assert "battery_soc_pct" in snap.rejected


async def test_faults_map_to_errors_and_recover(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    dev = SunSpecDevice(transport)
    await dev.scan()
    faults = site.fault(INVERTER_UNIT_ID)
    faults.illegal_address = True
    with pytest.raises(IllegalAddress):
        await dev.read_snapshot()
    faults.clear()
    faults.timeout = True
    with pytest.raises(ModbusTimeout):
        await dev.read_snapshot()
    faults.clear()
    faults.reset = True
    with pytest.raises(CannotConnect):
        await dev.read_snapshot()
    faults.clear()
    connects = transport.connects
    snap = await dev.read_snapshot()  # same transport reconnects
    assert snap.pv_power_w is not None
    assert transport.connects == connects + 1


async def test_connection_is_reused(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    dev = SunSpecDevice(transport)
    for _ in range(5):
        await dev.read_snapshot()
    assert transport.connects == 1


async def test_backoff_when_nothing_listens(socket_enabled: None) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    now = [0.0]
    t = ModbusTransport(
        "127.0.0.1",
        port,
        timeout=0.5,
        backoff_initial=10,
        backoff_max=40,
        clock=lambda: now[0],
    )
    with pytest.raises(CannotConnect):
        await t.read_registers(1, 40000, 2)
    with pytest.raises(CannotConnect, match="next attempt"):
        await t.read_registers(1, 40000, 2)  # refused at once, no connect
    now[0] = 10.5
    with pytest.raises(CannotConnect, match="cannot connect"):
        await t.read_registers(1, 40000, 2)  # tried again; backoff doubles to 20
    now[0] = 25.0
    with pytest.raises(CannotConnect, match="next attempt"):
        await t.read_registers(1, 40000, 2)
    await t.close()


async def test_not_sunspec(site: MicrogridSite, transport: ModbusTransport) -> None:
    with pytest.raises(InvalidValue):
        await SunSpecDevice(transport, 100).scan()  # the GX has no SunSpec map


async def test_detect(site: MicrogridSite) -> None:
    inverter = await detect("127.0.0.1", site.port, 1)
    assert inverter.kind == "sunspec"
    assert inverter.serial == "HGSIM-INV-0001"
    assert inverter.models[:2] == (1, 103)
    genset = await detect("127.0.0.1", site.port, 2)
    assert genset.models == (1, 103)
    gx = await detect("127.0.0.1", site.port, 100)
    assert gx.kind == "victron"
    assert gx.serial == "c0619ab1d2e3"
    with pytest.raises(GatewayTargetFailed):
        await detect("127.0.0.1", site.port, 7)  # gateway: no such unit


async def test_concurrent_requests_share_one_connection(
    site: MicrogridSite, transport: ModbusTransport
) -> None:
    dev = SunSpecDevice(transport)
    await dev.scan()
    results = await asyncio.gather(*(dev.read_snapshot() for _ in range(5)))
    assert all(r.pv_power_w == results[0].pv_power_w for r in results)
    assert transport.connects == 1


@pytest.mark.parametrize(
    "models",
    [
        {802: [{"W": 0}]},  # negated: 802's W is > 0 discharging
        {802: [{"W": -0.0}]},  # a float model's negative zero
        {714: [{"Prt[0].PrtTyp": 1, "Prt[0].DCW": 0}]},  # an ESS port at rest
    ],
)
def test_a_battery_at_rest_is_0_w_never_minus_0(
    models: dict[int, list[dict[str, Any]]],
) -> None:
    """0 W negated is -0.0 in Python, which Home Assistant shows as "-0 W"."""
    power = snapshot_from_models(models).battery_power_w
    assert power is not None
    assert power == 0
    assert math.copysign(1, power) == 1


@pytest.mark.parametrize(
    ("w", "cha_st", "shown"),
    [
        (500.0, 4, 500.0),  # CHARGING: charging, whatever W's sign
        (-500.0, 4, 500.0),
        (500.0, 3, -500.0),  # DISCHARGING
        (-500.0, 3, -500.0),
        (500.0, 6, -500.0),  # HOLDING: W read in the DER convention (> 0 out)
        (500.0, None, -500.0),  # ChaSt not implemented: the same
        (0.0, 6, 0.0),
    ],
)
def test_battery_direction_comes_from_802s_charge_status(
    w: float, cha_st: int | None, shown: float
) -> None:
    """802's W has no sign in its definition; its ChaSt enumeration says which
    way the power flows (pysunspec2 1.3.7 model_802.json: 3 DISCHARGING,
    4 CHARGING)."""
    models = {1: [{"Mn": "X", "Md": "Y", "SN": "1"}], 802: [{"W": w, "ChaSt": cha_st}]}
    snap = snapshot_from_models(models)
    assert snap.battery_power_w == shown
    assert str(snap.battery_power_w) != "-0.0"
