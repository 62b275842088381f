"""SunSpec Modbus reader/writer (no Home Assistant imports).

- :meth:`SunSpecDevice.scan` finds the "SunS" marker (bases 40000, 0, 50000) and
  walks the model chain up to the end model (ID 0xFFFF). A header read that
  fails (busy, server failure, no answer, even "illegal address") is retried
  before the walk gives up; only an "illegal address" that persists ends the
  map, and such an unconfirmed end is probed again at every snapshot. A model
  running past register 65535, or more than 64 models, is a
  :class:`~.errors.MalformedMap`.
- :meth:`SunSpecDevice.read_models` reads the models present in as few requests
  as the map allows: one contiguous span, cut into reads of at most 125
  registers, never cutting a multi-register point in two.
- Points are laid out from the official SunSpec model definitions shipped by
  ``pysunspec2`` (JSON), decoded with their scale factors applied exactly
  (``int x 10**sf`` through :class:`~decimal.Decimal`), and SunSpec's
  "not implemented" values become ``None``. A point exists only within the
  model's declared length: a model cut short has its later points unknown.
- :meth:`SunSpecDevice.read_snapshot` returns the quantities HashGrid uses. It
  reads only the first instance of the models it maps, within a register
  budget (:data:`MAX_SNAPSHOT_REGISTERS`; models beyond it are left out, said
  once at the scan), and checks that the chain still ends where the scan found
  its end (:class:`~.errors.ChainChanged` when it looks different: scan again).
  The ``set_*`` methods write limits, refusing out-of-range values with
  :class:`~.errors.OutOfRange` before anything is written.

Sign conventions of :class:`SunSpecSnapshot` (HashGrid's): battery power > 0
charging, grid power > 0 importing, AC power > 0 inverter delivering to AC.
SunSpec model 802 reports battery power > 0 when discharging (the DER
convention, as in 701/704), so it is negated here; a 203 meter at the grid
connection reports > 0 importing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
import importlib.resources
import json
import logging
import math
import struct
from typing import Any, Final

from .errors import (
    ChainChanged,
    GatewayPathUnavailable,
    IllegalAddress,
    InvalidValue,
    MalformedMap,
    ModbusDeviceError,
    ModbusTimeout,
    OutOfRange,
)
from .transport import ADDRESS_SPACE, MAX_READ_REGISTERS, ModbusTransport

_LOGGER = logging.getLogger(__name__)

BASE_ADDRESSES: Final = (40000, 0, 50000)
SUNS: Final = (0x5375, 0x6E53)
END_MODEL_ID: Final = 0xFFFF
#: Most models a chain may have.
MAX_MODELS: Final = 64
#: Attempts at each header read of the chain walk.
SCAN_ATTEMPTS: Final = 3
#: Most registers one snapshot reads (16 reads of 125; a hybrid inverter's
#: models take ~700).
MAX_SNAPSHOT_REGISTERS: Final = 2000
#: The models a snapshot maps, most needed first (the budget drops the last).
SNAPSHOT_MODELS: Final = (
    103,
    102,
    101,
    113,
    112,
    111,
    203,
    201,
    202,
    204,
    213,
    211,
    212,
    214,
    802,
    124,
    160,
    714,
    701,
    702,
    704,
)

type PointValue = int | float | str | None
type DecodedModel = dict[str, PointValue]

_UNIMPL: Final[dict[str, int]] = {
    "int16": 0x8000,
    "sunssf": 0x8000,
    "uint16": 0xFFFF,
    "count": 0xFFFF,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "int64": 0x8000000000000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
}
#: Accumulators: 0 is "not implemented" (SunSpec); all-ones is seen in practice.
_ACC_UNIMPL: Final[dict[str, frozenset[int]]] = {
    "acc16": frozenset({0, 0xFFFF}),
    "acc32": frozenset({0, 0xFFFFFFFF}),
    "acc64": frozenset({0, 0xFFFFFFFFFFFFFFFF}),
}
_SIGNED: Final = frozenset({"int16", "sunssf", "int32", "int64"})
_SF_LIMIT: Final = 10


# --------------------------------------------------------------------------- layout


@cache
def _definition(model_id: int) -> dict[str, Any] | None:
    """The official JSON definition of a model, or None if pysunspec2 has none."""
    path = (
        importlib.resources.files("sunspec2")
        / "models"
        / "json"
        / f"model_{model_id}.json"
    )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError, OSError:
        return None
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a laid-out model."""

    name: str
    type: str
    size: int
    offset: int  # registers from the model's ID register
    sf: str | int | None
    writable: bool


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """Point offsets of one model instance of a given length."""

    model_id: int
    length: int
    points: Mapping[str, Point]

    def multi_register_interiors(self) -> Iterable[int]:
        """Offsets that lie inside a multi-register point (a read must not cut there)."""
        for point in self.points.values():
            yield from range(point.offset + 1, point.offset + point.size)


