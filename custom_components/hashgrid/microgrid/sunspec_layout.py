"""SunSpec model layout: where each point of a model lies (no Home Assistant imports).

Models are laid out from the official SunSpec model definitions shipped by
``pysunspec2`` (JSON), as pysunspec2 lays them out: a repeating group counted by
a point (possibly nested, as a curve's points in 705-712) repeats as often as
that point says; one of count 0 fills the model. A point exists only within the
model's declared length: a model cut short has its later points unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
import importlib.resources
import json
from typing import Any, Final

#: SunSpec's "not implemented" value of each type.
UNIMPLEMENTED: Final[dict[str, int]] = {
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


def raw_value(regs: Sequence[int], offset: int, size: int) -> int:
    """The unsigned integer of ``size`` registers at ``offset`` (big-endian)."""
    value = 0
    for reg in regs[offset : offset + size]:
        value = (value << 16) | reg
    return value


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
        raw = raw_value(regs, point.offset, point.size)
        return None if raw == UNIMPLEMENTED.get(point.type) else raw

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


def sf_point_name(layout: ModelLayout, point: Point) -> str | None:
    if not isinstance(point.sf, str):
        return None
    if point.sf in layout.points:
        return point.sf
    prefix = point.name.rsplit(".", 1)[0] + "." if "." in point.name else ""
    name = prefix + point.sf
    return name if name in layout.points else None
