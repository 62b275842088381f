"""The SunSpec snapshot: what HashGrid reads from decoded models (no Home Assistant imports).

Sign conventions of :class:`SunSpecSnapshot` (HashGrid's): battery power > 0
charging, grid power > 0 importing, AC power > 0 inverter delivering to AC.
Model 802's W has no sign in its definition: its direction comes from 802's
ChaSt (charging/discharging), else the DER convention (> 0 discharging, as in
701/704); a 203 meter at the grid connection reports > 0 importing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from .sunspec_codec import DecodedModel, PointValue

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


def num(value: PointValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) + 0.0  # a float model's -0.0 is 0 W, never "-0 W"


#: Model 802's ChaSt enumeration (pysunspec2 1.3.7 model_802.json).
CHAST_DISCHARGING = 3
CHAST_CHARGING = 4


def _battery_w_802(w: float, cha_st: object) -> float:
    """802's W as HashGrid's battery power (> 0 charging).

    The official definition of 802 W ("Total power flowing to/from the battery
    bank", pysunspec2 1.3.7 model_802.json) gives no sign, so the direction is
    taken from the same model's ChaSt, whose enumeration does define it
    (3 DISCHARGING, 4 CHARGING). When ChaSt says neither (not implemented,
    holding, full, empty …) W is read in the DER convention of 701/704
    (> 0 discharging), which devices that publish 802 beside 70x follow.
    0 W stays 0 W (-0.0 would show as "-0 W").
    """
    if cha_st == CHAST_CHARGING:
        return abs(w)
    if cha_st == CHAST_DISCHARGING:
        return 0.0 - abs(w)
    return 0.0 - w


def _sum(values: Iterable[PointValue]) -> float | None:
    nums = [num(v) for v in values]
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

    ac_w = num(inv.get("W"))
    if ac_w is None:
        ac_w = num(der_ac.get("W"))
    ac_wh = num(inv.get("WH"))
    if ac_wh is None:
        ac_wh = num(der_ac.get("TotWhInj"))

    n_mod = sum(1 for k in mppt if k.endswith(".DCW"))
    pv_w = _sum(mppt.get(f"module[{i}].DCW") for i in range(n_mod)) if n_mod else None
    pv_wh = _sum(mppt.get(f"module[{i}].DCWH") for i in range(n_mod)) if n_mod else None

    # DC ports (714): PV and ESS ports by type
    ports = sorted({k.split("]", 1)[0] + "]" for k in dc if k.startswith("Prt[")})
    ess = next((p for p in ports if dc.get(f"{p}.PrtTyp") == 1), None)
    pv_port = next((p for p in ports if dc.get(f"{p}.PrtTyp") == 0), None)
    if pv_w is None and pv_port:
        pv_w = num(dc.get(f"{pv_port}.DCW"))
    if pv_wh is None and pv_port:
        pv_wh = num(dc.get(f"{pv_port}.DCWhInj"))

    soc = num(battery.get("SoC"))
    if soc is None:
        soc = num(storage.get("ChaState"))
    bat_w = num(battery.get("W"))
    if bat_w is not None:
        bat_w = _battery_w_802(bat_w, battery.get("ChaSt"))
    elif ess:
        ess_w = num(dc.get(f"{ess}.DCW"))
        bat_w = None if ess_w is None else 0.0 - ess_w
    dc_v = num(battery.get("V"))
    if dc_v is None and ess:
        dc_v = num(dc.get(f"{ess}.DCV"))
    if dc_v is None:
        dc_v = num(storage.get("InBatV"))

    wmax = num(nameplate.get("WMax"))
    if wmax is None:
        wmax = num(nameplate.get("WMaxRtg"))
    enabled = ctl.get("WMaxLimPctEna") == 1
    pct = num(ctl.get("WMaxLimPct"))
    limit = (
        wmax * pct / 100.0 if enabled and wmax is not None and pct is not None else None
    )

    wcha = num(storage.get("WChaMax"))
    mod = storage.get("StorCtl_Mod")
    mod_bits = mod if isinstance(mod, int) else 0
    in_rte, out_rte = num(storage.get("InWRte")), num(storage.get("OutWRte"))
    max_chg = max_dis = None
    if wcha is not None:
        max_chg = wcha * in_rte / 100.0 if mod_bits & 1 and in_rte is not None else wcha
        max_dis = (
            wcha * out_rte / 100.0 if mod_bits & 2 and out_rte is not None else wcha
        )
    bat_max_chg = num(battery.get("WChaRteMax"))
    bat_max_dis = num(battery.get("WDisChaRteMax"))

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
            num(dc.get(f"{ess}.DCWhAbs")) if ess else None,
            0,
            1e13,
        ),
        battery_discharged_wh=plausible(
            "battery_discharged_wh",
            num(dc.get(f"{ess}.DCWhInj")) if ess else None,
            0,
            1e13,
        ),
        dc_bus_voltage_v=plausible("dc_bus_voltage_v", dc_v, 0, 1500),
        grid_power_w=plausible("grid_power_w", num(meter.get("W")), -hard, hard),
        grid_import_wh=plausible("grid_import_wh", num(meter.get("TotWhImp")), 0, 1e13),
        grid_export_wh=plausible("grid_export_wh", num(meter.get("TotWhExp")), 0, 1e13),
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
