"""Victron GX Modbus-TCP reader/writer (no Home Assistant imports).

Registers follow Victron's own table: ``attributes.csv`` and ``mappings.cpp``
of victronenergy/dbus_modbustcp (the GX's Modbus-TCP server; checked against
v1.0.101). Unit id 100 holds ``com.victronenergy.system`` (800-866), the ESS
settings (2700-2715, 2900-2903) and ``com.victronenergy.hub4`` (2709, 2716).
Victron's "scale factor" is a divisor: value = raw / scale. Signs: battery
power/current > 0 charging, grid > 0 importing, ESS grid setpoint > 0 importing.

A GX answers "illegal data address" when a read range leaves its table, so
reads are split around the gaps.

Not available: the GX serves a D-Bus value that is invalid as **0**
(``Mappings::getValue``), never 0xFFFF/0x7FFF, so availability is decided from
what the GX exposes, not from sentinels:

- a battery voltage of 0: no battery service at all (the system has no DC bus
  reading), so every battery value is unknown rather than 0 V / 0 % / 0 W;
- a SoC of 0 with 0 consumed Ah: no battery monitor (a Multi alone has no
  SoC), so the SoC is unknown. A monitored battery at 0 % has consumed Ah;
- a missing phase is 0 W on a GX, and 0 W is what it adds to a total, so
  totals are the sum of the phases the GX serves.

The ESS grid setpoint follows Victron's "ESS mode 2 and 3" page: from Venus OS
3.50 it is written to the 32-bit registers 2716/2717 (``hub4``
``/Overrides/Setpoint``), which are not logged to VRM nor saved to flash;
2700 (the flash-backed setting ``/Settings/CGwacs/AcPowerSetPoint``) only on
older firmware. The firmware version is registers 834/835
(``((version << 8) & 0xFFFF0000) + beta``, e.g. 0x0350 0x0000 = v3.50).
:class:`SetpointKeeper` writes once, reads back the register written on every
poll and writes again only when the GX no longer holds it (nothing is re-sent
periodically); releasing hands control back to the GX's own setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import logging
import math
import struct
import time
from typing import Final

from .errors import IllegalAddress, MicrogridError, OutOfRange
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
#: Read as well when the GX has the override (Venus OS >= 3.50).
OVERRIDE_BLOCK: Final = (2716, 2)

REG_ESS_SETPOINT: Final = 2700
REG_ESS_SETPOINT_32: Final = 2716
REG_SERIAL: Final = 800
REG_FIRMWARE: Final = 834
#: The first Venus OS with the 32-bit setpoint override at 2716/2717.
OVERRIDE_FIRMWARE: Final = (3, 50)
#: Victron's default ESS grid setpoint (W): what a release returns to when the
#: GX's own setting is unknown.
DEFAULT_SETPOINT_W: Final = 50.0


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
    #: The setpoint in the register HashGrid writes (2716 from 3.50, else 2700).
    ess_grid_setpoint_w: float | None = None
    #: The GX's own setting (2700, flash-backed).
    ess_setpoint_setting_w: float | None = None
    dvcc_max_charge_current_a: float | None = None  # None: no limit (-1)
    ess_max_feed_in_w: float | None = None  # None: no limit (-1)
    ess_minimum_soc_pct: float | None = None
    ess_mode: int | None = None
    #: Whether the GX reports a battery service / a battery monitor (SoC).
    battery_present: bool = False
    battery_monitor: bool = False
    rejected: tuple[str, ...] = ()


def _u16(regs: Mapping[int, int], addr: int, scale: float = 1.0) -> float | None:
    raw = regs.get(addr)
    return None if raw is None else raw / scale


def _s16(regs: Mapping[int, int], addr: int, scale: float = 1.0) -> float | None:
    raw = regs.get(addr)
    if raw is None:
        return None
    value = raw - 0x10000 if raw & 0x8000 else raw
    return value / scale


def _s32(regs: Mapping[int, int], addr: int) -> float | None:
    hi, lo = regs.get(addr), regs.get(addr + 1)
    if hi is None or lo is None:
        return None
    raw = (hi << 16) | lo
    return float(raw - (1 << 32) if raw & 0x80000000 else raw)


def _total(values: list[float | None]) -> float | None:
    """Sum of the phases: a phase the GX lacks is served as 0 W, its share."""
    nums = [v for v in values if v is not None]
    return float(sum(nums)) if nums else None


#: Battery registers that mean nothing without a battery service (840 = 0 V).
_BATTERY_REGISTERS: Final = range(840, 847)


def _available(regs: Mapping[int, int]) -> dict[int, int]:
    """The registers that carry values (see the module's "Not available")."""
    if regs and all(raw == 0xFFFF for raw in regs.values()):
        return {}  # nothing the GX serves is a value
    out = dict(regs)
    blocks = (*READ_BLOCKS, OVERRIDE_BLOCK)
    for address, count in blocks:
        block = [out.get(a) for a in range(address, address + count)]
        if count > 1 and all(raw == 0xFFFF for raw in block):
            for a in range(address, address + count):
                out.pop(a, None)  # reserved-like: a GX never serves values so
    if out.get(840) == 0:
        for a in _BATTERY_REGISTERS:
            out.pop(a, None)  # no battery service
    elif out.get(843) == 0 and out.get(845) == 0:
        out.pop(843, None)  # no battery monitor: no SoC
        out.pop(845, None)
        out.pop(846, None)
    return out


def snapshot_from_registers(
    regs: Mapping[int, int], *, override: bool = False
) -> VictronSnapshot:
    """Decode the GX's registers (address -> raw) into a snapshot.

    ``override``: the setpoint HashGrid writes is 2716/2717 (Venus OS >= 3.50).
    """
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
    setting = _s16(regs, 2700)
    setpoint = _s32(regs, REG_ESS_SETPOINT_32) if override else setting
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
        battery_power_w=plausible("battery_power_w", _s16(regs, 842), -32_768, 32_767),
        battery_soc_pct=plausible("battery_soc_pct", _u16(regs, 843), 0, 100),
        battery_state=None if state is None else int(state),
        charger_power_w=plausible("charger_power_w", _u16(regs, 855), 0, 65_000),
        dc_system_power_w=plausible(
            "dc_system_power_w", _s16(regs, 860), -32_768, 32_767
        ),
        ess_grid_setpoint_w=setpoint,
        ess_setpoint_setting_w=setting,
        dvcc_max_charge_current_a=None if dvcc is None or dvcc < 0 else dvcc,
        ess_max_feed_in_w=None if feed_in is None or feed_in < 0 else feed_in,
        ess_minimum_soc_pct=plausible(
            "ess_minimum_soc_pct", _u16(regs, 2901, 10), 0, 100
        ),
        ess_mode=None if mode is None else int(mode),
        battery_present=840 in regs,
        battery_monitor=843 in regs,
        rejected=tuple(rejected),
    )