def _group_size(group: Mapping[str, Any], *, repeating: bool = True) -> int:
    """Registers of a group; ``repeating=False`` leaves out variable-count groups."""
    size = sum(int(p["size"]) for p in group.get("points", []))
    for sub in group.get("groups", []):
        count = sub.get("count")
        if isinstance(count, int) and count > 0:
            size += _group_size(sub) * count
        elif count is None or repeating:
            size += _group_size(sub)
    return size


def layout_model(
    model_id: int, length: int, regs: Sequence[int] | None = None
) -> ModelLayout | None:
    """Lay out ``model_id`` for a model length ``length`` (L, without ID and L).

    As pysunspec2 does from the official definition: a repeating group counted
    by a point (``"count": "NPt"``, possibly nested, as a curve's points in
    705-712) repeats as often as that point says in ``regs`` (the model's
    registers from its ID); without ``regs``, or for a group of count 0 ("fill
    the model"), as many times as the length allows. None if the model is
    unknown.
    """
    definition = _definition(model_id)
    if definition is None:
        return None
    points: dict[str, Point] = {}
    offset = 0

    def counted(prefix: str, count: str) -> int | None:
        if regs is None:
            return None
        point = points.get(prefix + count) or points.get(count)
        if point is None or point.offset + point.size > len(regs):
            return None
        raw = _raw(regs, point.offset, point.size)
        return None if raw == _UNIMPL.get(point.type) else raw

    def lay(group: Mapping[str, Any], prefix: str, remaining_for_repeat: int) -> None:
        nonlocal offset
        for p in group.get("points", []):
            name = prefix + str(p["name"])
            points[name] = Point(
                name=name,
                type=str(p["type"]),
                size=int(p["size"]),
                offset=offset,
                sf=p.get("sf"),
                writable=p.get("access") == "RW",
            )
            offset += int(p["size"])
        for sub in group.get("groups", []):
            count = sub.get("count")
            name = str(sub["name"])
            if isinstance(count, int) and count > 0:
                for i in range(count):
                    lay(sub, f"{prefix}{name}[{i}].", 0)
            elif count is None:
                lay(sub, f"{prefix}{name}.", 0)
            else:
                reps = counted(prefix, count) if isinstance(count, str) else None
                if reps is None:  # as many as fit
                    size = _group_size(sub)
                    reps = max(0, remaining_for_repeat) // size if size else 0
                for i in range(min(reps, length + 2)):
                    if offset >= length + 2:
                        break
                    lay(sub, f"{prefix}{name}[{i}].", 0)

    top = definition["group"]
    fixed = _group_size(top, repeating=False)
    lay(top, "", length + 2 - fixed)
    # a model cut short: its later points do not exist (unknown, never zeros)
    inside = {n: p for n, p in points.items() if p.offset + p.size <= length + 2}
    return ModelLayout(model_id=model_id, length=length, points=inside)


@cache
def _counted_by_points(model_id: int) -> bool:
    """Whether a repeating group of the model is counted by a point."""
    definition = _definition(model_id)

    def walk(group: Mapping[str, Any]) -> bool:
        return any(
            isinstance(sub.get("count"), str) or walk(sub)
            for sub in group.get("groups", [])
        )

    return definition is not None and walk(definition["group"])


def layout_for(layout: ModelLayout, regs: Sequence[int]) -> ModelLayout:
    """``layout`` redone with the counts ``regs`` hold, where points count groups."""
    if not _counted_by_points(layout.model_id):
        return layout
    return layout_model(layout.model_id, layout.length, regs) or layout


# --------------------------------------------------------------------------- decoding


def _raw(regs: Sequence[int], offset: int, size: int) -> int:
    value = 0
    for reg in regs[offset : offset + size]:
        value = (value << 16) | reg
    return value


