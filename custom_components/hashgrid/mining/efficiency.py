"""Nominal efficiencies of common ASIC models, for miners that report no power.

Pure data: no Home Assistant. Stock Antminer firmware reports no power; its
draw is estimated from its hashrate times its model's nominal efficiency
(the maker's published J/TH), else a typical one. An estimate a little high
only keeps a miner off a little longer; one too low would mine past a limit,
so where a model has variants the least efficient is taken.
"""

from __future__ import annotations

from typing import Final

#: A typical efficiency (J/TH) for a model not in the table.
TYPICAL_J_PER_TH: Final = 21.0

#: Published nominal efficiencies (J/TH), by a part of the model's name.
NOMINAL_J_PER_TH: Final[dict[str, float]] = {
    "S21 XP": 13.5,
    "S21 Pro": 15.0,
    "S21+": 16.5,
    "S21": 17.5,
    "T21": 19.0,
    "S19 XP": 21.5,
    "S19k Pro": 23.0,
    "S19j Pro+": 27.5,
    "S19j Pro": 29.5,
    "S19 Pro": 29.5,
    "S19j": 34.5,
    "S19": 34.5,
    "S17": 45.0,
    "S9": 98.0,
}
_BY_LENGTH: Final = sorted(NOMINAL_J_PER_TH, key=len, reverse=True)


def j_per_th(model: str | None) -> float:
    """Return the model's nominal efficiency (J/TH), else a typical one.

    The longest name the model contains wins ("Antminer S21 Pro" is an S21 Pro,
    not an S21).
    """
    if model:
        folded = model.casefold()
        for name in _BY_LENGTH:
            if name.casefold() in folded:
                return NOMINAL_J_PER_TH[name]
    return TYPICAL_J_PER_TH
