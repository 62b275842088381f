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


@dataclass(frozen=True, slots=True)
class VictronRegister:
    """One register of the GX's Modbus-TCP map (CCGX-Modbus-TCP-register-list)."""

    address: int
    name: str
    type: str  # uint16 | int16 | int32 | string
    #: Victron "scale factor": raw = value * scale (so value = raw / scale).
    scale: float = 1.0
    size: int = 1
    writable: bool = False


VICTRON_UNIT_ID = 100

VICTRON_REGISTERS: tuple[VictronRegister, ...] = (
    VictronRegister(800, "serial", "string", size=6),
    VictronRegister(806, "relay1", "uint16"),
    VictronRegister(807, "relay2", "uint16"),
    *(VictronRegister(808 + i, f"pv_ac_out_l{i + 1}", "uint16") for i in range(3)),
    *(VictronRegister(811 + i, f"pv_ac_in_l{i + 1}", "uint16") for i in range(3)),
    *(VictronRegister(814 + i, f"pv_ac_gen_l{i + 1}", "uint16") for i in range(3)),
    *(VictronRegister(817 + i, f"consumption_l{i + 1}", "uint16") for i in range(3)),
    *(VictronRegister(820 + i, f"grid_l{i + 1}", "int16") for i in range(3)),
    *(VictronRegister(823 + i, f"genset_l{i + 1}", "int16") for i in range(3)),
    VictronRegister(826, "active_input", "int16"),
    VictronRegister(840, "battery_voltage", "uint16", 10),
    VictronRegister(841, "battery_current", "int16", 10),
    VictronRegister(842, "battery_power", "int16"),
    VictronRegister(843, "battery_soc", "uint16"),
    VictronRegister(844, "battery_state", "uint16"),
    VictronRegister(845, "battery_consumed_ah", "uint16", -10),
    VictronRegister(846, "battery_time_to_go", "uint16", 0.01),
    VictronRegister(850, "pv_dc_power", "uint16"),
    VictronRegister(851, "pv_dc_current", "int16", 10),
    VictronRegister(855, "charger_power", "uint16"),
    VictronRegister(860, "dc_system_power", "int16"),
    VictronRegister(865, "vebus_charge_current", "int16", 10),
    VictronRegister(866, "vebus_charge_power", "int16"),
    # com.victronenergy.settings (ESS)
    VictronRegister(2700, "ess_grid_setpoint", "int16", writable=True),
    VictronRegister(2701, "ess_max_charge_pct", "uint16", writable=True),
    VictronRegister(2702, "ess_max_discharge_pct", "uint16", writable=True),
    VictronRegister(2703, "ess_grid_setpoint_x100", "int16", 0.01, writable=True),
    VictronRegister(2704, "ess_max_discharge_power", "uint16", 0.1, writable=True),
    VictronRegister(2705, "dvcc_max_charge_current", "int16", writable=True),
    VictronRegister(2706, "ess_max_feed_in_power", "int16", 0.01, writable=True),
    VictronRegister(2707, "ess_overvoltage_feed_in", "int16", writable=True),
    VictronRegister(2708, "ess_prevent_feedback", "int16", writable=True),
    VictronRegister(2709, "ess_feed_in_limiting_active", "int16"),
    VictronRegister(2710, "dvcc_max_charge_voltage", "uint16", 10, writable=True),
    VictronRegister(2716, "ess_grid_setpoint_32", "int32", size=2, writable=True),
    VictronRegister(2900, "ess_batterylife_state", "uint16", writable=True),
    VictronRegister(2901, "ess_minimum_soc", "uint16", 10, writable=True),
    VictronRegister(2902, "ess_mode", "uint16", writable=True),
    VictronRegister(2903, "ess_batterylife_soc_limit", "uint16", 10),
)