def decode_point(point: Point, regs: Sequence[int]) -> int | str | float | None:
    """Decode one point's raw value (before scale factors); None = not implemented."""
    t = point.type
    if len(regs) < point.offset + point.size:
        return None  # beyond the registers read: unknown, never zero
    if t == "string":
        data = struct.pack(
            f">{point.size}H", *regs[point.offset : point.offset + point.size]
        )
        text = data.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
        return text or None
    raw = _raw(regs, point.offset, point.size)
    if t == "float32":
        value = struct.unpack(">f", raw.to_bytes(4, "big"))[0]
        return None if math.isnan(value) else float(value)
    if t in _ACC_UNIMPL:
        return None if raw in _ACC_UNIMPL[t] else raw
    if t == "pad":
        return None
    if t in _UNIMPL and raw == _UNIMPL[t]:
        return None
    if t in _SIGNED:
        bits = 16 * point.size
        if raw >= 1 << (bits - 1):
            raw -= 1 << bits
        if t == "sunssf" and not -_SF_LIMIT <= raw <= _SF_LIMIT:
            return None
    return raw


def scale(raw: int, sf: int) -> float:
    """``raw x 10**sf`` exactly (Decimal), then the nearest float."""
    if sf >= 0:
        return float(raw * 10**sf)
    return float(Decimal(raw).scaleb(sf))


def _sf_point_name(layout: ModelLayout, point: Point) -> str | None:
    if not isinstance(point.sf, str):
        return None
    if point.sf in layout.points:
        return point.sf
    prefix = point.name.rsplit(".", 1)[0] + "." if "." in point.name else ""
    name = prefix + point.sf
    return name if name in layout.points else None


#: (model, point) whose scale factor was unimplemented, logged once each.
_UNSCALED_LOGGED: set[tuple[int, str]] = set()


def decode_model(layout: ModelLayout, regs: Sequence[int]) -> DecodedModel:
    """Decode every point of a model (``regs`` starts at its ID register).

    A point whose scale factor is unimplemented (0x8000) is read unscaled, as
    pysunspec2 reads it (its ``cvalue`` applies no factor when the factor has
    no value): devices that leave a factor out mean 10^0. Logged once per
    point. A factor outside +-10 is garbage: the value is unknown.
    """
    raw_values: dict[str, int | str | float | None] = {
        name: decode_point(p, regs)
        for name, p in layout.points.items()
        if p.type != "pad"
    }
    out: DecodedModel = {}
    for name, value in raw_values.items():
        point = layout.points[name]
        if point.sf is None or value is None or not isinstance(value, int):
            out[name] = value
            continue
        if isinstance(point.sf, int):
            sf: int | str | float | None = point.sf
        else:
            sf_name = _sf_point_name(layout, point)
            sf = raw_values.get(sf_name) if sf_name else None
            if sf is None and sf_name is not None:
                sf_point = layout.points[sf_name]
                if (
                    sf_point.offset < len(regs)
                    and regs[sf_point.offset] == _UNIMPL["sunssf"]
                ):
                    sf = 0  # unimplemented: unscaled, as pysunspec2
                    key = (layout.model_id, name)
                    if key not in _UNSCALED_LOGGED:
                        _UNSCALED_LOGGED.add(key)
                        _LOGGER.info(
                            "SunSpec model %s: %s has no scale factor (%s is "
                            "0x8000); read unscaled, as pysunspec2 does",
                            layout.model_id,
                            name,
                            sf_name,
                        )
        out[name] = scale(value, sf) if isinstance(sf, int) else None
    return out


