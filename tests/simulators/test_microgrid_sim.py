"""The microgrid simulator, read by independent clients.

SunSpec side: pysunspec2's own Modbus client (scan + read + write).
Victron side: a raw pymodbus client decoding by the GX register list.
Neither shares code with the simulator's encoder or HashGrid's reader.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
import pytest
import sunspec2.modbus.client as sunspec_client

from simulators.microgrid import (
    GENERATOR_UNIT_ID,
    INVERTER_MODELS,
    INVERTER_UNIT_ID,
    VICTRON_UNIT_ID,
    MicrogridModel,
    ModelParams,
    running_microgrid,
)

EXPECTED_MODELS = [1, 103, 160, 124, 802, 701, 702, 704, 714, 203]


def _s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pysunspec_scan(port: int, unit: int = INVERTER_UNIT_ID) -> dict[str, object]:
    """Scan and read with pysunspec2 (blocking: run in a thread)."""
    device = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=5
    )
    try:
        device.scan()
        chain = [m.model_id for m in device.model_list]
        models = {mid: device.models[mid][0] for mid in chain}
        out: dict[str, object] = {"chain": chain, "base": device.base_addr}
        if 1 in models:
            out["mn"] = models[1].Mn.cvalue
            out["md"] = models[1].Md.cvalue
            out["sn"] = models[1].SN.cvalue
        if 103 in models:
            out["ac_w"] = models[103].W.cvalue
            out["ac_wh"] = models[103].WH.cvalue
        if 160 in models:
            out["pv_w"] = [m.DCW.cvalue for m in models[160].module]
            out["n"] = models[160].N.cvalue
        if 802 in models:
            out["soc"] = models[802].SoC.cvalue
            out["bat_w"] = models[802].W.cvalue
            out["bat_v"] = models[802].V.cvalue
        if 124 in models:
            out["cha_state"] = models[124].ChaState.cvalue
        if 714 in models:
            out["ports"] = [
                (p.PrtTyp.cvalue, p.DCWhAbs.cvalue) for p in models[714].Prt
            ]
        if 203 in models:
            out["grid_w"] = models[203].W.cvalue
        if 704 in models:
            out["lim_ena"] = models[704].WMaxLimPctEna.cvalue
        return out
    finally:
        device.close()


def _pysunspec_write(port: int, model_id: int, values: dict[str, float]) -> None:
    device = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=INVERTER_UNIT_ID, ipaddr="127.0.0.1", ipport=port, timeout=5
    )
    try:
        device.scan()
        model = device.models[model_id][0]
        for name, value in values.items():
            getattr(model, name).cvalue = value
        model.write()
    finally:
        device.close()


# ------------------------------------------------------------------ SunSpec


async def test_pysunspec2_scans_and_reads_the_inverter(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None) as site:
        site.advance(60)
        got = await asyncio.to_thread(_pysunspec_scan, site.port)
        m = site.model
    assert got["base"] == 40000
    assert got["chain"] == EXPECTED_MODELS
    assert (got["mn"], got["md"], got["sn"]) == (
        "HashGrid Sim",
        "HG-Hybrid-6K",
        "HGSIM-INV-0001",
    )
    assert got["ac_w"] == round(m.inverter_ac_w)
    assert got["n"] == 2
    assert got["pv_w"] == [round(m.pv_w / 2)] * 2
    assert got["soc"] == pytest.approx(round(m.soc * 100, 1))
    assert got["cha_state"] == pytest.approx(round(m.soc * 100, 1))
    # 802: DER convention, > 0 discharging
    assert got["bat_w"] == round(-m.battery_w)
    assert got["bat_v"] == pytest.approx(round(m.battery_voltage_v, 2))
    assert got["grid_w"] == round(m.grid_w)
    assert got["lim_ena"] == 0
    ports = got["ports"]
    assert isinstance(ports, list)
    assert [p[0] for p in ports] == [0, 1]  # PV, ESS
    assert ports[1][1] > 0  # lifetime charged energy


async def test_pysunspec2_scans_the_genset(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None) as site:
        site.model.controls.generator_running = True
        site.advance(10)
        got = await asyncio.to_thread(_pysunspec_scan, site.port, GENERATOR_UNIT_ID)
    assert got["chain"] == [1, 103]
    assert got["md"] == "HG-FlareGen-3K"
    assert got["ac_w"] == 3000


async def test_export_limit_written_with_pysunspec2_curtails(
    socket_enabled: None,
) -> None:
    async with running_microgrid(tick_interval=None) as site:
        site.advance(10)
        assert site.model.inverter_ac_w > 1500  # sunny noon: well above the limit
        await asyncio.to_thread(
            _pysunspec_write, site.port, 704, {"WMaxLimPctEna": 1, "WMaxLimPct": 25}
        )
        assert site.model.controls.export_limit_w == pytest.approx(1500)
        site.advance(10)
        assert site.model.inverter_ac_w <= 1500 + 1e-9
        assert site.model.curtailed_w > 0
        assert abs(site.model.balance_error_w()) < 1e-6


async def test_storage_limits_written_with_pysunspec2(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None) as site:
        site.advance(10)
        assert site.model.battery_w > 1000
        await asyncio.to_thread(
            _pysunspec_write, site.port, 124, {"InWRte": 20, "StorCtl_Mod": 1}
        )
        assert site.model.controls.max_charge_w == pytest.approx(1000)
        site.advance(10)
        assert site.model.battery_w <= 1000 + 1e-9


async def test_invalid_and_read_only_writes_are_refused(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None) as site:
        img = site.inverter.image
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=2, retries=0)
        await client.connect()
        try:
            ena = img.address_of(704, "WMaxLimPctEna")
            rr = await client.write_registers(ena, [1, 15000], device_id=1)  # 150 %
            assert rr.isError()
            assert rr.exception_code == 3
            assert site.model.controls.export_limit_w is None
            assert img.model(704).get("WMaxLimPctEna") == 0  # rolled back
            rr = await client.write_registers(
                img.address_of(103, "W"), [5], device_id=1
            )
            assert rr.isError()
            assert rr.exception_code == 2
        finally:
            client.close()


# ------------------------------------------------------------------ Victron


async def test_victron_system_registers(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None, victron_port=0) as site:
        site.advance(30)
        m = site.model
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=site.victron_port, timeout=2, retries=0
        )
        await client.connect()
        try:
            sysregs = (
                await client.read_holding_registers(817, count=10, device_id=100)
            ).registers
            bat = (
                await client.read_holding_registers(840, count=5, device_id=100)
            ).registers
            pv = (
                await client.read_holding_registers(850, count=1, device_id=100)
            ).registers
            reserved = await client.read_holding_registers(826, count=2, device_id=100)
            gap = await client.read_holding_registers(867, count=1, device_id=100)
            serial = (
                await client.read_holding_registers(800, count=6, device_id=100)
            ).registers
        finally:
            client.close()
    assert sum(sysregs[0:3]) == pytest.approx(m.load_w, abs=2)  # uint16 W
    assert sum(_s16(r) for r in sysregs[3:6]) == pytest.approx(
        m.grid_w, abs=2
    )  # int16 W
    assert bat[0] / 10 == pytest.approx(m.battery_voltage_v, abs=0.05)  # 840 V x10
    assert _s16(bat[1]) / 10 == pytest.approx(
        m.battery_current_a, abs=0.05
    )  # 841 A x10
    assert _s16(bat[2]) == round(m.battery_w)  # 842 W, > 0 charging
    assert bat[3] == round(m.soc * 100)  # 843 %
    assert bat[4] == (1 if m.battery_w > 0 else 2 if m.battery_w < 0 else 0)
    assert pv[0] == round(m.pv_w)
    # 827 is a reserved row of Victron's table: readable, served as 0xFFFF
    assert reserved.registers == [1, 0xFFFF]
    assert gap.isError()  # 867 is not in the table at all
    assert gap.exception_code == 2
    assert (
        bytes.fromhex("".join(f"{r:04x}" for r in serial)).rstrip(b"\0")
        == b"c0619ab1d2e3"
    )


async def test_victron_ess_setpoint_and_dvcc_change_behaviour(
    socket_enabled: None,
) -> None:
    params = ModelParams(start_time_of_day_s=0.0)  # midnight: no PV
    async with running_microgrid(tick_interval=None, params=params) as site:
        m = site.model
        site.advance(10)
        assert m.pv_w == 0
        # ESS covers the load but for Victron's default setpoint (50 W import)
        assert m.grid_w == pytest.approx(50, abs=1e-6)
        assert m.battery_w < 0
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=2, retries=0)
        await client.connect()
        try:
            assert not (
                await client.write_register(2700, 1000, device_id=100)
            ).isError()
            site.advance(10)
            assert m.grid_w == pytest.approx(1000)
            assert m.battery_w == pytest.approx(1000 - m.load_w)
            # the override (hub4 /Overrides/Setpoint, int32) wins over the
            # setting and is a path of its own: 2700 keeps the setting
            await client.write_registers(2716, [0xFFFF, (-800) & 0xFFFF], device_id=100)
            site.advance(10)
            assert m.grid_w == pytest.approx(-800)
            regs = (
                await client.read_holding_registers(2700, count=1, device_id=100)
            ).registers
            assert regs == [1000]
            # DVCC charge current limit
            await client.write_registers(2716, [0, 3000], device_id=100)
            await client.write_register(2705, 10, device_id=100)
            site.advance(10)
            assert 0 < m.battery_w <= 10 * m.battery_voltage_v + 1e-6
            assert m.grid_w < 3000
            rr = await client.write_register(2902, 7, device_id=100)  # not an ESS mode
            assert rr.isError()
            assert rr.exception_code == 3
        finally:
            client.close()


async def test_setpoint_watchdog_option(socket_enabled: None) -> None:
    """The override is volatile: the option drops it (as a GX reboot would)."""
    clock = FakeClock()
    async with running_microgrid(
        tick_interval=None, clock=clock, setpoint_timeout_s=60
    ) as site:
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=2, retries=0)
        await client.connect()
        try:
            await client.write_registers(2716, [0, 500], device_id=100)
        finally:
            client.close()
        clock.now += 30
        site.tick()
        assert site.model.controls.ess_grid_setpoint_w == 500
        clock.now += 31
        site.tick()
        assert site.model.controls.ess_grid_setpoint_w == 50  # the GX's setting


# ------------------------------------------------------------------ physics


def test_energy_balance_over_two_days() -> None:
    m = MicrogridModel(ModelParams(seed=7, start_time_of_day_s=0.0))
    m.controls.generator_running = False
    prev = dict(vars_of(m))
    saw_pv = saw_export = saw_import = False
    for step in range(2 * 24 * 60):
        if step == 600:
            m.controls.generator_running = True
        if step == 700:
            m.controls.generator_running = False
        m.advance(60)
        assert abs(m.balance_error_w()) < 1e-6
        assert m.inverter_ac_w == pytest.approx(m.pv_w - m.battery_w)
        assert m.params.battery_min_soc - 1e-9 <= m.soc <= 1.0
        now = vars_of(m)
        for key, value in now.items():
            assert value >= prev[key] - 1e-9, key  # counters never decrease
        prev = now
        saw_pv |= m.pv_w > 0
        saw_export |= m.grid_w < 0
        saw_import |= m.grid_w > 0
    k = m.counters
    sources = k.pv_wh + k.generator_wh + k.grid_import_wh - k.grid_export_wh
    sinks = k.load_wh + k.battery_charged_wh - k.battery_discharged_wh
    assert sources == pytest.approx(sinks, rel=1e-9)
    stored = (m.soc - m.params.initial_soc) * m.params.battery_capacity_wh
    assert k.battery_charged_wh - k.battery_discharged_wh == pytest.approx(
        stored, abs=1e-6
    )
    assert k.generator_wh == pytest.approx(3000 * 100 / 60)
    assert saw_pv
    assert saw_export
    assert saw_import


async def test_an_external_load_is_part_of_the_site_load(
    socket_enabled: None,
) -> None:
    """Miners simulated elsewhere draw from the site: the GX's consumption and the
    inverter's grid meter include them, and the balance still adds up."""
    miners_w = [0.0]
    async with running_microgrid(
        tick_interval=None, external_load=lambda: miners_w[0]
    ) as site:
        m = site.model
        site.advance(5)
        house = m.load_w
        miners_w[0] = 4000.0
        site.advance(5)
        assert m.external_load_w == 4000
        assert m.load_w == pytest.approx(house + 4000, abs=300)  # + appliance noise
        assert abs(m.balance_error_w()) < 1e-6
        client = AsyncModbusTcpClient("127.0.0.1", port=site.port, timeout=2, retries=0)
        await client.connect()
        try:
            consumption = (
                await client.read_holding_registers(817, count=3, device_id=100)
            ).registers
        finally:
            client.close()
        assert sum(consumption) == pytest.approx(m.load_w, abs=2)
        sources = m.pv_w + m.generator_w + m.grid_w
        assert sources == pytest.approx(m.load_w + m.battery_w)