class VictronGX(Device):
    """The GX's ``com.victronenergy.system`` and ESS settings registers (unit 100).

    Unmapped addresses in a read range are an illegal-address error, as on a GX,
    so a reader must split its requests around the gaps.
    """

    name = "victron"

    def __init__(
        self,
        model: MicrogridModel,
        clock: Callable[[], float],
        serial: str = "c0619ab1d2e3",
        setpoint_timeout_s: float | None = None,
    ) -> None:
        """Build the register table; ``setpoint_timeout_s`` emulates a watchdog."""
        self.model = model
        self.clock = clock
        self.serial = serial
        self.setpoint_timeout_s = setpoint_timeout_s
        self.last_setpoint_write: float | None = None
        self.by_address: dict[int, tuple[VictronRegister, int]] = {}
        for reg in VICTRON_REGISTERS:
            for i in range(reg.size):
                self.by_address[reg.address + i] = (reg, i)
        self.values: dict[str, float] = {
            "ess_max_charge_pct": 100,
            "ess_max_discharge_pct": 100,
            "ess_max_discharge_power": -1,
            "ess_max_feed_in_power": -1,
            "ess_overvoltage_feed_in": 1,
            "ess_prevent_feedback": 0,
            "ess_feed_in_limiting_active": 0,
            "dvcc_max_charge_voltage": 56.8,
            "ess_batterylife_state": 10,
            "ess_minimum_soc": 10.0,
            "ess_batterylife_soc_limit": 10.0,
            "relay1": 0,
            "relay2": 0,
            "active_input": 1,
        }
        self.regs: dict[int, int] = {}
        self.refresh()

    # -------------------------------------------------------------- encoding

    def _encode(self, reg: VictronRegister, value: float) -> list[int]:
        # -1 means "no limit" in the GX's settings, whatever the scale
        raw = -1 if value == -1 and reg.writable else round(value * reg.scale)
        if reg.type == "int16":
            raw = max(-32768, min(32767, raw)) & 0xFFFF
            return [raw]
        if reg.type == "uint16":
            return [max(0, min(0xFFFF, raw))]
        if reg.type == "int32":
            raw &= 0xFFFFFFFF
            return [raw >> 16, raw & 0xFFFF]
        raise ValueError(reg.type)

    @staticmethod
    def _decode(reg: VictronRegister, regs: list[int]) -> float:
        if reg.type == "int16":
            v: int = struct.unpack(">h", struct.pack(">H", regs[0]))[0]
            return v / reg.scale
        if reg.type == "uint16":
            return regs[0] / reg.scale
        if reg.type == "int32":
            w: int = struct.unpack(">i", struct.pack(">HH", regs[0], regs[1]))[0]
            return w / reg.scale
        raise ValueError(reg.type)

    def refresh(self) -> None:
        """Recompute every register from the model and the stored settings."""
        mdl, c = self.model, self.model.controls
        now = self.clock()
        if (
            self.setpoint_timeout_s is not None
            and self.last_setpoint_write is not None
            and now - self.last_setpoint_write > self.setpoint_timeout_s
        ):
            c.ess_grid_setpoint_w = 0.0
            self.last_setpoint_write = None
        v = dict(self.values)
        for i in range(3):
            v[f"pv_ac_out_l{i + 1}"] = 0
            v[f"pv_ac_in_l{i + 1}"] = 0
            v[f"pv_ac_gen_l{i + 1}"] = 0
            v[f"consumption_l{i + 1}"] = mdl.load_w / 3
            v[f"grid_l{i + 1}"] = mdl.grid_w / 3
            v[f"genset_l{i + 1}"] = mdl.generator_w / 3
        v["battery_voltage"] = mdl.battery_voltage_v
        v["battery_current"] = mdl.battery_current_a
        v["battery_power"] = mdl.battery_w
        v["battery_soc"] = mdl.soc * 100
        v["battery_state"] = 1 if mdl.battery_w > 0 else 2 if mdl.battery_w < 0 else 0
        cap_ah = mdl.params.battery_capacity_wh / mdl.params.battery_nominal_v
        v["battery_consumed_ah"] = -(1 - mdl.soc) * cap_ah
        v["battery_time_to_go"] = (
            min(
                864_000.0,
                mdl.soc * mdl.params.battery_capacity_wh / -mdl.battery_w * 3600,
            )
            if mdl.battery_w < 0
            else 0
        )
        v["pv_dc_power"] = mdl.pv_w
        v["pv_dc_current"] = mdl.pv_w / mdl.battery_voltage_v
        v["charger_power"] = 0
        v["dc_system_power"] = 0
        v["vebus_charge_current"] = -mdl.inverter_ac_w / mdl.battery_voltage_v
        v["vebus_charge_power"] = -mdl.inverter_ac_w
        v["ess_grid_setpoint"] = c.ess_grid_setpoint_w
        v["ess_grid_setpoint_x100"] = c.ess_grid_setpoint_w
        v["ess_grid_setpoint_32"] = c.ess_grid_setpoint_w
        v["dvcc_max_charge_current"] = (
            -1 if c.dvcc_max_charge_current_a is None else c.dvcc_max_charge_current_a
        )
        v["ess_mode"] = c.ess_mode
        regs: dict[int, int] = {}
        for reg in VICTRON_REGISTERS:
            if reg.type == "string":
                data = self.serial.encode()[: 2 * reg.size].ljust(2 * reg.size, b"\0")
                words = struct.unpack(f">{reg.size}H", data)
            else:
                words = tuple(self._encode(reg, v[reg.name]))
            for i, w in enumerate(words):
                regs[reg.address + i] = w
        self.regs = regs

    # -------------------------------------------------------------- access

    def read(self, address: int, count: int) -> list[int] | int:
        """Registers, or illegal address if any register is unmapped."""
        out = []
        for addr in range(address, address + count):
            if addr not in self.regs:
                return ILLEGAL_ADDRESS
            out.append(self.regs[addr])
        return out

    def write(self, address: int, values: list[int]) -> int | None:
        """Write whole writable registers; apply them to the model."""
        end = address + len(values)
        touched: dict[str, VictronRegister] = {}
        for addr in range(address, end):
            entry = self.by_address.get(addr)
            if entry is None or not entry[0].writable:
                return ILLEGAL_ADDRESS
            touched[entry[0].name] = entry[0]
        new: dict[str, float] = {}
        for reg in touched.values():
            if reg.address < address or reg.address + reg.size > end:
                return ILLEGAL_ADDRESS  # half of a 32-bit register
            words = values[reg.address - address : reg.address - address + reg.size]
            new[reg.name] = self._decode(reg, words)
        for name, value in new.items():
            if (
                name == "dvcc_max_charge_current"
                and value != -1
                and not 0 <= value <= 1000
            ):
                return ILLEGAL_VALUE
            if name == "ess_mode" and value not in (1, 2, 3):
                return ILLEGAL_VALUE
        c = self.model.controls
        for name, value in new.items():
            if name in {
                "ess_grid_setpoint",
                "ess_grid_setpoint_x100",
                "ess_grid_setpoint_32",
            }:
                c.ess_grid_setpoint_w = value
                self.last_setpoint_write = self.clock()
            elif name == "dvcc_max_charge_current":
                c.dvcc_max_charge_current_a = None if value == -1 else value
            elif name == "ess_mode":
                c.ess_mode = int(value)
            else:
                self.values[name] = value
        self.refresh()
        return None
