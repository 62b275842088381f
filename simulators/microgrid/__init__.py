"""Simulated DC microgrid speaking Modbus-TCP: SunSpec inverter, genset, Victron GX."""

from .devices import INVERTER_MODELS, SUNSPEC_BASE, VICTRON_REGISTERS, VICTRON_UNIT_ID
from .model import Controls, Counters, MicrogridModel, ModelParams
from .server import (
    GENERATOR_UNIT_ID,
    INVERTER_UNIT_ID,
    DeviceFaults,
    MicrogridSite,
    running_microgrid,
)

__all__ = [
    "GENERATOR_UNIT_ID",
    "INVERTER_MODELS",
    "INVERTER_UNIT_ID",
    "SUNSPEC_BASE",
    "VICTRON_REGISTERS",
    "VICTRON_UNIT_ID",
    "Controls",
    "Counters",
    "DeviceFaults",
    "MicrogridModel",
    "MicrogridSite",
    "ModelParams",
    "running_microgrid",
]