def test_a_full_inverter_charges_the_battery_before_curtailing_pv() -> None:
    """Loads beyond the inverter's AC rating (the demo's miners) take its full
    output from the grid's side; the PV it cannot deliver charges the battery
    (up to the charge limit), and only what is left is curtailed."""
    m = MicrogridModel(ModelParams(initial_soc=0.5, seed=3))
    m.external_loads.append(lambda: 12_000.0)
    m.advance(5)
    p = m.params
    assert m.pv_available_w > p.inverter_max_w  # sunny noon
    assert m.inverter_ac_w == pytest.approx(p.inverter_max_w)
    assert m.battery_w == pytest.approx(
        min(p.battery_max_charge_w, m.pv_available_w - p.inverter_max_w)
    )
    assert m.curtailed_w == pytest.approx(
        max(0.0, m.pv_available_w - p.inverter_max_w - p.battery_max_charge_w)
    )
    assert m.grid_w == pytest.approx(m.load_w - p.inverter_max_w)
    assert abs(m.balance_error_w()) < 1e-6


def vars_of(m: MicrogridModel) -> dict[str, float]:
    k = m.counters
    return {
        "pv": k.pv_wh,
        "load": k.load_wh,
        "chg": k.battery_charged_wh,
        "dis": k.battery_discharged_wh,
        "imp": k.grid_import_wh,
        "exp": k.grid_export_wh,
        "gen": k.generator_wh,
    }


