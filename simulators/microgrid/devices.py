"""The simulated Modbus devices: SunSpec hybrid inverter, SunSpec genset, Victron GX.

Each device maps registers onto the shared :class:`MicrogridModel`:
``read`` serves the current register image, ``write`` validates a write and
turns it into model controls, ``refresh`` re-encodes the image from the model.
Reads and writes return a Modbus exception code (``int``) instead of data when
the request is not acceptable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
import struct

from .model import MicrogridModel
from .sunspec_image import ModelImage, SunSpecImage

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03

SUNSPEC_BASE = 40_000

# Lifetime counters do not start at zero: SunSpec reserves 0 in accumulators
# for "not implemented".
_LIFETIME_WH = {
    "pv": 4_321_000.0,
    "inv_out": 3_210_000.0,
    "inv_in": 120_000.0,
    "bat_chg": 1_500_000.0,
    "bat_dis": 1_400_000.0,
    "grid_imp": 2_000_000.0,
    "grid_exp": 2_500_000.0,
    "gen": 50_000.0,
}

_INVERTER_SF: dict[int, dict[str, int]] = {
    103: {
        "A_SF": -2,
        "V_SF": -1,
        "W_SF": 0,
        "Hz_SF": -2,
        "VA_SF": 0,
        "VAr_SF": 0,
        "PF_SF": -1,
        "WH_SF": 0,
        "DCA_SF": -2,
        "DCV_SF": -1,
        "DCW_SF": 0,
        "Tmp_SF": -1,
    },
    160: {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0},
    124: {
        "WChaMax_SF": 0,
        "WChaDisChaGra_SF": 0,
        "VAChaMax_SF": 0,
        "MinRsvPct_SF": -1,
        "ChaState_SF": -1,
        "StorAval_SF": -1,
        "InBatV_SF": -1,
        "InOutWRte_SF": -2,
    },
    802: {
        "AHRtg_SF": 0,
        "WHRtg_SF": 0,
        "WChaDisChaMax_SF": 0,
        "DisChaRte_SF": -1,
        "SoC_SF": -1,
        "DoD_SF": -1,
        "SoH_SF": -1,
        "V_SF": -2,
        "CellV_SF": -3,
        "A_SF": -1,
        "AMax_SF": 0,
        "W_SF": 0,
    },
    701: {
        "A_SF": -2,
        "V_SF": -1,
        "Hz_SF": -3,
        "W_SF": 0,
        "PF_SF": -3,
        "VA_SF": 0,
        "Var_SF": 0,
        "TotWh_SF": 0,
        "TotVarh_SF": 0,
        "Tmp_SF": -1,
    },
    702: {
        "W_SF": 0,
        "PF_SF": -3,
        "VA_SF": 0,
        "Var_SF": 0,
        "V_SF": -1,
        "A_SF": -1,
        "S_SF": 0,
    },
    704: {
        "PF_SF": -3,
        "WMaxLimPct_SF": -2,
        "WSet_SF": 0,
        "WSetPct_SF": -2,
        "VarSet_SF": 0,
        "VarSetPct_SF": -2,
    },
    714: {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0, "Tmp_SF": -1},
    203: {
        "A_SF": -2,
        "V_SF": -1,
        "Hz_SF": -2,
        "W_SF": 0,
        "VA_SF": 0,
        "VAR_SF": 0,
        "PF_SF": -2,
        "TotWh_SF": 0,
        "TotVAh_SF": 0,
        "TotVArh_SF": 0,
    },
}

#: The inverter's model chain, in order (id, repeating-group counts).
INVERTER_MODELS: tuple[tuple[int, dict[str, int] | None], ...] = (
    (1, None),
    (103, None),
    (160, {"module": 2}),
    (124, None),
    (802, None),
    (701, None),
    (702, None),
    (704, None),
    (714, {"Prt": 2}),
    (203, None),
)


class Device:
    """Interface of a simulated Modbus device."""

    name = "device"

    def read(self, address: int, count: int) -> list[int] | int:
        """Registers or an exception code."""
        raise NotImplementedError

    def write(self, address: int, values: list[int]) -> int | None:
        """None on success, or an exception code."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Re-encode the register image from the model."""


