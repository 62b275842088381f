"""Constants of the mining part."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

CONF_SUBNET: Final = "subnet"
CONF_PRIORITY: Final = "priority"
CONF_MIN_POWER: Final = "min_power_w"
CONF_MAX_POWER: Final = "max_power_w"

SUBENTRY_MINER: Final = "miner"

SCAN_INTERVAL: Final = timedelta(seconds=10)
# Read back this long after a command, to verify what the miners did.
VERIFY_DELAY_S: Final = 1.0
# A miner that fails to obey this many curtailments in a row raises a repair issue.
DISOBEY_REPAIR_THRESHOLD: Final = 3
DEFAULT_STAGGER_S: Final = 2.0

EVENT_CURTAILMENT: Final = "hashgrid_curtailment"