def firmware_from_registers(hi: int, lo: int) -> tuple[int, int, int] | None:
    """Venus OS (major, minor, beta) from 834/835; None when not served (0)."""
    if hi == 0 or hi == 0xFFFF:
        return None
    major, minor = f"{hi >> 8:x}", f"{hi & 0xFF:02x}"
    if not (major.isdigit() and minor.isdigit()):
        return None  # not the hex-coded digits Venus OS uses
    return int(major), int(minor), lo


class VictronGX:
    """A Victron GX's system and ESS registers on one unit id (normally 100)."""

    def __init__(
        self, transport: ModbusTransport, unit_id: int = VICTRON_SYSTEM_UNIT
    ) -> None:
        """Use ``transport`` (shared connection to the GX)."""
        self.transport = transport
        self.unit_id = unit_id
        self.last_read_requests = 0
        #: Venus OS (major, minor, beta) once :meth:`read_firmware` ran.
        self.firmware: tuple[int, int, int] | None = None

    @property
    def uses_override(self) -> bool:
        """Whether the setpoint goes to 2716/2717 (Venus OS >= 3.50)."""
        return self.firmware is not None and self.firmware[:2] >= OVERRIDE_FIRMWARE

    @property
    def firmware_text(self) -> str | None:
        """The Venus OS version as Victron writes it (v3.50, v3.60~12)."""
        if self.firmware is None:
            return None
        major, minor, beta = self.firmware
        return f"v{major}.{minor:02d}" + (f"~{beta}" if beta else "")

    async def read_firmware(self) -> tuple[int, int, int] | None:
        """Read the Venus OS version (834/835); None on a GX without them."""
        try:
            hi, lo = await self.transport.read_registers(self.unit_id, REG_FIRMWARE, 2)
        except IllegalAddress:
            self.firmware = None
        else:
            self.firmware = firmware_from_registers(hi, lo)
        return self.firmware

    async def read_registers(self) -> dict[int, int]:
        """Raw registers of :data:`READ_BLOCKS` (address -> value)."""
        regs: dict[int, int] = {}
        blocks = (*READ_BLOCKS, OVERRIDE_BLOCK) if self.uses_override else READ_BLOCKS
        for address, count in blocks:
            values = await self.transport.read_registers(self.unit_id, address, count)
            regs.update(zip(range(address, address + count), values, strict=True))
        self.last_read_requests = len(blocks)
        return regs

    async def read_snapshot(self) -> VictronSnapshot:
        """Read and decode the system and ESS registers."""
        return snapshot_from_registers(
            await self.read_registers(), override=self.uses_override
        )

    async def read_serial(self) -> str | None:
        """The GX's serial (system register 800, string[6]): its VRM portal id."""
        regs = await self.transport.read_registers(self.unit_id, REG_SERIAL, 6)
        text = struct.pack(">6H", *regs).split(b"\0", 1)[0].decode("ascii", "replace")
        return text.strip() or None

    # ------------------------------------------------------------------ writes

    @staticmethod
    def _check_setpoint(watts: float, bits: int) -> int:
        if not math.isfinite(watts):
            raise OutOfRange(f"grid setpoint {watts} is not a number")
        value = round(watts)
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise OutOfRange(f"grid setpoint {watts} W does not fit int{bits}")
        return value

    async def set_grid_setpoint(self, watts: float) -> float | None:
        """ESS grid setpoint in W (> 0 import, < 0 export); returns the read-back.

        Venus OS >= 3.50: the override at 2716/2717 (int32); older: 2700
        (int16). The register written is read back and its value returned.
        """
        if self.uses_override:
            raw = self._check_setpoint(watts, 32) & 0xFFFFFFFF
            await self.transport.write_registers(
                self.unit_id, REG_ESS_SETPOINT_32, [raw >> 16, raw & 0xFFFF]
            )
            return await self.read_setpoint()
        value = self._check_setpoint(watts, 16)
        await self.transport.write_registers(
            self.unit_id, REG_ESS_SETPOINT, [value & 0xFFFF]
        )
        return await self.read_setpoint()

    async def read_setpoint(self) -> float | None:
        """The setpoint in the register :meth:`set_grid_setpoint` writes."""
        if self.uses_override:
            regs = await self.transport.read_registers(
                self.unit_id, REG_ESS_SETPOINT_32, 2
            )
            return _s32(dict(zip((2716, 2717), regs, strict=True)), 2716)
        return await self.read_setting()

    async def read_setting(self) -> float | None:
        """The GX's own (flash-backed) grid setpoint setting, 2700."""
        (raw,) = await self.transport.read_registers(self.unit_id, REG_ESS_SETPOINT, 1)
        return _s16({REG_ESS_SETPOINT: raw}, REG_ESS_SETPOINT)