class SunSpecDevice(Device):
    """Common SunSpec behaviour: image, write permission, refresh hook."""

    def __init__(self, model: MicrogridModel, image: SunSpecImage) -> None:
        """Wrap an image; values are filled by :meth:`refresh`."""
        self.model = model
        self.image = image

    def read(self, address: int, count: int) -> list[int] | int:
        """Serve the image; outside it is an illegal address."""
        regs = self.image.read(address, count)
        return ILLEGAL_ADDRESS if regs is None else regs

    def write(self, address: int, values: list[int]) -> int | None:
        """Accept writes that cover only writable points, then apply them."""
        touched = self.image.slots_touching(address, len(values))
        if not touched or not all(slot.writable for _, slot in touched):
            return ILLEGAL_ADDRESS
        models = {m.model_id: m for m, _ in touched}
        saved = {mid: list(m.regs) for mid, m in models.items()}
        for i, value in enumerate(values):
            located = self.image.locate(address + i)
            assert located is not None
            m, offset = located
            m.regs[offset] = value & 0xFFFF
        error = self.apply_writes(set(models))
        if error is not None:
            for mid, regs in saved.items():
                models[mid].regs[:] = regs
            return error
        self.refresh()
        return None

    def apply_writes(self, model_ids: set[int]) -> int | None:
        """Turn written points into controls; an exception code if invalid."""
        return None


def _common(image: ModelImage, md: str, sn: str) -> None:
    image.set("Mn", "HashGrid Sim")
    image.set("Md", md)
    image.set("Opt", "DC-bus")
    image.set("Vr", "1.3.0")
    image.set("SN", sn)
    image.set("DA", 1)


