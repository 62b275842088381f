"""Victron GX Modbus-TCP reader/writer (no Home Assistant imports).

Registers follow Victron's "CCGX Modbus-TCP register list": unit id 100 holds
``com.victronenergy.system`` (800-866) and the ESS/DVCC settings (2700-2717,
2900-2903). Victron's "scale factor" is a divisor: value = raw / scale.
Power registers are plain W (scale 1), battery voltage and current have scale 10,
SoC is a whole percent. Signs: battery power/current > 0 charging, grid > 0
importing, ESS grid setpoint > 0 importing.

A GX answers "illegal data address" when a read range contains an unmapped
register, so reads are split around the gaps: 7 requests per snapshot.

Not-available values: a GX reports missing data by exception or, depending on
the firmware, with all-ones / 0x7FFF; this reader takes uint16 0xFFFF and int16
0x7FFF as "not available" (None). Uncertain: checked against community
register tables, not a real GX. Victron's own mapping code serves an invalid
value as 0 (issue 14), so availability is also decided from what the GX
exposes: a block read that is 0xFFFF throughout is not available (not -1 W a
phase), and a battery voltage of 0 means there is no battery service (the DC
bus of a GX system is never 0 V), so the battery's values are unknown rather
than 0 V / 0 %.

The ESS grid setpoint (2700, or 2716/2717 as int32) is a *setting*: the GX keeps
it until it is written again, so a controller that dies leaves its last value
in force. Mode-3 setpoints on the VE.Bus unit (registers 37/40/41) instead
expire after about 60 s without a write. :class:`SetpointKeeper` re-sends the
setpoint periodically while it is set and writes 0 when released, which serves
both cases; re-sending an unchanged value does not wear the GX's flash (settings
are saved on change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
import logging
import math
import struct
from typing import Final

from .errors import MicrogridError, OutOfRange
from .transport import ModbusTransport

_LOGGER = logging.getLogger(__name__)

VICTRON_SYSTEM_UNIT: Final = 100

#: (address, count) reads covering the registers used, split at the GX's gaps.
READ_BLOCKS: Final[tuple[tuple[int, int], ...]] = (
    (808, 19),  # 808-826 AC-coupled PV, consumption, grid, genset, active input
    (840, 7),  # 840-846 battery
    (850, 2),  # 850-851 DC-coupled PV
    (855, 1),  # charger power
    (860, 1),  # DC system power
    (2700, 7),  # 2700-2706 ESS settings, DVCC max charge current
    (2901, 2),  # 2901-2902 ESS minimum SoC, ESS mode
)

REG_ESS_SETPOINT: Final = 2700
REG_ESS_SETPOINT_32: Final = 2716
REG_DVCC_MAX_CHARGE_CURRENT: Final = 2705
REG_ESS_MODE: Final = 2902
REG_SERIAL: Final = 800

ESS_MODES: Final = {
    1: "with_phase_compensation",
    2: "without_phase_compensation",
    3: "external",
}


@dataclass(frozen=True, slots=True)
class VictronSnapshot:
    """What HashGrid reads from a Victron GX (None = not available)."""

    pv_ac_power_w: float | None = None
    pv_dc_power_w: float | None = None
    pv_power_w: float | None = None
    consumption_w: float | None = None
    grid_power_w: float | None = None  # > 0 importing
    genset_power_w: float | None = None
    active_input: int | None = None
    battery_voltage_v: float | None = None  # the DC bus
    battery_current_a: float | None = None  # > 0 charging
    battery_power_w: float | None = None  # > 0 charging
    battery_soc_pct: float | None = None
    battery_state: int | None = None  # 0 idle, 1 charging, 2 discharging
    charger_power_w: float | None = None
    dc_system_power_w: float | None = None
    ess_grid_setpoint_w: float | None = None
    dvcc_max_charge_current_a: float | None = None  # None: no limit (-1)
    ess_max_feed_in_w: float | None = None  # None: no limit (-1)
    ess_minimum_soc_pct: float | None = None
    ess_mode: int | None = None
    rejected: tuple[str, ...] = ()


def _u16(regs: Mapping[int, int], addr: int, scale: float = 1.0) -> float | None:
    raw = regs.get(addr)
    if raw is None or raw == 0xFFFF:
        return None
    return raw / scale


def _s16(regs: Mapping[int, int], addr: int, scale: float = 1.0) -> float | None:
    raw = regs.get(addr)
    if raw is None or raw == 0x7FFF:
        return None
    value = raw - 0x10000 if raw & 0x8000 else raw
    return value / scale


def _total(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


#: Battery registers that mean nothing without a battery service (840 = 0 V).
_BATTERY_REGISTERS: Final = range(840, 847)


def _available(regs: Mapping[int, int]) -> dict[int, int]:
    """The registers that carry values: no all-0xFFFF block, no absent battery."""
    if regs and all(raw == 0xFFFF for raw in regs.values()):
        return {}  # nothing the GX serves is a value
    out = dict(regs)
    for address, count in READ_BLOCKS:
        block = [out.get(a) for a in range(address, address + count)]
        if count > 1 and all(raw == 0xFFFF for raw in block):
            for a in range(address, address + count):
                out.pop(a, None)
    if out.get(840) == 0:
        for a in _BATTERY_REGISTERS:
            out.pop(a, None)
    return out


def snapshot_from_registers(regs: Mapping[int, int]) -> VictronSnapshot:
    """Decode the GX's registers (address -> raw) into a snapshot."""
    regs = _available(regs)
    rejected: list[str] = []

    def plausible(name: str, value: float | None, lo: float, hi: float) -> float | None:
        if value is None:
            return None
        if not lo <= value <= hi:
            rejected.append(name)
            return None
        return value

    pv_ac = _total([_u16(regs, a) for a in range(808, 817)])
    pv_dc = _u16(regs, 850)
    pv = None if pv_ac is None and pv_dc is None else (pv_ac or 0.0) + (pv_dc or 0.0)
    setpoint = _s16(regs, 2700)
    dvcc = _s16(regs, 2705)
    feed_in = _s16(regs, 2706, 0.01)
    active = _s16(regs, 826)
    state = _u16(regs, 844)
    if state is not None and state not in (0, 1, 2):
        rejected.append("battery_state")
        state = None
    mode = _u16(regs, 2902)
    return VictronSnapshot(
        pv_ac_power_w=plausible("pv_ac_power_w", pv_ac, 0, 200_000),
        pv_dc_power_w=plausible("pv_dc_power_w", pv_dc, 0, 65_000),
        pv_power_w=plausible("pv_power_w", pv, 0, 300_000),
        consumption_w=plausible(
            "consumption_w",
            _total([_u16(regs, a) for a in range(817, 820)]),
            0,
            200_000,
        ),
        grid_power_w=plausible(
            "grid_power_w",
            _total([_s16(regs, a) for a in range(820, 823)]),
            -100_000,
            100_000,
        ),
        genset_power_w=plausible(
            "genset_power_w",
            _total([_s16(regs, a) for a in range(823, 826)]),
            -100_000,
            100_000,
        ),
        active_input=None if active is None else int(active),
        battery_voltage_v=plausible("battery_voltage_v", _u16(regs, 840, 10), 0, 1000),
        battery_current_a=plausible(
            "battery_current_a", _s16(regs, 841, 10), -3000, 3000
        ),
        battery_power_w=plausible("battery_power_w", _s16(regs, 842), -32_767, 32_767),
        battery_soc_pct=plausible("battery_soc_pct", _u16(regs, 843), 0, 100),
        battery_state=None if state is None else int(state),
        charger_power_w=plausible("charger_power_w", _u16(regs, 855), 0, 65_000),
        dc_system_power_w=plausible(
            "dc_system_power_w", _s16(regs, 860), -32_767, 32_767
        ),
        ess_grid_setpoint_w=setpoint,
        dvcc_max_charge_current_a=None if dvcc is None or dvcc < 0 else dvcc,
        ess_max_feed_in_w=None if feed_in is None or feed_in < 0 else feed_in,
        ess_minimum_soc_pct=plausible(
            "ess_minimum_soc_pct", _u16(regs, 2901, 10), 0, 100
        ),
        ess_mode=None if mode is None else int(mode),
        rejected=tuple(rejected),
    )