def test_pv_follows_the_day_and_the_seed() -> None:
    a = MicrogridModel(ModelParams(seed=3, start_time_of_day_s=0.0))
    b = MicrogridModel(ModelParams(seed=3, start_time_of_day_s=0.0))
    c = MicrogridModel(ModelParams(seed=4, start_time_of_day_s=0.0))
    series = []
    for _ in range(24):
        for model in (a, b, c):
            model.advance(3600)
        series.append((a.pv_available_w, b.pv_available_w, c.pv_available_w))
    assert [s[0] for s in series] == [s[1] for s in series]  # same seed, same weather
    assert [s[0] for s in series] != [s[2] for s in series]
    night = [s[0] for i, s in enumerate(series) if (i + 1) % 24 in (0, 1, 2, 3, 22, 23)]
    assert all(w == 0 for w in night)
    assert max(s[0] for s in series) > 2000


def test_time_scale_compresses_a_day() -> None:
    from simulators.microgrid.model import ModelClock

    clock = FakeClock()
    m = MicrogridModel()
    mc = ModelClock(m, clock, time_scale=144.0)
    clock.now += 600  # ten real minutes
    assert mc.tick() == pytest.approx(86_400)
    assert m.sim_time_s == pytest.approx(86_400)
    with pytest.raises(ValueError):
        ModelClock(m, clock, 0)


