"""Typed runtime data shared by every kind of HashGrid config entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
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


def runtime_as[R: KindRuntime](entry: HashGridConfigEntry, kind: type[R]) -> R:
    """Return the entry's runtime data as its kind's type (each kind's typed
    accessor, e.g. ``site_runtime``, is this with its own type)."""
    runtime = entry.runtime_data
    if not isinstance(runtime, kind):
        raise TypeError(
            f"{entry.title} holds a {type(runtime).__name__}, not a {kind.__name__}"
        )
    return runtime


type PlatformSetup = Callable[
    [HomeAssistant, HashGridConfigEntry, AddConfigEntryEntitiesCallback],
    Awaitable[None],
]


#: A kind's step of the main config flow, unbound: called with the flow (the
#: class that mixes in every kind's steps, hence ``Any``) and the step's input.
type ReconfigureStep = Callable[
    [Any, dict[str, Any] | None], Awaitable[ConfigFlowResult]
]
type ReauthStep = Callable[[Any, Mapping[str, Any]], Awaitable[ConfigFlowResult]]


@dataclass(frozen=True, kw_only=True)
class KindHandler:
    """What one kind of entry contributes: setup, platforms, flows."""

    kind: EntryKind
    setup: Callable[[HomeAssistant, HashGridConfigEntry], Awaitable[KindRuntime]]
    platforms: Mapping[Platform, PlatformSetup] = field(default_factory=dict)
    subentry_flows: Mapping[str, type[ConfigSubentryFlow]] = field(default_factory=dict)
    options_flow: type[OptionsFlow] | None = None
    #: The main flow's `reconfigure` step for an entry of this kind.
    reconfigure: ReconfigureStep
    #: The main flow's `reauth` step, for a kind whose credentials can expire.
    reauth: ReauthStep | None = None
