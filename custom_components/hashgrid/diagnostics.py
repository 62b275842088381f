"""Diagnostics for HashGrid entries; secrets never leave redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .models import HashGridConfigEntry

TO_REDACT = {
    CONF_PASSWORD,
    CONF_USERNAME,
    "rune",
    "client_key",
    "client_cert",
    "private_key",
    "vtn_fingerprint",
    "mac",
    "serial",
    "unique_id",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HashGridConfigEntry
) -> dict[str, Any]:
    """Return the entry (redacted) and what its kind reports."""
    return async_redact_data(
        {
            "entry": entry.as_dict(),
            "runtime": entry.runtime_data.diagnostics(),
        },
        TO_REDACT,
    )
