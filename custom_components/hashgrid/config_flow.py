"""Config flow for HashGrid: a menu of entry kinds, then each kind's own steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import UnknownHandler, UnknownStep

from .const import DOMAIN, EntryKind
from .grid_signal.flow import GridSignalFlowMixin
from .kinds import KINDS, handler_for
from .lightning.flow import LightningFlowMixin
from .microgrid.flow import MicrogridFlowMixin
from .mining.flow import MiningSiteFlowMixin


class HashGridConfigFlow(
    MiningSiteFlowMixin,
    MicrogridFlowMixin,
    LightningFlowMixin,
    GridSignalFlowMixin,
    ConfigFlow,
    domain=DOMAIN,
):
    """Start with a menu: which kind of entry to make."""

    VERSION = 1
    MINOR_VERSION = 1

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the menu of the kinds that exist."""
        return self.async_show_menu(
            step_id="user",
            menu_options=[kind.value for kind in EntryKind if kind in KINDS],
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Reconfigure: each kind has its own step."""
        handler = handler_for(self._get_reconfigure_entry())
        return await handler.reconfigure(self, user_input)

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Reauthenticate: each kind has its own step."""
        handler = handler_for(self._get_reauth_entry())
        if handler.reauth is None:
            raise UnknownStep(f"A {handler.kind} entry has no reauthentication")
        return await handler.reauth(self, entry_data)

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the subentry flows of the entry's kind (miners, neighbours)."""
        return dict(handler_for(config_entry).subentry_flows)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Return the options flow of the entry's kind."""
        if (options_flow := handler_for(config_entry).options_flow) is None:
            raise UnknownHandler
        return options_flow()

    @classmethod
    @callback
    def async_supports_options_flow(cls, config_entry: ConfigEntry) -> bool:
        """Offer options only for kinds that have them."""
        return handler_for(config_entry).options_flow is not None
