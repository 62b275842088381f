"""A SunSpec register image laid out from the official model definitions.

The JSON model definitions shipped with ``pysunspec2`` give each model's points
in order with their type, size (registers), scale-factor point and access. This
module lays them out at a base address ("SunS" marker, models, end marker),
fills every point with SunSpec's "not implemented" value and lets the simulator
set points in engineering units (the scale factor is applied here).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
import importlib.resources
import json
import struct
from typing import Any

SUNS_MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL_ID = 0xFFFF

_UNIMPL: dict[str, int] = {
    "int16": 0x8000,
    "uint16": 0xFFFF,
    "count": 0xFFFF,
    "acc16": 0,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "sunssf": 0x8000,
    "pad": 0x8000,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "acc32": 0,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "ipaddr": 0,
    "float32": 0x7FC00000,
    "int64": 0x8000000000000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
    "acc64": 0,
}
_SIGNED = {"int16", "sunssf", "int32", "int64"}


@cache
def load_model_definition(model_id: int) -> dict[str, Any]:
    """Return the official JSON definition of a SunSpec model (from pysunspec2)."""
    path = importlib.resources.files("sunspec2") / "models" / "json"
    text = (path / f"model_{model_id}.json").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@dataclass(frozen=True, slots=True)
class PointSlot:
    """Where one point of one model lives."""

    name: str  # "W", or "module[1].DCW" for points of repeating groups
    type: str
    size: int
    offset: int  # registers from the model's ID register
    sf: str | int | None
    writable: bool


class ModelImage:
    """One model's registers (ID and L included) and its point layout."""

    def __init__(self, model_id: int, repeats: dict[str, int] | None = None) -> None:
        """Lay out ``model_id``; ``repeats`` gives counts of repeating groups."""
        self.model_id = model_id
        self.definition = load_model_definition(model_id)
        self.slots: dict[str, PointSlot] = {}
        self._offset = 0
        self._lay_group(self.definition["group"], "", repeats or {}, top=True)
        self.length = self._offset - 2  # L excludes ID and L
        self.regs: list[int] = [0] * self._offset
        for slot in self.slots.values():
            self._fill_unimplemented(slot)
        self.regs[0] = model_id
        self.regs[1] = self.length
        self.start = 0  # absolute address of ID, set by SunSpecImage
        #: Points cut off by :meth:`truncate` (setting them does nothing).
        self.cut: set[str] = set()

    def truncate(self, length: int) -> None:
        """Declare only ``length`` registers (after ID and L): a model cut short.

        Points beyond no longer exist; setting them does nothing, reading them
        gives None. Call before the image is placed in a :class:`SunSpecImage`.
        """
        if not 0 <= length <= self.length:
            raise ValueError(
                f"{self.model_id}: length {length} not in 0..{self.length}"
            )
        self.regs = self.regs[: length + 2]
        self.regs[1] = self.length = length
        kept = {n: s for n, s in self.slots.items() if s.offset + s.size <= length + 2}
        self.cut = set(self.slots) - set(kept)
        self.slots = kept

    def _lay_group(
        self, group: dict[str, Any], prefix: str, repeats: dict[str, int], top: bool
    ) -> None:
        for point in group.get("points", []):
            size = int(point["size"])
            name = prefix + point["name"]
            self.slots[name] = PointSlot(
                name=name,
                type=point["type"],
                size=size,
                offset=self._offset,
                sf=point.get("sf"),
                writable=point.get("access") == "RW",
            )
            self._offset += size
        for sub in group.get("groups", []):
            count = repeats.get(sub["name"])
            if count is None:
                raw = sub.get("count")
                count = raw if isinstance(raw, int) and raw > 0 else 1
            for i in range(count):
                sub_prefix = f"{prefix}{sub['name']}[{i}]."
                if sub.get("type") == "sync" or (
                    count == 1 and not repeats.get(sub["name"])
                ):
                    sub_prefix = f"{prefix}{sub['name']}."
                self._lay_group(sub, sub_prefix, repeats, top=False)
        _ = top

    def _fill_unimplemented(self, slot: PointSlot) -> None:
        if slot.type == "string":
            self.regs[slot.offset : slot.offset + slot.size] = [0] * slot.size
            return
        self._put_raw(slot, _UNIMPL.get(slot.type, 0))

    def _put_raw(self, slot: PointSlot, raw: int) -> None:
        bits = 16 * slot.size
        raw &= (1 << bits) - 1
        for i in range(slot.size):
            shift = 16 * (slot.size - 1 - i)
            self.regs[slot.offset + i] = (raw >> shift) & 0xFFFF

    def raw(self, name: str) -> int:
        """The point's raw unsigned integer."""
        slot = self.slots[name]
        value = 0
        for reg in self.regs[slot.offset : slot.offset + slot.size]:
            value = (value << 16) | reg
        return value

    def signed(self, name: str) -> int:
        """The point's raw value, sign-extended for signed types."""
        slot = self.slots[name]
        value = self.raw(name)
        bits = 16 * slot.size
        if slot.type in _SIGNED and value >= 1 << (bits - 1):
            value -= 1 << bits
        return value

    def sf_of(self, name: str) -> int:
        """Scale factor exponent that applies to ``name`` (0 when none)."""
        sf = self.slots[name].sf
        if sf is None:
            return 0
        if isinstance(sf, int):
            return sf
        prefix = name.rsplit(".", 1)[0] + "." if "." in name else ""
        sf_name = sf if sf in self.slots else prefix + sf
        if sf_name not in self.slots:
            sf_name = sf
        if sf_name not in self.slots and sf_name in self.cut:
            return 0  # the scale factor was cut off: store unscaled
        return self.signed(sf_name)

    def set_raw(self, name: str, raw: int) -> None:
        """Store a raw integer (two's complement for negatives)."""
        if name in self.cut:
            return
        self._put_raw(self.slots[name], raw)

    def set(self, name: str, value: float | int | str | None) -> None:
        """Store ``value`` in engineering units; None stores "not implemented"."""
        if name in self.cut:
            return
        slot = self.slots[name]
        if value is None:
            self._fill_unimplemented(slot)
            return
        if slot.type == "string":
            data = str(value).encode()[: 2 * slot.size].ljust(2 * slot.size, b"\0")
            self.regs[slot.offset : slot.offset + slot.size] = list(
                struct.unpack(f">{slot.size}H", data)
            )
            return
        if slot.type == "float32":
            (raw,) = struct.unpack(">I", struct.pack(">f", float(value)))
            self._put_raw(slot, raw)
            return
        sf = self.sf_of(name) if slot.sf is not None else 0
        scaled = Decimal(str(value)).scaleb(-sf).to_integral_value()
        raw_int = int(scaled)
        bits = 16 * slot.size
        if slot.type in _SIGNED:
            lo, hi = -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
        else:
            lo, hi = 0, (1 << bits) - 2
        if not lo <= raw_int <= hi:
            raise OverflowError(
                f"{self.model_id}.{name}={value} does not fit {slot.type}"
            )
        self._put_raw(slot, raw_int)

    def get(self, name: str) -> float | int | str | None:
        """Decode a point in engineering units (None when not implemented or cut)."""
        if name in self.cut:
            return None
        slot = self.slots[name]
        if slot.type == "string":
            data = struct.pack(
                f">{slot.size}H", *self.regs[slot.offset : slot.offset + slot.size]
            )
            text = data.split(b"\0", 1)[0].decode(errors="replace")
            return text or None
        raw = self.raw(name)
        if raw == _UNIMPL.get(slot.type, -1) and slot.type not in {"acc16", "pad"}:
            return None
        value = self.signed(name)
        if slot.sf is None:
            return value
        sf = self.sf_of(name)
        return float(Decimal(value).scaleb(sf))


