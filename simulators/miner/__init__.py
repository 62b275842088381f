"""Simulated ASIC miners speaking the real protocols (LuxOS, Antminer, Bitaxe).

async with running_fleet(6, "127.0.1.1", ("luxos", "antminer", "bitaxe")) as fleet:
    miner = fleet.miners[0]          # a SimulatedMiner
    miner.slow = 2.0                 # fault knobs, settable while running
"""

from .fleet import DEFAULT_SPECS, FIRMWARES, Fleet, build_fleet, running_fleet
from .miner import SimulatedMiner
from .model import BITAXE_GAMMA, S19J_PRO, S21, MinerSpec

__all__ = [
    "BITAXE_GAMMA",
    "DEFAULT_SPECS",
    "FIRMWARES",
    "S19J_PRO",
    "S21",
    "Fleet",
    "MinerSpec",
    "SimulatedMiner",
    "build_fleet",
    "running_fleet",
]
