"""SunSpec point codec: raw registers to values and back (no Home Assistant imports).

Values are decoded with their scale factors applied exactly (``int x 10**sf``
through :class:`~decimal.Decimal`), and SunSpec's "not implemented" values
become ``None``; an unimplemented scale factor (0x8000) reads the value
unscaled, as pysunspec2 does. Writes are encoded at the device's scale factor
and refused (:class:`~.errors.OutOfRange`) when they do not fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
import logging
import math
import struct
from typing import Final

from .errors import OutOfRange
from .sunspec_layout import (
    UNIMPLEMENTED,
    ModelLayout,
    Point,
    raw_value,
    sf_point_name,
)

_LOGGER = logging.getLogger(__name__)

type PointValue = int | float | str | None
type DecodedModel = dict[str, PointValue]

#: Accumulators: 0 is "not implemented" (SunSpec); all-ones is seen in practice.
_ACC_UNIMPL: Final[dict[str, frozenset[int]]] = {
    "acc16": frozenset({0, 0xFFFF}),
    "acc32": frozenset({0, 0xFFFFFFFF}),
    "acc64": frozenset({0, 0xFFFFFFFFFFFFFFFF}),
}
_SIGNED: Final = frozenset({"int16", "sunssf", "int32", "int64"})
_SF_LIMIT: Final = 10


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
    raw = raw_value(regs, point.offset, point.size)
    if t == "float32":
        value = struct.unpack(">f", raw.to_bytes(4, "big"))[0]
        return None if math.isnan(value) else float(value)
    if t in _ACC_UNIMPL:
        return None if raw in _ACC_UNIMPL[t] else raw
    if t == "pad":
        return None
    if t in UNIMPLEMENTED and raw == UNIMPLEMENTED[t]:
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
            sf_name = sf_point_name(layout, point)
            sf = raw_values.get(sf_name) if sf_name else None
            if sf is None and sf_name is not None:
                sf_point = layout.points[sf_name]
                if (
                    sf_point.offset < len(regs)
                    and regs[sf_point.offset] == UNIMPLEMENTED["sunssf"]
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
