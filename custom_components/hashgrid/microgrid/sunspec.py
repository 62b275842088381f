"""SunSpec Modbus device client: scan, read, write (no Home Assistant imports).

- :meth:`SunSpecDevice.scan` finds the "SunS" marker (bases 40000, 0, 50000) and
  walks the model chain up to the end model (ID 0xFFFF). A header read that
  fails (busy, server failure, no answer, even "illegal address") is retried
  before the walk gives up; only an "illegal address" that persists ends the
  map, and such an unconfirmed end is probed again at every snapshot. A model
  running past register 65535, or more than 64 models, is a
  :class:`~.errors.MalformedMap`.
- :meth:`SunSpecDevice.read_models` reads the models present in as few requests
  as the map allows: one contiguous span, cut into reads of at most 125
  registers, never cutting a multi-register point in two. Models are laid out
  by :mod:`.sunspec_layout` and decoded by :mod:`.sunspec_codec`.
- :meth:`SunSpecDevice.read_snapshot` returns the quantities HashGrid uses
  (:mod:`.sunspec_snapshot`). It reads only the first instance of the models
  it maps, within a register budget (:data:`MAX_SNAPSHOT_REGISTERS`; models
  beyond it are left out, said once at the scan), and checks that the chain
  still ends where the scan found its end (:class:`~.errors.ChainChanged`
  when it looks different: scan again).
  The ``set_*`` methods write limits, refusing out-of-range values with
  :class:`~.errors.OutOfRange` before anything is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import logging
import math
from typing import Final

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
from .sunspec_codec import DecodedModel, decode_model, encode_value
from .sunspec_layout import ModelLayout, layout_for, layout_model, sf_point_name
from .sunspec_snapshot import (
    SNAPSHOT_MODELS,
    SunSpecSnapshot,
    num,
    snapshot_from_models,
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
        sf_name = sf_point_name(layout, p)
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
        wmax = num(nameplate.get("WMax")) or num(nameplate.get("WMaxRtg"))
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
        wcha = num(storage.get("WChaMax"))
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