# ------------------------------------------------------------------ faults


async def test_faults_per_device(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None) as site:
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=site.port, timeout=0.5, retries=0
        )
        await client.connect()
        try:
            # garbage on one register of the inverter only
            soc_addr = site.inverter.image.address_of(802, "SoC")
            site.fault(INVERTER_UNIT_ID).garbage[soc_addr] = 0x8000
            rr = await client.read_holding_registers(soc_addr, count=1, device_id=1)
            assert rr.registers == [0x8000]
            # illegal address on the inverter, the GX still answers
            site.fault(INVERTER_UNIT_ID).illegal_address = True
            rr = await client.read_holding_registers(40000, count=2, device_id=1)
            assert rr.isError()
            assert rr.exception_code == 2
            rr = await client.read_holding_registers(843, count=1, device_id=100)
            assert not rr.isError()
            site.clear_faults()
            rr = await client.read_holding_registers(40000, count=2, device_id=1)
            assert rr.registers == [0x5375, 0x6E53]
            # timeout: no answer at all
            site.fault(VICTRON_UNIT_ID).timeout = True
            with pytest.raises(ModbusIOException):
                await client.read_holding_registers(843, count=1, device_id=100)
            assert site.dropped == 1
            site.clear_faults()
            # unknown unit: gateway exception 0x0B
            client.close()
            await client.connect()
            rr = await client.read_holding_registers(40000, count=2, device_id=9)
            assert rr.isError()
            assert rr.exception_code == 0x0B
        finally:
            client.close()