class VictronGX:
    """A Victron GX's system and ESS registers on one unit id (normally 100)."""

    def __init__(
        self, transport: ModbusTransport, unit_id: int = VICTRON_SYSTEM_UNIT
    ) -> None:
        """Use ``transport`` (shared connection to the GX)."""
        self.transport = transport
        self.unit_id = unit_id
        self.last_read_requests = 0

    async def read_registers(self) -> dict[int, int]:
        """Raw registers of :data:`READ_BLOCKS` (address -> value)."""
        regs: dict[int, int] = {}
        for address, count in READ_BLOCKS:
            values = await self.transport.read_registers(self.unit_id, address, count)
            regs.update(zip(range(address, address + count), values, strict=True))
        self.last_read_requests = len(READ_BLOCKS)
        return regs

    async def read_snapshot(self) -> VictronSnapshot:
        """Read and decode the system and ESS registers."""
        return snapshot_from_registers(await self.read_registers())

    async def read_serial(self) -> str | None:
        """The GX's serial (system register 800, string[6]): its VRM portal id."""
        regs = await self.transport.read_registers(self.unit_id, REG_SERIAL, 6)
        text = struct.pack(">6H", *regs).split(b"\0", 1)[0].decode("ascii", "replace")
        return text.strip() or None

    # ------------------------------------------------------------------ writes

    async def set_grid_setpoint(self, watts: float) -> None:
        """ESS grid setpoint in W (> 0 import, < 0 export).

        Written to 2700 (int16) when it fits, else to 2716/2717 (int32, GX
        firmware 3.x); out-of-range values raise :class:`OutOfRange`.
        """
        if not math.isfinite(watts):
            raise OutOfRange(f"grid setpoint {watts} is not a number")
        value = round(watts)
        if -32_768 < value <= 32_767:
            await self.transport.write_registers(
                self.unit_id, REG_ESS_SETPOINT, [value & 0xFFFF]
            )
            return
        if not -(2**31) < value < 2**31:
            raise OutOfRange(f"grid setpoint {watts} W does not fit int32")
        raw = value & 0xFFFFFFFF
        await self.transport.write_registers(
            self.unit_id, REG_ESS_SETPOINT_32, [raw >> 16, raw & 0xFFFF]
        )

    async def set_max_charge_current(self, amps: float | None) -> None:
        """DVCC maximum charge current (2705, A); None removes the limit (-1)."""
        if amps is None:
            await self.transport.write_registers(
                self.unit_id, REG_DVCC_MAX_CHARGE_CURRENT, [0xFFFF]
            )
            return
        if not math.isfinite(amps) or not 0 <= amps <= 32_767:
            raise OutOfRange(f"max charge current {amps} A outside 0..32767")
        await self.transport.write_registers(
            self.unit_id, REG_DVCC_MAX_CHARGE_CURRENT, [round(amps)]
        )

    async def set_ess_mode(self, mode: int) -> None:
        """ESS mode (2902): 1/2 = optimised with/without phase compensation, 3 = external."""
        if mode not in ESS_MODES:
            raise OutOfRange(f"ESS mode {mode} not one of {sorted(ESS_MODES)}")
        await self.transport.write_registers(self.unit_id, REG_ESS_MODE, [mode])