class HybridInverter(SunSpecDevice):
    """SunSpec hybrid inverter with two MPPT strings, battery and grid meter.

    Misbehaviours (for tests): ``chain`` replaces the model chain (it must hold
    every model of :data:`INVERTER_MODELS`; more, or larger repeating groups,
    are fine), ``lengths`` cuts models short ({model id: declared length L}),
    ``terminated=False`` ends the map without an end model, and
    :attr:`lifetime_wh` holds the counters' starting values (lower them to make
    the energy totals go backwards).
    """

    name = "inverter"

    def __init__(
        self,
        model: MicrogridModel,
        serial: str = "HGSIM-INV-0001",
        *,
        chain: Sequence[tuple[int, dict[str, int] | None]] = INVERTER_MODELS,
        lengths: Mapping[int, int] | None = None,
        terminated: bool = True,
    ) -> None:
        """Lay out the model chain and fill static points."""
        #: Lifetime counters' values at the start (Wh), per counter.
        self.lifetime_wh = dict(_LIFETIME_WH)
        images = [ModelImage(mid, rep) for mid, rep in chain]
        for image in images:
            if lengths and image.model_id in lengths:
                image.truncate(lengths[image.model_id])
        super().__init__(
            model, SunSpecImage(SUNSPEC_BASE, images, terminated=terminated)
        )
        for m in images:
            for sf_name, sf in _INVERTER_SF.get(m.model_id, {}).items():
                m.set_raw(sf_name, sf)
        p = model.params
        img = self.image
        _common(img.model(1), "HG-Hybrid-6K", serial)
        m160 = img.model(160)
        m160.set("N", p.pv_strings)
        m160.set("TmsPer", 0)
        for i in range(p.pv_strings):
            m160.set(f"module[{i}].ID", i + 1)
            m160.set(f"module[{i}].IDStr", f"PV{i + 1}")
        m124 = img.model(124)
        m124.set("WChaMax", p.battery_max_charge_w)
        m124.set("WChaGra", 100)
        m124.set("WDisChaGra", 100)
        m124.set("StorCtl_Mod", 0)
        m124.set("MinRsvPct", p.battery_min_soc * 100)
        m124.set("InWRte", 100)
        m124.set("OutWRte", 100)
        m124.set("InOutWRte_RvrtTms", 0)
        m124.set("ChaGriSet", 0)
        m802 = img.model(802)
        m802.set("AHRtg", round(p.battery_capacity_wh / p.battery_nominal_v))
        m802.set("WHRtg", p.battery_capacity_wh)
        m802.set("WChaRteMax", p.battery_max_charge_w)
        m802.set("WDisChaRteMax", p.battery_max_discharge_w)
        m802.set("SoCMax", 100)
        m802.set("SoCMin", p.battery_min_soc * 100)
        m802.set("SoH", 98.5)
        m802.set("LocRemCtl", 0)
        m802.set("AlmRst", 0)
        m802.set("Typ", 4)
        m802.set("SetOp", 1)
        m802.set("SetInvState", 1)
        m802.set("Evt1", 0)
        m802.set("Evt2", 0)
        m802.set("EvtVnd1", 0)
        m802.set("EvtVnd2", 0)
        m701 = img.model(701)
        m701.set("ACType", 2)
        m702 = img.model(702)
        m702.set("WMaxRtg", p.inverter_max_w)
        m702.set("WMax", p.inverter_max_w)
        m702.set("WChaRteMaxRtg", p.battery_max_charge_w)
        m702.set("WDisChaRteMaxRtg", p.battery_max_discharge_w)
        m702.set("VNomRtg", 230)
        m704 = img.model(704)
        m704.set("WMaxLimPctEna", 0)
        m704.set("WMaxLimPct", 100)
        m704.set("WSetEna", 0)
        m714 = img.model(714)
        m714.set("NPrt", 2)
        m714.set("PrtAlrms", 0)
        for i, (typ, label) in enumerate(((0, "PV"), (1, "BAT"))):
            m714.set(f"Prt[{i}].PrtTyp", typ)
            m714.set(f"Prt[{i}].ID", i + 1)
            m714.set(f"Prt[{i}].IDStr", label)
            m714.set(f"Prt[{i}].DCSta", 1)
        self.refresh()

    # ---------------------------------------------------------------- writes

    def apply_writes(self, model_ids: set[int]) -> int | None:
        """Validate written controls and copy them into the model."""
        img, c = self.image, self.model.controls
        if 702 in model_ids:
            m702 = img.model(702)
            wmax, rtg = m702.get("WMax"), m702.get("WMaxRtg")
            if not isinstance(wmax, float | int) or not 0 < wmax <= float(rtg or 0):
                return ILLEGAL_VALUE
        if 704 in model_ids or 702 in model_ids:
            m704 = img.model(704)
            ena, pct = m704.get("WMaxLimPctEna"), m704.get("WMaxLimPct")
            if ena not in (0, 1):
                return ILLEGAL_VALUE
            if ena == 1:
                if not isinstance(pct, float | int) or not 0 <= pct <= 100:
                    return ILLEGAL_VALUE
                wmax = img.model(702).get("WMax")
                assert isinstance(wmax, float | int)
                c.export_limit_w = float(wmax) * float(pct) / 100.0
            else:
                c.export_limit_w = None
        if 124 in model_ids:
            m124 = img.model(124)
            wcha = m124.get("WChaMax")
            mod = m124.get("StorCtl_Mod")
            in_rte, out_rte = m124.get("InWRte"), m124.get("OutWRte")
            if not isinstance(wcha, float | int) or wcha <= 0:
                return ILLEGAL_VALUE
            if not isinstance(mod, int) or mod & ~0x3:
                return ILLEGAL_VALUE
            for rte in (in_rte, out_rte):
                if not isinstance(rte, float | int) or not 0 <= rte <= 100:
                    return ILLEGAL_VALUE
            assert isinstance(in_rte, float | int)
            assert isinstance(out_rte, float | int)
            c.max_charge_w = float(wcha) * float(in_rte) / 100 if mod & 1 else None
            c.max_discharge_w = float(wcha) * float(out_rte) / 100 if mod & 2 else None
        return None

    # ---------------------------------------------------------------- refresh

    def refresh(self) -> None:
        """Encode the model's present state into the SunSpec points."""
        mdl, img, p = self.model, self.image, self.model.params
        k = mdl.counters
        ac = mdl.inverter_ac_w
        v_ln, hz = 230.0, 50.0
        amps = abs(ac) / (3 * v_ln)
        dc_v = mdl.battery_voltage_v
        dc_w = mdl.pv_w - mdl.battery_w  # power through the inverter bridge
        # 103
        m = img.model(103)
        m.set("A", round(amps * 3, 2))
        for ph in "ABC":
            m.set(f"Aph{ph}", round(amps, 2))
            m.set(f"PhVph{ph}", v_ln)
        for pp in ("AB", "BC", "CA"):
            m.set(f"PPVph{pp}", 398.4)
        m.set("W", round(ac))
        m.set("Hz", hz)
        m.set("VA", round(abs(ac)))
        m.set("VAr", 0)
        m.set("PF", 100.0 if ac >= 0 else -100.0)
        m.set("WH", round(self.lifetime_wh["inv_out"] + k.inverter_out_wh))
        m.set("DCA", round(abs(dc_w) / dc_v, 2))  # uint16: magnitude only
        m.set("DCV", round(dc_v, 1))
        m.set("DCW", round(dc_w))
        m.set("TmpCab", 35.0)
        m.set("St", 4 if abs(ac) > 0 or mdl.pv_w > 0 else 8)
        m.set("Evt1", 0)
        m.set("Evt2", 0)
        # 160
        m = img.model(160)
        m.set("Evt", 0)
        for i, w in enumerate(mdl.pv_string_w):
            string_v = 380.0 if w > 0 else 0.0
            m.set(f"module[{i}].DCV", string_v)
            m.set(f"module[{i}].DCA", round(w / string_v, 2) if string_v else 0)
            m.set(f"module[{i}].DCW", round(w))
            m.set(
                f"module[{i}].DCWH",
                round(self.lifetime_wh["pv"] / p.pv_strings + k.pv_string_wh[i]),
            )
            m.set(f"module[{i}].Tms", int(mdl.sim_time_s) & 0xFFFFFFF)
            m.set(f"module[{i}].DCSt", 4 if w > 0 else 2)
            m.set(f"module[{i}].DCEvt", 0)
        # 124
        m = img.model(124)
        m.set("ChaState", round(mdl.soc * 100, 1))
        avail_ah = max(0.0, mdl.soc - p.battery_min_soc) * p.battery_capacity_wh
        m.set("StorAval", round(avail_ah / p.battery_nominal_v, 1))
        m.set("InBatV", round(dc_v, 1))
        m.set("ChaSt", _charge_state(mdl))
        # 802 (W and A positive = discharging, the DER convention)
        m = img.model(802)
        m.set("SoC", round(mdl.soc * 100, 1))
        m.set("DoD", round((1 - mdl.soc) * 100, 1))
        m.set("ChaSt", _charge_state(mdl))
        m.set("State", 3)
        m.set("V", round(dc_v, 2))
        m.set("A", round(-mdl.battery_current_a, 1))
        m.set("W", round(-mdl.battery_w))
        m.set("AChaMax", round(p.battery_max_charge_w / p.battery_nominal_v))
        m.set("ADisChaMax", round(p.battery_max_discharge_w / p.battery_nominal_v))
        # 701
        m = img.model(701)
        m.set("St", 1)
        m.set("InvSt", 3 if mdl.curtailed_w <= 0 else 4)
        m.set("ConnSt", 1)
        m.set("Alrm", 0)
        m.set("W", round(ac))
        m.set("VA", round(abs(ac)))
        m.set("Var", 0)
        m.set("PF", 1.0)
        m.set("A", round(amps * 3, 2))
        m.set("LLV", 398.4)
        m.set("LNV", v_ln)
        m.set("Hz", hz)
        m.set("TotWhInj", round(self.lifetime_wh["inv_out"] + k.inverter_out_wh))
        m.set("TotWhAbs", round(self.lifetime_wh["inv_in"] + k.inverter_in_wh))
        for n in (1, 2, 3):
            m.set(f"WL{n}", round(ac / 3))
            m.set(f"AL{n}", round(amps, 2))
            m.set(f"VL{n}", v_ln)
        m.set("TmpCab", 35.0)
        # 714 (port 0 = PV, port 1 = battery; DCW > 0 = power into the DC bus)
        m = img.model(714)
        m.set("DCW", round(mdl.pv_w - mdl.battery_w))
        m.set("DCA", round((mdl.pv_w - mdl.battery_w) / dc_v, 2))
        m.set(
            "DCWhInj",
            round(
                self.lifetime_wh["pv"]
                + k.pv_wh
                + self.lifetime_wh["bat_dis"]
                + k.battery_discharged_wh
            ),
        )
        m.set("DCWhAbs", round(self.lifetime_wh["bat_chg"] + k.battery_charged_wh))
        m.set("Prt[0].DCV", 380.0 if mdl.pv_w > 0 else 0.0)
        m.set("Prt[0].DCW", round(mdl.pv_w))
        m.set("Prt[0].DCA", round(mdl.pv_w / 380.0, 2))
        m.set("Prt[0].DCWhInj", round(self.lifetime_wh["pv"] + k.pv_wh))
        m.set("Prt[0].DCWhAbs", None)
        m.set("Prt[1].DCV", round(dc_v, 1))
        m.set("Prt[1].DCW", round(-mdl.battery_w))
        m.set("Prt[1].DCA", round(-mdl.battery_current_a, 2))
        m.set(
            "Prt[1].DCWhInj",
            round(self.lifetime_wh["bat_dis"] + k.battery_discharged_wh),
        )
        m.set(
            "Prt[1].DCWhAbs", round(self.lifetime_wh["bat_chg"] + k.battery_charged_wh)
        )
        # 203 grid meter (W > 0 = import)
        m = img.model(203)
        g = mdl.grid_w
        m.set("W", round(g))
        for ph in "ABC":
            m.set(f"Wph{ph}", round(g / 3))
            m.set(f"PhVph{ph}", v_ln)
            m.set(f"Aph{ph}", round(g / 3 / v_ln, 2))
        m.set("A", round(g / v_ln, 2))
        m.set("PhV", v_ln)
        m.set("Hz", hz)
        m.set("TotWhImp", round(self.lifetime_wh["grid_imp"] + k.grid_import_wh))
        m.set("TotWhExp", round(self.lifetime_wh["grid_exp"] + k.grid_export_wh))
        m.set("Evt", 0)


