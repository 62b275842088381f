"""The microgrid coordinator: one device, one reused Modbus connection, every 5 s.

A poll has a deadline (:data:`.const.POLL_DEADLINE`): past it the poll fails and
the entities are unavailable, never showing an old reading as current. A
SunSpec device whose model chain looks different is scanned again; when its
models changed the entry reloads, so its entities follow what it now has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
import math
from typing import Any

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from ..const import DOMAIN, LOGGER
from ..models import HashGridConfigEntry
from . import const
from .const import (
    CONF_DEVICE,
    CONF_POLICY,
    CONF_SHORTFALL_OFF_DELAY,
    CONF_SHORTFALL_ON_DELAY,
    CONF_SHORTFALL_THRESHOLD,
    CONF_TARGET_SOC,
    CONF_UNIT_ID,
    DEFAULT_OPTIONS,
    SCAN_INTERVAL,
)
from .counters import IncreasingTotals, PowerIntegrator
from .detect import DetectedDevice, is_generator
from .errors import ChainChanged, InvalidValue, MicrogridError
from .sunspec import SunSpecDevice
from .sunspec_snapshot import SunSpecSnapshot
from .surplus import BatteryPolicy, ShortfallDetector, Surplus, compute_surplus
from .transport import ModbusTransport
from .victron import SetpointKeeper, VictronGX, VictronSnapshot

STORAGE_VERSION = 1
#: Integrate power into energy only across gaps shorter than this many polls.
MAX_GAP_POLLS = 3


def _kwh(wh: float | None) -> float | None:
    return None if wh is None else round(wh / 1000.0, 3)


def _add(*values: float | None) -> float | None:
    """Sum of the values, None when all are None."""
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None


@dataclass(frozen=True, kw_only=True)
class MicrogridData:
    """One poll, in HashGrid's conventions (None = the device does not tell).

    Signs: battery power > 0 charging, grid power > 0 importing.
    """

    pv_power_w: float | None = None
    pv_energy_kwh: float | None = None
    battery_soc_pct: float | None = None
    battery_power_w: float | None = None
    battery_current_a: float | None = None
    battery_charged_kwh: float | None = None
    battery_discharged_kwh: float | None = None
    dc_bus_voltage_v: float | None = None
    grid_power_w: float | None = None
    grid_import_kwh: float | None = None
    grid_export_kwh: float | None = None
    load_power_w: float | None = None
    dc_load_power_w: float | None = None
    inverter_power_w: float | None = None
    inverter_energy_kwh: float | None = None
    generator_power_w: float | None = None
    generator_energy_kwh: float | None = None
    # controls (current values) and their ranges
    max_power_w: float | None = None
    export_limit_w: float | None = None
    max_charge_w: float | None = None
    max_discharge_w: float | None = None
    battery_max_charge_w: float | None = None
    battery_max_discharge_w: float | None = None
    ess_grid_setpoint_w: float | None = None
    # surplus
    surplus: Surplus | None = None
    shortfall: bool = False
    snapshot: SunSpecSnapshot | VictronSnapshot | None = None

    @property
    def generation_w(self) -> float | None:
        """PV plus generator output."""
        return _add(self.pv_power_w, self.generator_power_w)

    @property
    def surplus_w(self) -> float | None:
        """Power left for mining (< 0: a deficit)."""
        return None if self.surplus is None else self.surplus.surplus_w


def from_sunspec(snap: SunSpecSnapshot, *, generator: bool) -> MicrogridData:
    """Map a SunSpec snapshot (an inverter's, or a genset's)."""
    if generator:
        return MicrogridData(
            generator_power_w=snap.ac_power_w,
            generator_energy_kwh=_kwh(snap.ac_energy_wh),
            snapshot=snap,
        )
    load = (
        snap.ac_power_w + snap.grid_power_w
        if snap.ac_power_w is not None and snap.grid_power_w is not None
        else None
    )
    return MicrogridData(
        pv_power_w=snap.pv_power_w,
        pv_energy_kwh=_kwh(snap.pv_energy_wh),
        battery_soc_pct=snap.battery_soc_pct,
        battery_power_w=snap.battery_power_w,
        battery_charged_kwh=_kwh(snap.battery_charged_wh),
        battery_discharged_kwh=_kwh(snap.battery_discharged_wh),
        dc_bus_voltage_v=snap.dc_bus_voltage_v,
        grid_power_w=snap.grid_power_w,
        grid_import_kwh=_kwh(snap.grid_import_wh),
        grid_export_kwh=_kwh(snap.grid_export_wh),
        load_power_w=load,
        inverter_power_w=snap.ac_power_w,
        inverter_energy_kwh=_kwh(snap.ac_energy_wh),
        max_power_w=snap.max_power_w,
        export_limit_w=snap.export_limit_w
        if snap.export_limit_enabled
        else snap.max_power_w,
        max_charge_w=snap.max_charge_w,
        max_discharge_w=snap.max_discharge_w,
        battery_max_charge_w=snap.battery_max_charge_w,
        battery_max_discharge_w=snap.battery_max_discharge_w,
        snapshot=snap,
    )


def from_victron(snap: VictronSnapshot, *, holding: bool = False) -> MicrogridData:
    """Map a Victron GX snapshot.

    The ESS grid setpoint shown is the one in force: the register HashGrid
    writes while it holds a setpoint (``holding``), else the GX's own setting
    (an unset override at 2716 reads 0 on a GX, which is not in force).
    """
    max_charge = (
        snap.dvcc_max_charge_current_a * snap.battery_voltage_v
        if snap.dvcc_max_charge_current_a is not None
        and snap.battery_voltage_v is not None
        else None
    )
    load = (
        None
        if snap.consumption_w is None
        else snap.consumption_w + (snap.dc_system_power_w or 0.0)
    )
    return MicrogridData(
        pv_power_w=snap.pv_power_w,
        battery_soc_pct=snap.battery_soc_pct,
        battery_power_w=snap.battery_power_w,
        battery_current_a=snap.battery_current_a,
        dc_bus_voltage_v=snap.battery_voltage_v,
        grid_power_w=snap.grid_power_w,
        load_power_w=load,
        dc_load_power_w=snap.dc_system_power_w,
        generator_power_w=snap.genset_power_w,
        battery_max_charge_w=max_charge,
        ess_grid_setpoint_w=(
            snap.ess_grid_setpoint_w if holding else snap.ess_setpoint_setting_w
        ),
        snapshot=snap,
    )


def _positive(value: float | None) -> float | None:
    return None if value is None else max(value, 0.0) + 0.0  # never -0.0


def _negative(value: float | None) -> float | None:
    return None if value is None else max(0.0 - value, 0.0)


#: Energy counters a Victron GX does not keep (its system registers tell power
#: only): integrated here from the power each poll reads, kept across restarts.
#: counter -> (field of MicrogridData it fills, power in W that feeds it).
_INTEGRATED: dict[str, tuple[str, Callable[[MicrogridData], float | None]]] = {
    "pv": ("pv_energy_kwh", lambda d: _positive(d.pv_power_w)),
    "grid_import": ("grid_import_kwh", lambda d: _positive(d.grid_power_w)),
    "grid_export": ("grid_export_kwh", lambda d: _negative(d.grid_power_w)),
    "battery_charged": (
        "battery_charged_kwh",
        lambda d: _positive(d.battery_power_w),
    ),
    "battery_discharged": (
        "battery_discharged_kwh",
        lambda d: _negative(d.battery_power_w),
    ),
    "generator": ("generator_energy_kwh", lambda d: _positive(d.generator_power_w)),
}


class MicrogridCoordinator(DataUpdateCoordinator[MicrogridData]):
    """Polls one SunSpec device or Victron GX and computes the surplus."""

    config_entry: HashGridConfigEntry

    def __init__(self, hass: HomeAssistant, entry: HashGridConfigEntry) -> None:
        """Prepare the connection (opened at the first poll) and the surplus policy."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} microgrid {entry.title}",
            update_interval=SCAN_INTERVAL,
        )
        data = entry.data
        self.transport = ModbusTransport(
            data[CONF_HOST],
            int(data[CONF_PORT]),
            timeout=const.REQUEST_TIMEOUT,
            backoff_max=30.0,
        )
        unit = int(data[CONF_UNIT_ID])
        self.sunspec: SunSpecDevice | None = None
        self.victron: VictronGX | None = None
        #: The GX's setpoint keeper (set by the entry's setup).
        self.keeper: SetpointKeeper | None = None
        if data[CONF_DEVICE] == "victron":
            self.victron = VictronGX(self.transport, unit)
        else:
            self.sunspec = SunSpecDevice(self.transport, unit)
        self.device: DetectedDevice | None = None
        self.totals = IncreasingTotals(f"{DOMAIN} microgrid {entry.title}")
        self.integrator = PowerIntegrator(
            _INTEGRATED, MAX_GAP_POLLS * SCAN_INTERVAL.total_seconds()
        )
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.microgrid.{entry.entry_id}"
        )
        options = {**DEFAULT_OPTIONS, **entry.options}
        self.policy = BatteryPolicy(options[CONF_POLICY])
        self.target_soc_pct = float(options[CONF_TARGET_SOC])
        self.shortfall = ShortfallDetector(
            float(options[CONF_SHORTFALL_THRESHOLD]),
            on_delay_s=float(options[CONF_SHORTFALL_ON_DELAY]),
            off_delay_s=float(options[CONF_SHORTFALL_OFF_DELAY]),
        )

    async def async_load_energy(self) -> None:
        """Restore the integrated energy counters (a Victron GX's)."""
        stored = await self._store.async_load() or {}
        energy = self.integrator.energy_kwh
        for key, kwh in stored.get("energy_kwh", {}).items():
            if key in energy:
                energy[key] = float(kwh)

    def _energy_data(self) -> dict[str, Any]:
        return {"energy_kwh": dict(self.integrator.energy_kwh)}

    async def async_save_energy(self) -> None:
        """Write the integrated counters now (at unload)."""
        if self.victron is not None:
            await self._store.async_save(self._energy_data())

    def _integrate(self, data: MicrogridData) -> MicrogridData:
        """Add the energy since the last poll (see :class:`.counters.PowerIntegrator`)."""
        kwh = self.integrator.add(
            {key: power(data) for key, (_, power) in _INTEGRATED.items()},
            self.hass.loop.time(),
        )
        self._store.async_delay_save(self._energy_data, 30)
        return replace(
            data,
            **{_INTEGRATED[key][0]: value for key, value in kwh.items()},  # type: ignore[arg-type]
        )

    @property
    def is_generator(self) -> bool:
        """Whether the device is a SunSpec genset (AC output only)."""
        if self.sunspec is None:
            return False
        return is_generator(tuple(m.model_id for m in self.sunspec.models))

    async def _async_setup(self) -> None:
        """Identify the device once (and scan a SunSpec device's models)."""
        try:
            async with asyncio.timeout(const.SETUP_DEADLINE):
                self.device = await self._identify()
        except TimeoutError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="microgrid_poll_failed",
                translation_placeholders={
                    "error": f"no identity in {const.SETUP_DEADLINE} s"
                },
            ) from err
        except MicrogridError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="microgrid_poll_failed",
                translation_placeholders={"error": str(err) or type(err).__name__},
            ) from err

    async def _identify(self) -> DetectedDevice:
        transport = self.transport
        if self.victron is not None:
            await self.victron.read_firmware()
            return DetectedDevice(
                kind="victron",
                host=transport.host,
                port=transport.port,
                unit_id=self.victron.unit_id,
                manufacturer="Victron Energy",
                model="GX",
                serial=await self.victron.read_serial(),
                version=self.victron.firmware_text,
            )
        assert self.sunspec is not None
        models = await self.sunspec.scan()
        identity = await self.sunspec.read_identity()
        return DetectedDevice(
            kind="sunspec",
            host=transport.host,
            port=transport.port,
            unit_id=self.sunspec.unit_id,
            manufacturer=identity.manufacturer,
            model=identity.model,
            serial=identity.serial,
            version=identity.version,
            models=tuple(m.model_id for m in models),
            base_address=self.sunspec.base_address,
        )

    async def _async_update_data(self) -> MicrogridData:
        """Read the device once; any failure makes every entity unavailable."""
        try:
            async with asyncio.timeout(const.POLL_DEADLINE):
                data = await self._read()
        except TimeoutError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="microgrid_poll_failed",
                translation_placeholders={
                    "error": f"no complete reading in {const.POLL_DEADLINE} s"
                },
            ) from err
        except MicrogridError as err:
            if isinstance(err, InvalidValue) and self.sunspec is not None:
                # A rebooted or updated device may lay its models out anew.
                self.sunspec.base_address = None
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="microgrid_poll_failed",
                translation_placeholders={"error": str(err) or type(err).__name__},
            ) from err
        return self._with_surplus(data)

    async def _read(self) -> MicrogridData:
        if self.victron is not None:
            gx_snap = await self.victron.read_snapshot()
            if self.keeper is not None:
                await self.keeper.check(gx_snap.ess_grid_setpoint_w)
            holding = self.keeper is not None and self.keeper.active
            return self._integrate(from_victron(gx_snap, holding=holding))
        sunspec = self.sunspec
        assert sunspec is not None
        if sunspec.base_address is None:
            await self._rescan(sunspec)
        try:
            snap = await sunspec.read_snapshot()
        except ChainChanged as err:
            LOGGER.info("%s: %s; walking it again", self.name, err)
            await self._rescan(sunspec)
            snap = await sunspec.read_snapshot()
        return self._increasing(from_sunspec(snap, generator=self.is_generator))

    async def _rescan(self, sunspec: SunSpecDevice) -> None:
        """Walk the chain again; reload the entry when the models changed."""
        models = tuple(m.model_id for m in await sunspec.scan())
        if self.device is None or models == self.device.models:
            return
        previous, self.device = self.device.models, replace(self.device, models=models)
        if self.data is None:
            return  # no entities yet: they are made from this poll
        LOGGER.warning(
            "%s now has SunSpec models %s (were %s); reloading its entities",
            self.name,
            models,
            previous,
        )
        self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)

    def _increasing(self, data: MicrogridData) -> MicrogridData:
        """Energy totals that went backwards are unknown (see :mod:`.counters`)."""
        totals = {
            f.name: self.totals.check(f.name, getattr(data, f.name))
            for f in fields(data)
            if f.name.endswith("_kwh")
        }
        return replace(data, **totals)  # type: ignore[arg-type]

    def _with_surplus(self, data: MicrogridData) -> MicrogridData:
        """Add the surplus and the shortfall flag (options of the entry)."""
        now = self.hass.loop.time()
        generation, load = data.generation_w, data.load_power_w
        if generation is None or load is None:
            self.shortfall.update(math.nan, now)
            return replace(data, shortfall=self.shortfall.active)
        reserve = data.battery_max_charge_w
        if reserve is None:
            # Unknown charge limit: reserve what the battery takes now.
            reserve = max(data.battery_power_w or 0.0, 0.0)
        surplus = compute_surplus(
            generation,
            load,
            policy=self.policy,
            battery_soc_pct=data.battery_soc_pct,
            target_soc_pct=self.target_soc_pct,
            battery_max_charge_w=reserve,
            # An inverter (SunSpec 702 WMax) serves its AC load up to its rating.
            ac_headroom_w=None if data.max_power_w is None else data.max_power_w - load,
        )
        return replace(
            data,
            surplus=surplus,
            shortfall=self.shortfall.update(surplus.surplus_w, now),
        )

    async def async_close(self) -> None:
        """Close the connection."""
        await self.transport.close()
        self.integrator.restart()