class SetpointKeeper:
    """Keeps an ESS grid setpoint alive by re-sending it every ``interval`` seconds.

    ``await keeper.set(w)`` writes at once (errors propagate) and keeps
    re-sending in the background; ``await keeper.set(None)`` writes 0 and
    stops; ``await keeper.stop()`` stops without writing. Failed re-sends are
    logged and retried at the next interval.
    """

    def __init__(self, gx: VictronGX, interval: float = 30.0) -> None:
        """Re-send through ``gx`` every ``interval`` seconds."""
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.gx = gx
        self.interval = interval
        self.setpoint: float | None = None
        self.sends = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """Whether a setpoint is being kept."""
        return self._task is not None and not self._task.done()

    async def set(self, watts: float | None) -> None:
        """Write ``watts`` now and keep it; None releases (writes 0)."""
        if watts is None:
            await self.stop()
            self.setpoint = None
            await self.gx.set_grid_setpoint(0)
            self.sends += 1
            return
        await self.gx.set_grid_setpoint(watts)
        self.sends += 1
        self.setpoint = watts
        if not self.active:
            self._task = asyncio.create_task(self._run(), name="hashgrid-ess-setpoint")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.setpoint is None:
                return
            try:
                await self.gx.set_grid_setpoint(self.setpoint)
                self.sends += 1
            except MicrogridError as err:
                self.failures += 1
                _LOGGER.warning("re-sending the ESS grid setpoint failed: %s", err)

    async def stop(self) -> None:
        """Stop re-sending (the GX keeps the last value)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
