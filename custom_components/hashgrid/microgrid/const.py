"""Constants of the microgrid part."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from .surplus import BatteryPolicy

CONF_UNIT_ID: Final = "unit_id"
#: What the flow detected: "sunspec" or "victron".
CONF_DEVICE: Final = "device"

CONF_POLICY: Final = "policy"
CONF_TARGET_SOC: Final = "target_soc"
CONF_SHORTFALL_THRESHOLD: Final = "shortfall_threshold_w"
CONF_SHORTFALL_ON_DELAY: Final = "shortfall_on_delay_s"
CONF_SHORTFALL_OFF_DELAY: Final = "shortfall_off_delay_s"

DEFAULT_PORT: Final = 502
DEFAULT_UNIT_ID: Final = 1
DEFAULT_OPTIONS: Final[dict[str, str | float]] = {
    CONF_POLICY: BatteryPolicy.BATTERY_FIRST.value,
    CONF_TARGET_SOC: 80.0,
    CONF_SHORTFALL_THRESHOLD: 0.0,
    CONF_SHORTFALL_ON_DELAY: 60.0,
    CONF_SHORTFALL_OFF_DELAY: 300.0,
}

SCAN_INTERVAL: Final = timedelta(seconds=5)
#: Seconds to wait for one Modbus answer (polls, writes and the flow's detection).
REQUEST_TIMEOUT: Final = 3.0
#: Seconds one poll may take as a whole (reads, retries, a rescan).
POLL_DEADLINE: Final = 15.0
#: Seconds identifying the device (and walking its chain) may take at setup.
SETUP_DEADLINE: Final = 60.0
#: Least seconds between re-writes of a Victron ESS grid setpoint the GX lost.
SETPOINT_RESEND_S: Final = 30.0
#: The ESS grid setpoint range offered (W; > 0 import, < 0 export).
ESS_SETPOINT_LIMIT_W: Final = 32_000