def _charge_state(mdl: MicrogridModel) -> int:
    if mdl.soc >= 0.999:
        return 5  # FULL
    if mdl.soc <= mdl.params.battery_min_soc + 1e-6:
        return 2  # EMPTY
    if mdl.battery_w > 0:
        return 4  # CHARGING
    if mdl.battery_w < 0:
        return 3  # DISCHARGING
    return 6  # HOLDING


class Genset(SunSpecDevice):
    """A flare-gas genset as a second SunSpec device (models 1 + 103)."""

    name = "generator"

    def __init__(self, model: MicrogridModel, serial: str = "HGSIM-GEN-0001") -> None:
        """Lay out models 1 and 103."""
        images = [ModelImage(1), ModelImage(103)]
        super().__init__(model, SunSpecImage(SUNSPEC_BASE, images))
        for sf_name, sf in _INVERTER_SF[103].items():
            images[1].set_raw(sf_name, sf)
        _common(images[0], "HG-FlareGen-3K", serial)
        self.refresh()

    def refresh(self) -> None:
        """Encode the genset's output."""
        mdl = self.model
        m = self.image.model(103)
        w = mdl.generator_w
        m.set("W", round(w))
        m.set("A", round(w / 230.0, 2))
        for ph in "ABC":
            m.set(f"Aph{ph}", round(w / 3 / 230.0, 2))
            m.set(f"PhVph{ph}", 230.0)
        m.set("Hz", 50.0)
        m.set("WH", round(_LIFETIME_WH["gen"] + mdl.counters.generator_wh))
        m.set("TmpCab", 60.0 if w > 0 else 25.0)
        m.set("St", 4 if w > 0 else 1)
        m.set("Evt1", 0)
        m.set("Evt2", 0)