class SunSpecImage:
    """A whole SunSpec device map: marker, model chain, end model."""

    def __init__(
        self, base: int, models: list[ModelImage], *, terminated: bool = True
    ) -> None:
        """Place the models one after the other from ``base + 2``.

        ``terminated=False`` leaves the end model out: the map just stops
        (reading past it is an illegal address), as some devices do.
        """
        self.base = base
        self.models = models
        addr = base + 2
        for model in models:
            model.start = addr
            addr += len(model.regs)
        self.end_address = addr  # the end model's ID register
        self.size = addr + (2 if terminated else 0) - base

    def model(self, model_id: int, index: int = 0) -> ModelImage:
        """The ``index``-th instance of ``model_id`` in the chain."""
        found = [m for m in self.models if m.model_id == model_id]
        return found[index]

    def address_of(self, model_id: int, point: str) -> int:
        """Absolute register address of a point."""
        model = self.model(model_id)
        return model.start + model.slots[point].offset

    def read(self, address: int, count: int) -> list[int] | None:
        """Registers ``address .. address+count-1``; None if any is outside the map."""
        if address < self.base or address + count > self.base + self.size:
            return None
        out: list[int] = []
        for addr in range(address, address + count):
            out.append(self._reg(addr))
        return out

    def _reg(self, addr: int) -> int:
        if addr < self.base + 2:
            return SUNS_MARKER[addr - self.base]
        if addr == self.end_address:
            return END_MODEL_ID
        if addr == self.end_address + 1:
            return 0
        for model in self.models:
            if model.start <= addr < model.start + len(model.regs):
                return model.regs[addr - model.start]
        raise IndexError(addr)

    def locate(self, address: int) -> tuple[ModelImage, int] | None:
        """The model holding ``address`` and the offset inside it."""
        for model in self.models:
            if model.start <= address < model.start + len(model.regs):
                return model, address - model.start
        return None

    def slots_touching(
        self, address: int, count: int
    ) -> list[tuple[ModelImage, PointSlot]] | None:
        """Points overlapping a write; None if the write touches a non-point register."""
        out: list[tuple[ModelImage, PointSlot]] = []
        end = address + count
        for model in self.models:
            m_end = model.start + len(model.regs)
            if m_end <= address or model.start >= end:
                continue
            for slot in model.slots.values():
                s = model.start + slot.offset
                if s < end and s + slot.size > address:
                    out.append((model, slot))
        covered = sum(
            min(end, m.start + s.offset + s.size) - max(address, m.start + s.offset)
            for m, s in out
        )
        if covered != count:
            return None
        return out
