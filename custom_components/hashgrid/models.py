"""Typed runtime data shared by every kind of HashGrid config entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentryFlow, OptionsFlow
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import EntryKind


class KindRuntime:
    """Base of each kind's `entry.runtime_data`."""

    async def async_shutdown(self) -> None:
        """Release what the kind holds (connections, listeners)."""

    def diagnostics(self) -> dict[str, Any]:
        """Return diagnostics data; secrets are redacted by the caller too."""
        return {}


type HashGridConfigEntry = ConfigEntry[KindRuntime]

type PlatformSetup = Callable[
    [HomeAssistant, HashGridConfigEntry, AddConfigEntryEntitiesCallback],
    Awaitable[None],
]


@dataclass(frozen=True, kw_only=True)
class KindHandler:
    """What one kind of entry contributes: setup, platforms, subentry flows."""

    kind: EntryKind
    setup: Callable[[HomeAssistant, HashGridConfigEntry], Awaitable[KindRuntime]]
    platforms: Mapping[Platform, PlatformSetup] = field(default_factory=dict)
    subentry_flows: Mapping[str, type[ConfigSubentryFlow]] = field(default_factory=dict)
    options_flow: type[OptionsFlow] | None = None