# ------------------------------------------------------------------ Victron

GATEWAY_PATH_UNAVAILABLE = 0x0A

#: Victron's own register rows (dbus_modbustcp attributes.csv, v1.0.101).
VICTRON_ATTRIBUTES = (
    Path(__file__).with_name("data") / "victron_attributes_v1.0.101.csv"
)


@dataclass(frozen=True, slots=True)
class VictronRegister:
    """One row of the GX's Modbus-TCP table (dbus_modbustcp ``attributes.csv``)."""

    address: int
    service: str  # the D-Bus service without "com.victronenergy."
    path: str  # the D-Bus path; "RESERVED" for a reserved range
    type: str  # uint16 | int16 | uint32 | int32 | uint64 | string | reserved
    #: Victron "scale factor": raw = value * scale (so value = raw / scale).
    scale: float = 1.0
    size: int = 1
    writable: bool = False

    @property
    def name(self) -> str:
        """``service:path``, the key of the GX's value store."""
        return f"{self.service}:{self.path}"


def _load_victron_registers() -> tuple[VictronRegister, ...]:
    """Parse the rows as dbus_modbustcp's ``Mappings::importCSV`` does."""
    rows: list[VictronRegister] = []
    for line in VICTRON_ATTRIBUTES.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split(",")
        service, path, mtype = cols[0], cols[1], cols[5]
        size = 1
        if mtype.startswith(("string[", "reserved[")):
            size = int(mtype[mtype.index("[") + 1 : -1])
            mtype = mtype[: mtype.index("[")]
        elif mtype in ("int32", "uint32"):
            size = 2
        elif mtype not in ("int16", "uint16"):
            continue  # "INTERNAL" rows are mapped in code (below)
        rows.append(
            VictronRegister(
                address=int(cols[4]),
                service=service.removeprefix("com.victronenergy."),
                path=path,
                type=mtype,
                scale=float(cols[6] or 1) or 1.0,
                size=size,
                writable=cols[7].strip() == "W",
            )
        )
    # mappings.cpp maps these two in code: date/time (uint64) and the firmware
    # version (uint32: ((version << 8) & 0xFFFF0000) + (version & 0xFF)).
    rows.append(VictronRegister(830, "system", "/DateAndTime", "uint64", size=4))
    rows.append(VictronRegister(834, "system", "/FirmwareVersion", "uint32", size=2))
    return tuple(sorted(rows, key=lambda r: r.address))