def encode_value(point: Point, value: float, sf: int) -> list[int]:
    """Registers for ``value`` (engineering units) at scale factor ``sf``.

    Raises :class:`OutOfRange` if the scaled value does not fit the point's type
    (the type's "not implemented" value is never produced).
    """
    raw_dec = (Decimal(repr(float(value))).scaleb(-sf)).to_integral_value()
    raw = int(raw_dec)
    bits = 16 * point.size
    if point.type in _SIGNED:
        lo, hi = -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 2
    if not lo <= raw <= hi:
        raise OutOfRange(f"{point.name}={value} does not fit {point.type} at sf {sf}")
    raw &= (1 << bits) - 1
    return [(raw >> (16 * (point.size - 1 - i))) & 0xFFFF for i in range(point.size)]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model found by the scan."""

    model_id: int
    address: int  # of the model's ID register
    length: int  # L: registers after ID and L

    @property
    def end(self) -> int:
        """First address after the model."""
        return self.address + 2 + self.length


@dataclass(frozen=True, slots=True)
class Identity:
    """Model 1 (common)."""

    manufacturer: str | None
    model: str | None
    options: str | None
    version: str | None
    serial: str | None


@dataclass(frozen=True, slots=True)
class SunSpecSnapshot:
    """What HashGrid reads from a SunSpec hybrid inverter (None = not available)."""

    ac_power_w: float | None = None
    ac_energy_wh: float | None = None
    pv_power_w: float | None = None
    pv_energy_wh: float | None = None
    battery_soc_pct: float | None = None
    battery_power_w: float | None = None  # > 0 charging
    battery_charged_wh: float | None = None
    battery_discharged_wh: float | None = None
    dc_bus_voltage_v: float | None = None
    grid_power_w: float | None = None  # > 0 importing
    grid_import_wh: float | None = None
    grid_export_wh: float | None = None
    max_power_w: float | None = None  # 702 WMax
    export_limit_w: float | None = None  # 704 WMaxLimPct x WMax; None = no limit
    export_limit_enabled: bool = False
    max_charge_w: float | None = None  # effective storage charge limit (124)
    max_discharge_w: float | None = None
    battery_max_charge_w: float | None = None  # what the battery can take (802/124)
    battery_max_discharge_w: float | None = None
    models: tuple[int, ...] = ()
    #: Fields whose device value was implausible and was dropped.
    rejected: tuple[str, ...] = field(default=())


def _num(value: PointValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _sum(values: Iterable[PointValue]) -> float | None:
    nums = [_num(v) for v in values]
    if not nums or any(n is None for n in nums):
        return None
    return float(sum(n for n in nums if n is not None))


def snapshot_from_models(
    models: Mapping[int, Sequence[DecodedModel]],
) -> SunSpecSnapshot:
    """Build the snapshot from decoded models (first instance of each)."""
    m: dict[int, DecodedModel] = {mid: inst[0] for mid, inst in models.items() if inst}
    empty: DecodedModel = {}
    inv = (
        m.get(103)
        or m.get(102)
        or m.get(101)
        or m.get(113)  # the float inverter models (same point names)
        or m.get(112)
        or m.get(111)
        or m.get(701)
        or empty
    )
    mppt, storage, battery = m.get(160, empty), m.get(124, empty), m.get(802, empty)
    der_ac, nameplate, ctl = m.get(701, empty), m.get(702, empty), m.get(704, empty)
    dc = m.get(714, empty)
    meter = next(
        (m[i] for i in (203, 201, 202, 204, 213, 211, 212, 214) if m.get(i)), empty
    )
    rejected: list[str] = []

    def plausible(name: str, value: float | None, lo: float, hi: float) -> float | None:
        if value is None:
            return None
        if not lo <= value <= hi:
            rejected.append(name)
            return None
        return value

    ac_w = _num(inv.get("W"))
    if ac_w is None:
        ac_w = _num(der_ac.get("W"))
    ac_wh = _num(inv.get("WH"))
    if ac_wh is None:
        ac_wh = _num(der_ac.get("TotWhInj"))

    n_mod = sum(1 for k in mppt if k.endswith(".DCW"))
    pv_w = _sum(mppt.get(f"module[{i}].DCW") for i in range(n_mod)) if n_mod else None
    pv_wh = _sum(mppt.get(f"module[{i}].DCWH") for i in range(n_mod)) if n_mod else None

    # DC ports (714): PV and ESS ports by type
    ports = sorted({k.split("]", 1)[0] + "]" for k in dc if k.startswith("Prt[")})
    ess = next((p for p in ports if dc.get(f"{p}.PrtTyp") == 1), None)
    pv_port = next((p for p in ports if dc.get(f"{p}.PrtTyp") == 0), None)
    if pv_w is None and pv_port:
        pv_w = _num(dc.get(f"{pv_port}.DCW"))
    if pv_wh is None and pv_port:
        pv_wh = _num(dc.get(f"{pv_port}.DCWhInj"))

    soc = _num(battery.get("SoC"))
    if soc is None:
        soc = _num(storage.get("ChaState"))
    bat_w = _num(battery.get("W"))
    if bat_w is not None:
        # 802 W: "Total power flowing to/from the battery bank" — the official
        # definition (pysunspec2 1.3.7 model_802.json) gives no sign. Taken as
        # > 0 discharging (not confirmed from a SunSpec document; issue 14, 6).
        bat_w = -bat_w
    elif ess:
        ess_w = _num(dc.get(f"{ess}.DCW"))
        bat_w = None if ess_w is None else -ess_w
    dc_v = _num(battery.get("V"))
    if dc_v is None and ess:
        dc_v = _num(dc.get(f"{ess}.DCV"))
    if dc_v is None:
        dc_v = _num(storage.get("InBatV"))

    wmax = _num(nameplate.get("WMax"))
    if wmax is None:
        wmax = _num(nameplate.get("WMaxRtg"))
    enabled = ctl.get("WMaxLimPctEna") == 1
    pct = _num(ctl.get("WMaxLimPct"))
    limit = (
        wmax * pct / 100.0 if enabled and wmax is not None and pct is not None else None
    )

    wcha = _num(storage.get("WChaMax"))
    mod = storage.get("StorCtl_Mod")
    mod_bits = mod if isinstance(mod, int) else 0
    in_rte, out_rte = _num(storage.get("InWRte")), _num(storage.get("OutWRte"))
    max_chg = max_dis = None
    if wcha is not None:
        max_chg = wcha * in_rte / 100.0 if mod_bits & 1 and in_rte is not None else wcha
        max_dis = (
            wcha * out_rte / 100.0 if mod_bits & 2 and out_rte is not None else wcha
        )
    bat_max_chg = _num(battery.get("WChaRteMax"))
    bat_max_dis = _num(battery.get("WDisChaRteMax"))

    hard = 1e7  # 10 MW: anything beyond is garbage for a site like this
    return SunSpecSnapshot(
        ac_power_w=plausible("ac_power_w", ac_w, -hard, hard),
        ac_energy_wh=plausible("ac_energy_wh", ac_wh, 0, 1e13),
        pv_power_w=plausible("pv_power_w", pv_w, 0, hard),
        pv_energy_wh=plausible("pv_energy_wh", pv_wh, 0, 1e13),
        battery_soc_pct=plausible("battery_soc_pct", soc, 0, 100),
        battery_power_w=plausible("battery_power_w", bat_w, -hard, hard),
        battery_charged_wh=plausible(
            "battery_charged_wh",
            _num(dc.get(f"{ess}.DCWhAbs")) if ess else None,
            0,
            1e13,
        ),
        battery_discharged_wh=plausible(
            "battery_discharged_wh",
            _num(dc.get(f"{ess}.DCWhInj")) if ess else None,
            0,
            1e13,
        ),
        dc_bus_voltage_v=plausible("dc_bus_voltage_v", dc_v, 0, 1500),
        grid_power_w=plausible("grid_power_w", _num(meter.get("W")), -hard, hard),
        grid_import_wh=plausible(
            "grid_import_wh", _num(meter.get("TotWhImp")), 0, 1e13
        ),
        grid_export_wh=plausible(
            "grid_export_wh", _num(meter.get("TotWhExp")), 0, 1e13
        ),
        max_power_w=plausible("max_power_w", wmax, 0, hard),
        export_limit_w=plausible("export_limit_w", limit, 0, hard),
        export_limit_enabled=enabled,
        max_charge_w=plausible("max_charge_w", max_chg, 0, hard),
        max_discharge_w=plausible("max_discharge_w", max_dis, 0, hard),
        battery_max_charge_w=plausible(
            "battery_max_charge_w", bat_max_chg or wcha, 0, hard
        ),
        battery_max_discharge_w=plausible(
            "battery_max_discharge_w", bat_max_dis or wcha, 0, hard
        ),
        models=tuple(sorted(models)),
        rejected=tuple(rejected),
    )


# --------------------------------------------------------------------------- device


def plan_reads(
    spans: Sequence[tuple[int, int]],
    no_cut: frozenset[int] = frozenset(),
    max_count: int = MAX_READ_REGISTERS,
) -> list[tuple[int, int]]:
    """Cover address spans ``[start, end)`` with the fewest reads of ``<= max_count``.

    Reads may run through gaps between spans (the SunSpec chain is contiguous
    and readable); no read ends at an address in ``no_cut`` (inside a
    multi-register point). Returns ``(address, count)`` pairs.
    """
    needed: list[tuple[int, int]] = []
    for s, e in sorted((s, e) for s, e in spans if e > s):
        if needed and s <= needed[-1][1]:
            needed[-1] = (needed[-1][0], max(needed[-1][1], e))
        else:
            needed.append((s, e))
    reads: list[tuple[int, int]] = []
    if not needed:
        return reads
    idx, cur = 0, needed[0][0]
    while True:
        limit = cur + max_count
        end, j = cur, idx
        while j < len(needed) and needed[j][0] < limit:
            end = min(limit, needed[j][1])
            j += 1
        while end in no_cut and end > cur + 1:
            end -= 1
        reads.append((cur, end - cur))
        while idx < len(needed) and needed[idx][1] <= end:
            idx += 1
        if idx == len(needed):
            break
        cur = max(end, needed[idx][0])
    return reads


class SunSpecDevice:
    """A SunSpec device behind one Modbus unit id."""

    def __init__(self, transport: ModbusTransport, unit_id: int = 1) -> None:
        """Use ``transport``; call :meth:`scan` before reading."""
        self.transport = transport
        self.unit_id = unit_id
        self.base_address: int | None = None
        self.models: tuple[ModelInfo, ...] = ()
        #: Address after the last model; whether an end model (0xFFFF) is there.
        self.end_address: int | None = None
        self.end_confirmed = False
        #: The models a snapshot reads, and those left out by the budget.
        self.snapshot_models: tuple[ModelInfo, ...] = ()
        self.over_budget: tuple[ModelInfo, ...] = ()
        #: Seconds before the n-th retry of a header read (tests shorten it).
        self.retry_delay = 0.2
        self._layouts: dict[int, ModelLayout | None] = {}
        self.last_read_requests = 0

    async def _read(self, address: int, count: int) -> list[int]:
        return await self.transport.read_registers(self.unit_id, address, count)

    async def _read_retrying(
        self, address: int, count: int, *, in_chain: bool
    ) -> list[int]:
        """Read, retrying what may pass: busy, server failure, gateway no answer.

        "Gateway path unavailable" is never retried (the unit is not there).
        In the chain (``in_chain``: the marker has answered) no answer and
        "illegal address" are retried too. The last error is raised.
        """
        for attempt in range(SCAN_ATTEMPTS):
            last = attempt == SCAN_ATTEMPTS - 1
            try:
                return await self._read(address, count)
            except GatewayPathUnavailable:
                raise
            except IllegalAddress:
                if not in_chain or last:
                    raise
            except ModbusTimeout:
                if not in_chain or last:
                    raise
            except ModbusDeviceError as err:
                if err.code in (0x01, 0x03) or last:
                    raise
            await asyncio.sleep(self.retry_delay * (attempt + 1))
        raise AssertionError("unreachable")

    async def find_base(self) -> int:
        """The address of the "SunS" marker; :class:`InvalidValue` if there is none.

        An "illegal address" (or illegal function) at a base means "not here";
        other exceptions are retried, then raised: they are not an answer.
        """
        for base in BASE_ADDRESSES:
            try:
                regs = await self._read_retrying(base, 2, in_chain=False)
            except ModbusDeviceError as err:
                if err.code in (0x01, 0x02, 0x03):
                    continue
                raise
            if tuple(regs) == SUNS:
                self.base_address = base
                return base
        raise InvalidValue("no SunSpec marker at 40000, 0 or 50000")

    async def scan(self) -> tuple[ModelInfo, ...]:
        """Find the marker and walk the model chain."""
        base = await self.find_base()
        addr = base + 2
        found: list[ModelInfo] = []
        confirmed = False
        while len(found) < MAX_MODELS:
            if addr + 2 > ADDRESS_SPACE:
                break  # the map fills the address space: no room for an end model
            try:
                model_id, length = await self._read_retrying(addr, 2, in_chain=True)
            except IllegalAddress:
                break  # a map that ends without an end model (probed again later)
            if model_id == END_MODEL_ID or model_id == 0:
                confirmed = True
                break
            if addr + 2 + length > ADDRESS_SPACE:
                raise MalformedMap(
                    f"model {model_id} at {addr} ({length} registers) runs past 65535"
                )
            found.append(ModelInfo(model_id, addr, length))
            addr += 2 + length
        else:
            raise MalformedMap(
                f"SunSpec model chain does not end ({MAX_MODELS} models)"
            )
        self.models = tuple(found)
        self.end_address, self.end_confirmed = addr, confirmed
        await asyncio.to_thread(self._load_layouts)
        self._choose_snapshot_models()
        return self.models

    def _load_layouts(self) -> None:
        self._layouts = {
            info.address: layout_model(info.model_id, info.length)
            for info in self.models
        }

    def _choose_snapshot_models(self) -> None:
        """First instance of each mapped model, most needed first, within budget."""
        chosen: list[ModelInfo] = []
        over: list[ModelInfo] = []
        for model_id in SNAPSHOT_MODELS:
            info = self.model_info(model_id)
            if info is None or self._layouts.get(info.address) is None:
                continue
            plan = self._plan([*chosen, info])
            if sum(count for _, count in plan) <= MAX_SNAPSHOT_REGISTERS:
                chosen.append(info)
            else:
                over.append(info)
        self.snapshot_models = tuple(sorted(chosen, key=lambda i: i.address))
        self.over_budget = tuple(over)
        if over:
            _LOGGER.warning(
                "SunSpec unit %s at %s:%s: models %s are too large to read every "
                "poll (over %s registers); their values stay unknown",
                self.unit_id,
                self.transport.host,
                self.transport.port,
                ", ".join(f"{i.model_id} ({i.length + 2} registers)" for i in over),
                MAX_SNAPSHOT_REGISTERS,
            )

    def layout(self, info: ModelInfo) -> ModelLayout | None:
        """Layout of a scanned model (None if its definition is unknown)."""
        return self._layouts.get(info.address)

    def model_info(self, model_id: int) -> ModelInfo | None:
        """First model with this id."""
        return next((i for i in self.models if i.model_id == model_id), None)

    def _plan(
        self, infos: Iterable[ModelInfo], extra: Iterable[tuple[int, int]] = ()
    ) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = list(extra)
        no_cut: set[int] = set()
        for info in infos:
            layout = self._layouts.get(info.address)
            if layout is None:
                continue
            spans.append((info.address, info.end))
            no_cut.update(info.address + o for o in layout.multi_register_interiors())
        return plan_reads(spans, frozenset(no_cut))

    def _wanted(self, model_ids: Iterable[int] | None) -> list[ModelInfo]:
        wanted = set(model_ids) if model_ids is not None else None
        return [
            info
            for info in self.models
            if self._layouts.get(info.address) is not None
            and (wanted is None or info.model_id in wanted)
        ]

    def read_plan(
        self, model_ids: Iterable[int] | None = None
    ) -> list[tuple[int, int]]:
        """Reads needed for ``model_ids`` (default: every known model)."""
        return self._plan(self._wanted(model_ids))

    async def read_models(
        self, model_ids: Iterable[int] | None = None
    ) -> dict[int, list[DecodedModel]]:
        """Read and decode models (default: all with a known definition)."""
        if self.base_address is None:
            await self.scan()
        return await self._read_infos(self._wanted(model_ids))

    async def _read_infos(
        self, infos: Sequence[ModelInfo], *, check_end: bool = False
    ) -> dict[int, list[DecodedModel]]:
        end = self.end_address
        extra = [(end, end + 2)] if check_end and end is not None else []
        plan = self._plan(infos, extra)
        data: dict[int, int] = {}
        for address, count in plan:
            regs = await self._read(address, count)
            data.update(zip(range(address, address + count), regs, strict=True))
        self.last_read_requests = len(plan)
        if extra and end is not None and data[end] not in (END_MODEL_ID, 0):
            raise ChainChanged(
                f"the model chain looks different: {data[end]} at {end}, "
                "where its end model was"
            )
        out: dict[int, list[DecodedModel]] = {}
        for info in infos:
            layout = self._layouts.get(info.address)
            if layout is None:
                continue
            regs = [data[a] for a in range(info.address, info.end)]
            if regs[0] != info.model_id or regs[1] != info.length:
                raise InvalidValue(
                    f"model {info.model_id} moved: found {regs[0]}/{regs[1]} at {info.address}"
                )
            out.setdefault(info.model_id, []).append(
                decode_model(layout_for(layout, regs), regs)
            )
        return out

    async def read_identity(self) -> Identity:
        """Model 1: manufacturer, model, options, version, serial."""
        models = await self.read_models([1])
        if 1 not in models:
            raise InvalidValue("no common model (1)")
        common = models[1][0]

        def text(name: str) -> str | None:
            value = common.get(name)
            return value if isinstance(value, str) else None

        return Identity(text("Mn"), text("Md"), text("Opt"), text("Vr"), text("SN"))

    async def _probe_unconfirmed_end(self) -> None:
        """A chain that ended in "illegal address": has a model appeared there?"""
        end = self.end_address
        if end is None or end + 2 > ADDRESS_SPACE:
            return
        try:
            model_id, _ = await self._read(end, 2)
        except IllegalAddress:
            return
        self.last_read_requests += 1
        if model_id in (END_MODEL_ID, 0):
            self.end_confirmed = True
            return
        raise ChainChanged(
            f"the model chain looks different: model {model_id} at {end}, "
            "after the end the scan found"
        )

    async def read_snapshot(self) -> SunSpecSnapshot:
        """Read the mapped models (within the budget) and build the snapshot."""
        if self.base_address is None:
            await self.scan()
        confirmed = self.end_confirmed
        models = await self._read_infos(self.snapshot_models, check_end=confirmed)
        if not confirmed:
            await self._probe_unconfirmed_end()
        return snapshot_from_models(models)

    # ----------------------------------------------------------------- writes

    async def _fresh(
        self, model_id: int
    ) -> tuple[ModelInfo, ModelLayout, DecodedModel]:
        if self.base_address is None:
            await self.scan()
        info = self.model_info(model_id)
        layout = self.layout(info) if info else None
        if info is None or layout is None:
            raise InvalidValue(f"device has no model {model_id}")
        models = await self.read_models([model_id])
        return info, layout, models[model_id][0]

    async def _write_points(
        self, info: ModelInfo, layout: ModelLayout, values: Mapping[str, list[int]]
    ) -> None:
        """Write points; adjacent points go in one request, in address order."""
        items = sorted(
            ((layout.points[n].offset, regs) for n, regs in values.items()),
            key=lambda x: x[0],
        )
        batches: list[tuple[int, list[int]]] = []
        for offset, regs in items:
            if batches and batches[-1][0] + len(batches[-1][1]) == offset:
                batches[-1][1].extend(regs)
            else:
                batches.append((offset, list(regs)))
        for offset, regs in batches:
            await self.transport.write_registers(
                self.unit_id, info.address + offset, regs
            )

    @staticmethod
    def _sf(layout: ModelLayout, decoded: DecodedModel, point: str) -> int:
        p = layout.points[point]
        if isinstance(p.sf, int):
            return p.sf
        if p.sf is None:
            return 0
        sf_name = _sf_point_name(layout, p)
        raw_sf = decoded.get(sf_name) if sf_name else None
        if not isinstance(raw_sf, int):
            raise InvalidValue(f"scale factor of {point} not available")
        return raw_sf

    @staticmethod
    def _check_watts(watts: float, upper: float | None, what: str) -> None:
        if not math.isfinite(watts):
            raise OutOfRange(f"{what}: {watts} is not a number")
        if upper is None:
            raise InvalidValue(f"{what}: device reports no maximum")
        if not 0 <= watts <= upper:
            raise OutOfRange(f"{what}: {watts} W outside 0..{upper} W")

    async def set_export_limit(self, watts: float | None) -> None:
        """Limit the inverter's AC output (704 WMaxLimPct of 702 WMax); None lifts it."""
        info702, _, nameplate = await self._fresh(702)
        _ = info702
        wmax = _num(nameplate.get("WMax")) or _num(nameplate.get("WMaxRtg"))
        info, layout, ctl = await self._fresh(704)
        if "WMaxLimPct" not in layout.points or "WMaxLimPctEna" not in layout.points:
            raise InvalidValue("704 has no WMaxLimPct")
        if watts is None:
            await self._write_points(info, layout, {"WMaxLimPctEna": [0]})
            return
        self._check_watts(watts, wmax, "export limit")
        assert wmax is not None
        if wmax <= 0:
            raise InvalidValue("WMax is 0")
        pct = watts / wmax * 100.0
        sf = self._sf(layout, ctl, "WMaxLimPct")
        regs = encode_value(layout.points["WMaxLimPct"], pct, sf)
        await self._write_points(
            info, layout, {"WMaxLimPct": regs, "WMaxLimPctEna": [1]}
        )

    async def _set_storage_rate(self, watts: float | None, charge: bool) -> None:
        info, layout, storage = await self._fresh(124)
        rate_point, bit = ("InWRte", 1) if charge else ("OutWRte", 2)
        what = "max charge power" if charge else "max discharge power"
        mod = storage.get("StorCtl_Mod")
        mod_bits = mod if isinstance(mod, int) else 0
        if watts is None:
            await self._write_points(info, layout, {"StorCtl_Mod": [mod_bits & ~bit]})
            return
        wcha = _num(storage.get("WChaMax"))
        self._check_watts(watts, wcha, what)
        assert wcha is not None
        if wcha <= 0:
            raise InvalidValue("WChaMax is 0")
        sf = self._sf(layout, storage, rate_point)
        regs = encode_value(layout.points[rate_point], watts / wcha * 100.0, sf)
        await self._write_points(info, layout, {rate_point: regs})
        await self._write_points(info, layout, {"StorCtl_Mod": [mod_bits | bit]})

    async def set_max_charge_power(self, watts: float | None) -> None:
        """Limit battery charging (124 InWRte of WChaMax); None lifts the limit."""
        await self._set_storage_rate(watts, charge=True)

    async def set_max_discharge_power(self, watts: float | None) -> None:
        """Limit battery discharging (124 OutWRte of WChaMax); None lifts the limit."""
        await self._set_storage_rate(watts, charge=False)
