"""Physical model of a small DC-coupled microgrid.

One AC bus with the house load, the grid connection and (optionally) a genset;
behind a hybrid inverter a DC bus with PV (two MPPT strings) and a battery.
Loads simulated elsewhere (the demo's miners) join the AC load through
:attr:`MicrogridModel.external_loads`: what they draw is in ``load_w``, so the
inverter and its meter report it.

Sign conventions used throughout the model (Victron's, which are also HashGrid's):

- ``battery_w`` > 0: the battery is charging (power into the battery).
- ``grid_w`` > 0: importing from the grid; < 0: exporting.
- ``inverter_ac_w`` > 0: the inverter delivers power to the AC bus.

The energy balance is exact every step::

    pv_w + generator_w + grid_w == load_w + battery_w
    inverter_ac_w == pv_w - battery_w

and every energy counter integrates the matching power over the same step, so
``pv_wh + generator_wh + grid_import_wh - grid_export_wh`` equals
``load_wh + battery_charged_wh - battery_discharged_wh`` (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import math
import random

DAY_S = 86_400.0


@dataclass(slots=True)
class ModelParams:
    """Fixed characteristics of the simulated site."""

    pv_peak_w: float = 8_000.0
    pv_strings: int = 2
    sunrise_h: float = 6.0
    sunset_h: float = 20.0
    battery_capacity_wh: float = 10_000.0
    battery_max_charge_w: float = 5_000.0
    battery_max_discharge_w: float = 5_000.0
    battery_min_soc: float = 0.05
    battery_nominal_v: float = 48.0
    battery_internal_ohm: float = 0.01
    inverter_max_w: float = 6_000.0
    house_base_w: float = 350.0
    house_peak_w: float = 1_500.0
    generator_rated_w: float = 3_000.0
    seed: int = 1
    #: Simulated time of day (seconds after midnight) at simulation start.
    start_time_of_day_s: float = 12 * 3600.0
    initial_soc: float = 0.5
    #: Longest integration step in simulated seconds.
    max_step_s: float = 5.0
    #: How fast clouds and household appliances move against simulated time.
    #: 1.0 in a simulated day; a demo that runs the sun N times faster than
    #: the clock sets 1/N, so that clouds pass and kettles boil at the pace a
    #: person, and a control loop reading every few seconds, sees them
    #: (at N = 144 with 1.0, the PV jumped by up to 2 kW between two 5-s
    #: readings and a kettle ran for 3 s every 12 s).
    weather_speed: float = 1.0


@dataclass(slots=True)
class Controls:
    """Setpoints written over Modbus (SunSpec and Victron) and by the API."""

    #: Inverter AC output limit (SunSpec 704 WMaxLimPct x WMax); None = no limit.
    export_limit_w: float | None = None
    #: Storage charge / discharge limits (SunSpec 124 InWRte / OutWRte).
    max_charge_w: float | None = None
    max_discharge_w: float | None = None
    #: Victron ESS grid setpoint (register 2700), W, > 0 = import.
    ess_grid_setpoint_w: float = 0.0
    #: Victron DVCC max charge current (register 2705), A; None = no limit.
    dvcc_max_charge_current_a: float | None = None
    #: Victron ESS mode (register 2902): 1/2 = ESS optimised, 3 = external control.
    ess_mode: int = 1
    generator_running: bool = False


@dataclass(slots=True)
class Counters:
    """Monotonic energy counters in Wh."""

    pv_wh: float = 0.0
    load_wh: float = 0.0
    battery_charged_wh: float = 0.0
    battery_discharged_wh: float = 0.0
    grid_import_wh: float = 0.0
    grid_export_wh: float = 0.0
    generator_wh: float = 0.0
    inverter_out_wh: float = 0.0
    inverter_in_wh: float = 0.0
    pv_string_wh: list[float] = field(default_factory=lambda: [0.0, 0.0])


class MicrogridModel:
    """The site's physics, advanced in simulated seconds."""

    def __init__(self, params: ModelParams | None = None) -> None:
        """Build the model in its initial state."""
        self.params = params or ModelParams()
        self.controls = Controls()
        self.counters = Counters(pv_string_wh=[0.0] * self.params.pv_strings)
        self._rng = random.Random(self.params.seed)
        self.sim_time_s = 0.0
        self.soc = self.params.initial_soc
        self._cloud = 1.0
        self._appliance_w = 0.0
        self._appliance_left_s = 0.0
        self.pv_available_w = 0.0
        self.pv_w = 0.0
        self.pv_string_w = [0.0] * self.params.pv_strings
        self.load_w = 0.0
        self.battery_w = 0.0
        self.grid_w = 0.0
        self.generator_w = 0.0
        self.inverter_ac_w = 0.0
        self.curtailed_w = 0.0
        #: Loads simulated elsewhere (e.g. miners), each read every step, W.
        self.external_loads: list[Callable[[], float]] = []
        self.external_load_w = 0.0
        self.steps = 0
        self._solve(0.0)

    # ------------------------------------------------------------------ time

    @property
    def time_of_day_s(self) -> float:
        """Simulated seconds since midnight."""
        return (self.params.start_time_of_day_s + self.sim_time_s) % DAY_S

    def advance(self, seconds: float) -> None:
        """Advance the simulation by ``seconds`` of simulated time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        remaining = seconds
        while remaining > 1e-9:
            step = min(remaining, self.params.max_step_s)
            self._step(step)
            remaining -= step

    # ------------------------------------------------------------------ physics

    @property
    def battery_voltage_v(self) -> float:
        """DC bus voltage: open-circuit voltage from SoC plus IR drop."""
        p = self.params
        ocv = p.battery_nominal_v * (0.94 + 0.16 * self.soc)
        current = self.battery_w / ocv
        return ocv + p.battery_internal_ohm * current

    @property
    def battery_current_a(self) -> float:
        """Battery current (A), > 0 charging."""
        return self.battery_w / self.battery_voltage_v

    def _pv_clear_sky(self, tod_s: float) -> float:
        p = self.params
        rise, sset = p.sunrise_h * 3600.0, p.sunset_h * 3600.0
        if not rise < tod_s < sset:
            return 0.0
        x = (tod_s - rise) / (sset - rise)
        return float(p.pv_peak_w * math.sin(math.pi * x) ** 1.5)

    def _house_load(self, tod_s: float) -> float:
        p = self.params
        h = tod_s / 3600.0
        morning = math.exp(-(((h - 7.5) / 1.2) ** 2))
        evening = math.exp(-(((h - 19.0) / 2.0) ** 2))
        shape = max(morning, evening)
        return p.house_base_w + (p.house_peak_w - p.house_base_w) * shape

    def _step(self, dt: float) -> None:
        self.sim_time_s += dt
        rng = self._rng
        weather_dt = dt * self.params.weather_speed
        # clouds: mean-reverting random walk between 0.15 and 1.0
        self._cloud += 0.02 * weather_dt / 5.0 * (0.85 - self._cloud) + rng.gauss(
            0.0, 0.03 * math.sqrt(weather_dt / 5.0)
        )
        self._cloud = min(1.0, max(0.15, self._cloud))
        # appliances: occasional kettle / oven / pump
        if self._appliance_left_s > 0:
            self._appliance_left_s -= weather_dt
            if self._appliance_left_s <= 0:
                self._appliance_w = 0.0
        elif rng.random() < weather_dt / 1800.0:
            self._appliance_w = rng.choice((800.0, 1200.0, 2000.0))
            self._appliance_left_s = rng.uniform(120.0, 900.0)
        self._solve(dt)

    def _solve(self, dt: float) -> None:
        """Compute the power flows for the current instant and integrate ``dt``."""
        p, c = self.params, self.controls
        tod = self.time_of_day_s
        self.pv_available_w = self._pv_clear_sky(tod) * self._cloud
        self.external_load_w = sum(max(0.0, load()) for load in self.external_loads)
        self.load_w = self._house_load(tod) + self._appliance_w + self.external_load_w
        self.generator_w = p.generator_rated_w if c.generator_running else 0.0

        # battery limits from nameplate, storage controls, DVCC and SoC
        max_chg = p.battery_max_charge_w
        if c.max_charge_w is not None:
            max_chg = min(max_chg, c.max_charge_w)
        if c.dvcc_max_charge_current_a is not None:
            max_chg = min(max_chg, c.dvcc_max_charge_current_a * self.battery_voltage_v)
        max_dis = p.battery_max_discharge_w
        if c.max_discharge_w is not None:
            max_dis = min(max_dis, c.max_discharge_w)
        cap_ws = p.battery_capacity_wh * 3600.0
        if dt > 0:
            max_chg = min(max_chg, (1.0 - self.soc) * cap_ws / dt)
            max_dis = min(max_dis, max(0.0, self.soc - p.battery_min_soc) * cap_ws / dt)
        else:
            if self.soc >= 1.0:
                max_chg = 0.0
            if self.soc <= p.battery_min_soc:
                max_dis = 0.0
        max_chg, max_dis = max(0.0, max_chg), max(0.0, max_dis)

        # ESS: steer the battery so that the grid meets the setpoint
        pv = self.pv_available_w
        if c.ess_mode == 3:
            battery = 0.0  # external control: the ESS loop is off
        else:
            battery = pv + self.generator_w - self.load_w + c.ess_grid_setpoint_w
        battery = min(max_chg, max(-max_dis, battery))

        # inverter AC output limit: curtail PV, never the battery's share
        ac_limit = p.inverter_max_w
        if c.export_limit_w is not None:
            ac_limit = min(ac_limit, c.export_limit_w)
        ac = pv - battery
        if ac > ac_limit:
            # The AC side is full: the battery takes the PV the AC side cannot
            # (discharging less, or charging, up to its charge limit); only PV
            # beyond that is curtailed.
            battery = min(max_chg, pv - ac_limit)
            pv = max(0.0, min(pv, ac_limit + battery))
            ac = pv - battery
        if ac < -p.inverter_max_w:  # charging from AC is bounded too
            battery = pv + p.inverter_max_w
            ac = -p.inverter_max_w
        self.curtailed_w = self.pv_available_w - pv
        self.pv_w = pv
        self.battery_w = battery
        self.inverter_ac_w = ac
        self.grid_w = self.load_w - ac - self.generator_w
        share = 1.0 / p.pv_strings
        self.pv_string_w = [pv * share] * p.pv_strings

        if dt > 0:
            h = dt / 3600.0
            k = self.counters
            k.pv_wh += pv * h
            for i, w in enumerate(self.pv_string_w):
                k.pv_string_wh[i] += w * h
            k.load_wh += self.load_w * h
            k.generator_wh += self.generator_w * h
            if battery >= 0:
                k.battery_charged_wh += battery * h
            else:
                k.battery_discharged_wh += -battery * h
            if self.grid_w >= 0:
                k.grid_import_wh += self.grid_w * h
            else:
                k.grid_export_wh += -self.grid_w * h
            if ac >= 0:
                k.inverter_out_wh += ac * h
            else:
                k.inverter_in_wh += -ac * h
            self.soc = min(1.0, max(0.0, self.soc + battery * dt / cap_ws))
            self.steps += 1

    def balance_error_w(self) -> float:
        """Instantaneous energy-balance residual (should be ~0)."""
        return self.pv_w + self.generator_w + self.grid_w - self.load_w - self.battery_w


class ModelClock:
    """Maps a real clock onto simulated time with a time-compression factor."""

    def __init__(
        self, model: MicrogridModel, clock: Callable[[], float], time_scale: float
    ) -> None:
        """Start mapping from the clock's current reading."""
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.model = model
        self.clock = clock
        self.time_scale = time_scale
        self._last = clock()

    def tick(self) -> float:
        """Advance the model to the clock's present; return simulated seconds moved."""
        now = self.clock()
        real = max(0.0, now - self._last)
        self._last = now
        sim = real * self.time_scale
        self.model.advance(sim)
        return sim