VICTRON_UNIT_ID = 100
VICTRON_REGISTERS: tuple[VictronRegister, ...] = _load_victron_registers()

_SETPOINT = "settings:/Settings/CGwacs/AcPowerSetPoint"
_OVERRIDE = "hub4:/Overrides/Setpoint"
#: Victron's default ESS grid setpoint (W).
VICTRON_DEFAULT_SETPOINT_W = 50.0
#: Paths that only a battery monitor (BMV, SmartShunt, BMS) gives the system.
_MONITOR_PATHS = ("/Dc/Battery/Soc", "/Dc/Battery/ConsumedAmphours")


class VictronGX(Device):
    """A GX's unit 100 as dbus_modbustcp serves it, from Victron's own table.

    Values live by D-Bus path; a path without a valid value is served as 0
    (``Mappings::getValue``), a reserved range as 0xFFFF. A read must start on a
    register of the table and run through consecutive rows (illegal address
    otherwise); a write to a read-only row is an illegal address, to a path the
    GX does not have (``/Overrides/Setpoint`` before Venus OS 3.50) a gateway
    path unavailable. ``firmware`` is the Venus OS version; ``battery`` is
    ``"monitor"`` (a battery monitor), ``"no_monitor"`` (a Multi, no monitor: no
    SoC) or ``"none"`` (no battery service: the whole battery block invalid).
    """

    name = "victron"

    def __init__(
        self,
        model: MicrogridModel,
        clock: Callable[[], float],
        serial: str = "c0619ab1d2e3",
        setpoint_timeout_s: float | None = None,
        firmware: tuple[int, int] = (3, 60),
        battery: str = "monitor",
    ) -> None:
        """Build the table; ``setpoint_timeout_s`` emulates a watchdog."""
        self.model = model
        self.clock = clock
        self.serial = serial
        self.setpoint_timeout_s = setpoint_timeout_s
        self.firmware = firmware
        self.battery = battery
        self.last_setpoint_write: float | None = None
        self.by_address: dict[int, tuple[VictronRegister, int]] = {}
        for reg in VICTRON_REGISTERS:
            for i in range(reg.size):
                self.by_address[reg.address + i] = (reg, i)
        #: Settings as the GX keeps them (flash); None = invalid.
        self.settings: dict[str, float | None] = {
            _SETPOINT: VICTRON_DEFAULT_SETPOINT_W,
            "settings:/Settings/CGwacs/MaxChargePercentage": 100,
            "settings:/Settings/CGwacs/MaxDischargePercentage": 100,
            "settings:/Settings/CGwacs/MaxDischargePower": -1,
            "settings:/Settings/CGwacs/MaxFeedInPower": -1,
            "settings:/Settings/CGwacs/OvervoltageFeedIn": 1,
            "settings:/Settings/CGwacs/PreventFeedback": 0,
            "settings:/Settings/SystemSetup/MaxChargeVoltage": 0,
            "settings:/Settings/SystemSetup/AcInput1": 1,
            "settings:/Settings/SystemSetup/AcInput2": 0,
            "settings:/Settings/CGwacs/AcExportLimit": -1,
            "settings:/Settings/CGwacs/AcInputLimit": -1,
            "settings:/Settings/CGwacs/AlwaysPeakShave": 0,
            "settings:/Settings/CGwacs/RunWithoutGridMeter": 0,
            "settings:/Settings/CGwacs/BatteryLife/State": 10,
            "settings:/Settings/CGwacs/BatteryLife/MinimumSocLimit": 10.0,
            "settings:/Settings/CGwacs/BatteryLife/SocLimit": 10.0,
            "system:/Relay/0/State": 0,
            "system:/Relay/1/State": 0,
        }
        #: The volatile ESS override (hub4, Venus OS >= 3.50); None = not set.
        self.override: float | None = None
        #: Writes per D-Bus path (flash-backed settings are the ``settings:`` ones).
        self.path_writes: dict[str, int] = {}
        self.values: dict[str, float | str | None] = {}
        self.regs: dict[int, int] = {}
        self.refresh()

    @property
    def has_override(self) -> bool:
        """Whether this Venus OS has ``/Overrides/Setpoint`` (register 2716)."""
        return self.firmware >= (3, 50)

    @property
    def setpoint_in_force(self) -> float:
        """The grid setpoint the ESS loop follows (override, else the setting)."""
        if self.override is not None:
            return self.override
        return self.settings[_SETPOINT] or 0.0

    # -------------------------------------------------------------- encoding

    @staticmethod
    def _encode(reg: VictronRegister, value: float | str | None) -> list[int]:
        """``Mappings::getValue`` for every register of the row."""
        if reg.type == "reserved":
            return [0xFFFF] * reg.size
        if value is None:
            return [0] * reg.size  # an invalid D-Bus value is served as 0
        if reg.type == "string":
            data = str(value).encode("latin-1")[: 2 * reg.size]
            data = data.ljust(2 * reg.size, b"\0")
            return list(struct.unpack(f">{reg.size}H", data))
        raw = round(float(value) * reg.scale)
        bits = 16 * reg.size
        raw &= (1 << bits) - 1
        return [(raw >> (16 * (reg.size - 1 - i))) & 0xFFFF for i in range(reg.size)]

    @staticmethod
    def _decode(reg: VictronRegister, words: Sequence[int]) -> float:
        raw = 0
        for w in words:
            raw = (raw << 16) | w
        bits = 16 * reg.size
        if reg.type.startswith("int") and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return raw / reg.scale

    def refresh(self) -> None:
        """Recompute the D-Bus values from the model and serve them as registers."""
        mdl, c = self.model, self.model.controls
        now = self.clock()
        if (
            self.setpoint_timeout_s is not None
            and self.last_setpoint_write is not None
            and now - self.last_setpoint_write > self.setpoint_timeout_s
        ):
            self.override = None  # volatile: lost, as after a GX reboot
            self.last_setpoint_write = None
        c.ess_grid_setpoint_w = self.setpoint_in_force
        v: dict[str, float | str | None] = dict(self.settings)
        major, minor = self.firmware
        version = (major << 16) | (int(f"{minor:02d}", 16) << 8)
        v["system:/FirmwareVersion"] = ((version << 8) & 0xFFFF0000) + (version & 0xFF)
        v["system:/DateAndTime"] = 1_767_225_600 + int(mdl.sim_time_s)
        v["system:/Serial"] = self.serial
        for i in range(1, 4):
            v[f"system:/Ac/PvOnOutput/L{i}/Power"] = None
            v[f"system:/Ac/PvOnGrid/L{i}/Power"] = None
            v[f"system:/Ac/PvOnGenset/L{i}/Power"] = None
            v[f"system:/Ac/Consumption/L{i}/Power"] = mdl.load_w / 3
            v[f"system:/Ac/Grid/L{i}/Power"] = mdl.grid_w / 3
            v[f"system:/Ac/Genset/L{i}/Power"] = (
                mdl.generator_w / 3 if mdl.generator_w else None
            )
        v["system:/Ac/ActiveIn/Source"] = 1
        v["system:/Dc/Pv/Power"] = mdl.pv_w
        v["system:/Dc/Pv/Current"] = mdl.pv_w / mdl.battery_voltage_v
        v["system:/Dc/Charger/Power"] = None
        v["system:/Dc/System/Power"] = None
        v["system:/Dc/Vebus/Current"] = -mdl.inverter_ac_w / mdl.battery_voltage_v
        v["system:/Dc/Vebus/Power"] = -mdl.inverter_ac_w
        v["system:/Dc/Battery/Voltage"] = mdl.battery_voltage_v
        v["system:/Dc/Battery/Current"] = mdl.battery_current_a
        v["system:/Dc/Battery/Power"] = mdl.battery_w
        v["system:/Dc/Battery/Soc"] = mdl.soc * 100
        v["system:/Dc/Battery/State"] = (
            1 if mdl.battery_w > 0 else 2 if mdl.battery_w < 0 else 0
        )
        cap_ah = mdl.params.battery_capacity_wh / mdl.params.battery_nominal_v
        v["system:/Dc/Battery/ConsumedAmphours"] = -(1 - mdl.soc) * cap_ah
        v["system:/Dc/Battery/TimeToGo"] = (
            min(
                864_000.0,
                mdl.soc * mdl.params.battery_capacity_wh / -mdl.battery_w * 3600,
            )
            if mdl.battery_w < 0
            else None
        )
        if self.battery != "monitor":
            for path in (*_MONITOR_PATHS, "/Dc/Battery/TimeToGo"):
                v[f"system:{path}"] = None
        if self.battery == "none":
            for reg in VICTRON_REGISTERS:
                if reg.path.startswith("/Dc/Battery/"):
                    v[reg.name] = None
        v["system:/Dc/InverterCharger/Current"] = v["system:/Dc/Vebus/Current"]
        v["system:/Dc/InverterCharger/Power"] = v["system:/Dc/Vebus/Power"]
        v["settings:/Settings/SystemSetup/MaxChargeCurrent"] = (
            -1 if c.dvcc_max_charge_current_a is None else c.dvcc_max_charge_current_a
        )
        v["settings:/Settings/CGwacs/Hub4Mode"] = c.ess_mode
        v["hub4:/PvPowerLimiterActive"] = 0
        v[_OVERRIDE] = self.override
        self.values = v
        regs: dict[int, int] = {}
        for reg in VICTRON_REGISTERS:
            for i, w in enumerate(self._encode(reg, v.get(reg.name))):
                regs[reg.address + i] = w
        self.regs = regs

    # -------------------------------------------------------------- access

    def read(self, address: int, count: int) -> list[int] | int:
        """Registers, or illegal address outside the table (``DataIterator``)."""
        out = []
        for addr in range(address, address + count):
            if addr not in self.regs:
                return ILLEGAL_ADDRESS
            out.append(self.regs[addr])
        return out

    def write(self, address: int, values: list[int]) -> int | None:
        """Write whole writable rows; reserved rows inside are skipped."""
        end = address + len(values)
        touched: dict[str, VictronRegister] = {}
        for addr in range(address, end):
            entry = self.by_address.get(addr)
            if entry is None:
                return ILLEGAL_ADDRESS
            reg = entry[0]
            if reg.type == "reserved":
                continue
            if not reg.writable:
                return ILLEGAL_ADDRESS  # dbus_modbustcp's PermissionError
            touched[reg.name] = reg
        new: dict[str, float] = {}
        for reg in touched.values():
            if reg.address < address or reg.address + reg.size > end:
                return ILLEGAL_ADDRESS  # half of a 32-bit register (kept simple)
            words = values[reg.address - address : reg.address - address + reg.size]
            new[reg.name] = self._decode(reg, words)
        if _OVERRIDE in new and not self.has_override:
            return GATEWAY_PATH_UNAVAILABLE  # no such path before Venus OS 3.50
        for name, value in new.items():
            if (
                name == "settings:/Settings/SystemSetup/MaxChargeCurrent"
                and value != -1
                and not 0 <= value <= 1000
            ):
                return ILLEGAL_VALUE
            if name == "settings:/Settings/CGwacs/Hub4Mode" and value not in (1, 2, 3):
                return ILLEGAL_VALUE
        c = self.model.controls
        for name, value in new.items():
            self.path_writes[name] = self.path_writes.get(name, 0) + 1
            if name == _OVERRIDE:
                self.override = value
                self.last_setpoint_write = self.clock()
            elif name == "settings:/Settings/SystemSetup/MaxChargeCurrent":
                c.dvcc_max_charge_current_a = None if value == -1 else value
            elif name == "settings:/Settings/CGwacs/Hub4Mode":
                c.ess_mode = int(value)
            else:
                self.settings[name] = value
                if name == _SETPOINT:
                    self.last_setpoint_write = self.clock()
        self.refresh()
        return None
