"""HashGrid's SunSpec decoding against pysunspec2's own reading (issue 14, 3-6).

Register images come from the SunSpec Alliance's pysunspec2 (1.3.7, in .venv):
its device image ``sunspec2/tests/test_data/device_1547.json`` (models 1,
701-713 with nested curves) and models built from the official model
definitions it ships (``sunspec2/models/json``) with its own ``Model`` class.
Every point HashGrid decodes must equal pysunspec2's computed value.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from typing import Any

import pytest
import sunspec2
import sunspec2.device as ssdev
from sunspec2.file.client import FileClientDevice

from custom_components.hashgrid.microgrid.sunspec_codec import decode_model
from custom_components.hashgrid.microgrid.sunspec_layout import layout_model
from custom_components.hashgrid.microgrid.sunspec_snapshot import snapshot_from_models

DEVICE_1547 = os.path.join(
    os.path.dirname(sunspec2.__file__), "tests", "test_data", "device_1547.json"
)


def _regs(model: Any) -> list[int]:
    data: bytes = model.get_mb()
    return list(struct.unpack(f">{len(data) // 2}H", data))


def _pysunspec_points(group: Any, prefix: str = "") -> dict[str, Any]:
    """pysunspec2's computed value of every point, named as HashGrid names them."""
    out: dict[str, Any] = {}
    for name, point in group.points.items():
        out[prefix + name] = point.cvalue
    for name, sub in group.groups.items():
        if isinstance(sub, list):
            for i, g in enumerate(sub):
                out.update(_pysunspec_points(g, f"{prefix}{name}[{i}]."))
        else:
            out.update(_pysunspec_points(sub, f"{prefix}{name}."))
    return out


def _decode(model: Any) -> dict[str, Any]:
    regs = _regs(model)
    layout = layout_model(regs[0], regs[1], regs)
    assert layout is not None
    return decode_model(layout, regs)


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, float) and isinstance(ours, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-9)
    return bool(ours == theirs)


def test_every_point_of_device_1547_as_pysunspec2_reads_it() -> None:
    """Nested repeating groups (705-712 curves) laid out by their count points."""
    device = FileClientDevice(DEVICE_1547)
    device.scan()
    compared = 0
    wrong: list[str] = []
    for model_id, models in device.models.items():
        if not isinstance(model_id, int):
            continue
        ours = _decode(models[0])
        for name, theirs in _pysunspec_points(models[0]).items():
            if name in ("ID", "L") or name.endswith("Pad") or theirs is None:
                continue
            compared += 1
            if not _same(ours.get(name), theirs):
                wrong.append(f"{model_id} {name}: {ours.get(name)!r} != {theirs!r}")
    assert wrong == []
    assert compared > 250  # pysunspec2 leaves the unimplemented ones None
    ours_705 = _decode(device.models[705][0])
    assert ours_705["Crv[1].ActPt"] == 4  # was 9200 with the points laid by hand


def _model(model_id: int, values: dict[str, float]) -> Any:
    model = ssdev.Model(model_id)
    for name, value in values.items():
        point = getattr(model, name)
        if point.pdef.get("type") == "sunssf" or (
            isinstance(point.pdef.get("sf"), str) or point.pdef.get("type") != "float32"
        ):
            point.value = value
        else:
            point.cvalue = value
    return model


@pytest.mark.parametrize(
    ("inverter", "meter"),
    [
        (
            _model(103, {"W": 4321, "W_SF": 0, "WH": 1_500_000, "WH_SF": 0}),
            _model(
                203,
                {
                    "W": -1234,
                    "W_SF": 0,
                    "TotWhImp": 2_000_000,
                    "TotWhExp": 3_000_000,
                    "TotWh_SF": 0,
                },
            ),
        ),
        (
            _model(113, {"W": 4321.5, "WH": 1_500_000.0}),
            _model(213, {"W": -1234.25, "TotWhImp": 2e6, "TotWhExp": 3e6}),
        ),
        (
            _model(111, {"W": 2000.0, "WH": 10.0}),
            _model(211, {"W": 50.5, "TotWhImp": 7.0, "TotWhExp": 9.0}),
        ),
        (
            _model(112, {"W": 2000.0, "WH": 10.0}),
            _model(
                204,
                {"W": 5005, "W_SF": -1, "TotWhImp": 70, "TotWhExp": 90, "TotWh_SF": 1},
            ),
        ),
        (
            _model(101, {"W": 100, "W_SF": 1, "WH": 5, "WH_SF": 3}),
            _model(212, {"W": 1.5, "TotWhImp": 7.0, "TotWhExp": 9.0}),
        ),
        (
            _model(102, {"W": 100, "W_SF": 1, "WH": 5, "WH_SF": 3}),
            _model(214, {"W": -7.5, "TotWhImp": 7.0, "TotWhExp": 9.0}),
        ),
    ],
    ids=[
        "int 103+203",
        "float 113+213",
        "float 111+211",
        "112+int 204",
        "101+212",
        "102+214",
    ],
)
def test_integer_and_float_inverters_and_meters(inverter: Any, meter: Any) -> None:
    """AC power, AC energy, grid power, import and export as pysunspec2 reads them."""
    snap = snapshot_from_models(
        {inverter.model_id: [_decode(inverter)], meter.model_id: [_decode(meter)]}
    )
    assert snap.ac_power_w == pytest.approx(inverter.W.cvalue)
    assert snap.ac_energy_wh == pytest.approx(inverter.WH.cvalue)
    assert snap.grid_power_w == pytest.approx(meter.W.cvalue)
    assert snap.grid_import_wh == pytest.approx(meter.TotWhImp.cvalue)
    assert snap.grid_export_wh == pytest.approx(meter.TotWhExp.cvalue)


def test_an_unimplemented_scale_factor_reads_unscaled_once_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """0x8000 as a scale factor: the value unscaled, as pysunspec2 (not None)."""
    model = _model(103, {"W": 2300, "WH": 77})
    model.W_SF.set_mb(b"\x80\x00")
    regs = _regs(model)
    assert regs[model.W_SF.offset] == 0x8000
    assert model.W.cvalue == 2300  # pysunspec2's reading
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            decoded = _decode(model)
            assert decoded["W"] == 2300
    assert sum(": W has no scale factor" in r.message for r in caplog.records) <= 1