class SetpointKeeper:
    """Holds an ESS grid setpoint on a GX without re-writing it periodically.

    ``await keeper.set(w)`` writes once (errors propagate) and reads back the
    register written. :meth:`check` is given each poll's read-back and writes
    again only when the GX no longer holds the value (rebooted, changed on its
    screen), at most once per ``interval`` seconds. ``await keeper.set(None)``
    releases: from Venus OS 3.50 the override is set to the GX's own setting
    (2700, untouched by HashGrid); on older firmware 2700 gets back the value
    it had before HashGrid took it (Victron's default 50 W if unknown).
    ``await keeper.stop()`` stops holding without writing.
    """

    def __init__(
        self,
        gx: VictronGX,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Write through ``gx``; re-assert at most every ``interval`` seconds."""
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.gx = gx
        self.interval = interval
        self.clock = clock
        self.setpoint: float | None = None
        self.read_back: float | None = None
        self.sends = 0
        self.reasserts = 0
        self.failures = 0
        self._previous_setting: float | None = None
        self._last_write: float | None = None

    @property
    def active(self) -> bool:
        """Whether a setpoint is being held."""
        return self.setpoint is not None

    async def _write(self, watts: float) -> None:
        self.read_back = await self.gx.set_grid_setpoint(watts)
        self.sends += 1
        self._last_write = self.clock()

    async def set(self, watts: float | None) -> None:
        """Write ``watts`` and hold it; None releases it to the GX."""
        if watts is None:
            await self._release()
            return
        if self.setpoint is None and not self.gx.uses_override:
            self._previous_setting = await self.gx.read_setting()
        await self._write(watts)
        self.setpoint = watts

    async def _release(self) -> None:
        if self.gx.uses_override:
            setting = await self.gx.read_setting()
            target = DEFAULT_SETPOINT_W if setting is None else setting
        elif self._previous_setting is not None:
            target = self._previous_setting
        else:
            target = DEFAULT_SETPOINT_W
        self.setpoint = None
        await self._write(target)
        self._previous_setting = None

    async def check(self, read_back: float | None) -> None:
        """After a poll: write again if the GX no longer holds the setpoint."""
        self.read_back = read_back
        if self.setpoint is None or read_back is None:
            return
        if abs(read_back - round(self.setpoint)) < 1:
            return
        now = self.clock()
        if self._last_write is not None and now - self._last_write < self.interval:
            return
        _LOGGER.info(
            "the GX holds an ESS grid setpoint of %s W instead of %s W; writing it again",
            read_back,
            self.setpoint,
        )
        try:
            await self._write(self.setpoint)
            self.reasserts += 1
        except MicrogridError as err:
            self.failures += 1
            self._last_write = now
            _LOGGER.warning("re-writing the ESS grid setpoint failed: %s", err)

    async def stop(self) -> None:
        """Stop holding (the GX keeps the last value)."""
        self.setpoint = None
        self._previous_setting = None
