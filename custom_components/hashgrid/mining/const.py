"""Constants of the mining part."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

CONF_SUBNET: Final = "subnet"
CONF_PRIORITY: Final = "priority"
CONF_MIN_POWER: Final = "min_power_w"
CONF_MAX_POWER: Final = "max_power_w"
# The room a miner heats: a temperature sensor (its heater's current temperature).
CONF_ROOM_TEMPERATURE: Final = "room_temperature_entity"

SUBENTRY_MINER: Final = "miner"

SCAN_INTERVAL: Final = timedelta(seconds=10)
# After a command, read the miner back at once, then after these pauses, until
# it has obeyed (real miners take a moment to stop hashing).
VERIFY_PAUSES_S: Final = (0.0, 0.25, 0.5, 1.0, 2.0)
# A miner that fails to obey this many curtailments in a row raises a repair issue.
DISOBEY_REPAIR_THRESHOLD: Final = 3
DEFAULT_STAGGER_S: Final = 2.0

EVENT_CURTAILMENT: Final = "hashgrid_curtailment"