async def test_connection_reset_fault(socket_enabled: None) -> None:
    async with running_microgrid(tick_interval=None) as site:
        site.fault(INVERTER_UNIT_ID).reset = True
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        try:
            # MBAP: tid 1, proto 0, len 6, unit 1, fc 3, addr 40000, count 2
            writer.write(bytes.fromhex("00010000000601039c400002"))
            await writer.drain()
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(9), 2)
        finally:
            writer.close()
        assert site.resets == 1


async def test_hostile_fault_knobs(socket_enabled: None) -> None:
    """One exception everywhere, transient exceptions, one value everywhere."""
    async with running_microgrid(tick_interval=None) as site:
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=site.port, timeout=0.5, retries=0
        )
        await client.connect()
        try:
            faults = site.fault(INVERTER_UNIT_ID)
            for code in (0x04, 0x06, 0x0A, 0x0B):
                faults.exception = code
                rr = await client.read_holding_registers(40000, count=2, device_id=1)
                assert rr.isError()
                assert rr.exception_code == code
            faults.clear()
            header = site.inverter.image.model(160).start
            faults.flaky[header] = [0x02, 0x06]
            for code in (0x02, 0x06):  # one queued code per read, then healthy
                rr = await client.read_holding_registers(header, count=2, device_id=1)
                assert rr.exception_code == code
            rr = await client.read_holding_registers(header, count=2, device_id=1)
            assert rr.registers[0] == 160
            # reads that do not cover the address are not affected
            faults.flaky[header] = [0x02]
            rr = await client.read_holding_registers(40000, count=2, device_id=1)
            assert rr.registers == [0x5375, 0x6E53]
            faults.clear()
            for fill in (0xFFFF, 0):
                site.fault(VICTRON_UNIT_ID).fill = fill
                rr = await client.read_holding_registers(800, count=6, device_id=100)
                assert rr.registers == [fill] * 6
            site.clear_faults()
            rr = await client.read_holding_registers(843, count=1, device_id=100)
            assert 0 < rr.registers[0] <= 100
        finally:
            client.close()


async def test_malformed_frame_fault(socket_enabled: None) -> None:
    """A well-framed reply with function code 0x63: no Modbus client decodes it."""
    async with running_microgrid(tick_interval=None) as site:
        site.fault(INVERTER_UNIT_ID).malformed = True
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        try:
            writer.write(bytes.fromhex("00070000000601039c400002"))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readexactly(9), 2)
        finally:
            writer.close()
        assert reply == bytes.fromhex("000700000003016300")
        assert site.malformed == 1


async def test_inverter_map_shapes(socket_enabled: None) -> None:
    """Models cut short, a larger chain, no end model, counters set back."""
    chain = [
        (mid, {"module": 300} if mid == 160 else rep) for mid, rep in INVERTER_MODELS
    ]
    async with running_microgrid(
        tick_interval=None,
        inverter_lengths={103: 12, 1: 40},
        inverter_chain=chain,
        inverter_terminated=False,
    ) as site:
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=site.port, timeout=0.5, retries=0
        )
        await client.connect()
        try:
            walked: list[tuple[int, int]] = []
            addr = 40002
            while True:
                rr = await client.read_holding_registers(addr, count=2, device_id=1)
                if rr.isError():
                    assert rr.exception_code == 0x02  # the map just stops
                    break
                walked.append((rr.registers[0], rr.registers[1]))
                addr += 2 + rr.registers[1]
            assert [m for m, _ in walked] == EXPECTED_MODELS
            lengths = dict(walked)
            assert lengths[1] == 40
            assert lengths[103] == 12
            assert lengths[160] == 8 + 300 * 20
            # counters set back: the meter's import total reads what was set
            imp = site.inverter.image.address_of(203, "TotWhImp")
            site.inverter.lifetime_wh["grid_imp"] = 1000.0
            site.refresh()
            rr = await client.read_holding_registers(imp, count=2, device_id=1)
            total = rr.registers[0] << 16 | rr.registers[1]
            assert 1000 <= total < 1000 + 1 + site.model.counters.grid_import_wh
        finally:
            client.close()


def test_cli_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators.microgrid", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--victron-port" in result.stdout
    assert "--short-model" in result.stdout
    assert "--time-scale" in result.stdout
