"""Constants of the grid signal part."""

from __future__ import annotations

from typing import Final

CONF_VTN_URL: Final = "vtn_url"
CONF_VEN_NAME: Final = "ven_name"
CONF_CLIENT_CERT: Final = "client_cert"
CONF_CLIENT_KEY: Final = "client_key"
CONF_CA_FILE: Final = "ca_file"
CONF_VTN_FINGERPRINT: Final = "vtn_fingerprint"
CONF_TELEMETRY_SENSOR: Final = "telemetry_sensor"

STORAGE_VERSION: Final = 1
REGISTER_TIMEOUT_S: Final = 20.0

EVENT_NEW: Final = "new"
EVENT_MODIFIED: Final = "modified"
EVENT_CANCELLED: Final = "cancelled"
EVENT_REJECTED: Final = "rejected"
EVENT_TYPES: Final = [EVENT_NEW, EVENT_MODIFIED, EVENT_CANCELLED, EVENT_REJECTED]
