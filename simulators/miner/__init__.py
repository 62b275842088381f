"""Simulated ASIC miners speaking the real protocols.

LuxOS, Antminer stock, Bitaxe (AxeOS), Avalon Nano 3S and Avalon Q (Canaan's
cgminer), Whatsminer (btminer API 2.0.5), Braiins OS+ (BOSer: cgminer-style API
and the gRPC Public API).

async with running_fleet(6, "127.0.1.1", ("luxos", "antminer", "bitaxe")) as fleet:
    miner = fleet.miners[0]          # a SimulatedMiner
    miner.slow = 2.0                 # fault knobs, settable while running
"""

from .fleet import DEFAULT_SPECS, FIRMWARES, Fleet, build_fleet, running_fleet
from .miner import SimulatedMiner
from .model import (
    AVALON_NANO3S,
    AVALON_Q,
    BITAXE_GAMMA,
    S19J_PRO,
    S21,
    WHATSMINER_M30S_PLUS,
    MinerSpec,
)

__all__ = [
    "AVALON_NANO3S",
    "AVALON_Q",
    "BITAXE_GAMMA",
    "DEFAULT_SPECS",
    "FIRMWARES",
    "S19J_PRO",
    "S21",
    "WHATSMINER_M30S_PLUS",
    "Fleet",
    "MinerSpec",
    "SimulatedMiner",
    "build_fleet",
    "running_fleet",
]
