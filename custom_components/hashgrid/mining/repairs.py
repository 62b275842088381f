"""Fix a miner whose credentials stopped working: ask, check, store."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_USERNAME
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from .client import identify
from .errors import AuthRequired, InvalidAuth, MinerError


class MinerCredentialsRepairFlow(RepairsFlow):
    """Ask a miner's new credentials; check them with the miner before storing."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which miner (entry and subentry) this is about."""
        self._entry_id: str = data["entry_id"]
        self._subentry_id: str = data["subentry_id"]
        # Whatsminer takes its API password only: no user name is asked.
        self._password_only: bool | None = None

    async def _probe(self, host: str, data: dict[str, Any]) -> bool:
        """Return True when the miner wants a password only (its refusal says)."""
        try:
            await identify(
                host,
                username=data.get(CONF_USERNAME),
                password=data.get(CONF_PASSWORD),
            )
        except (AuthRequired, InvalidAuth) as err:
            return err.password_only
        except MinerError:
            pass
        return False

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Ask for the credentials, then reload the site with them."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._subentry_id not in entry.subentries:
            return self.async_abort(reason="miner_removed")
        subentry = entry.subentries[self._subentry_id]
        host = subentry.data[CONF_HOST]
        if self._password_only is None:
            self._password_only = await self._probe(host, dict(subentry.data))
        errors: dict[str, str] = {}
        # The repairs manager opens the flow with the id as input.
        if user_input is not None and CONF_PASSWORD in user_input:
            try:
                await identify(
                    host,
                    username=user_input.get(CONF_USERNAME),
                    password=user_input[CONF_PASSWORD],
                )
            except AuthRequired, InvalidAuth:
                errors["base"] = "invalid_auth"
            except MinerError:
                errors["base"] = "cannot_connect"
            else:
                self.hass.config_entries.async_update_subentry(
                    entry, subentry, data={**subentry.data, **user_input}
                )
                return self.async_create_entry(data={})
        username = (
            {}
            if self._password_only
            else {
                probatio.Required(
                    CONF_USERNAME,
                    default=subentry.data.get(CONF_USERNAME) or "root",
                ): str
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=probatio.Schema(
                {
                    **username,
                    probatio.Required(CONF_PASSWORD): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    ),
                }
            ),
            description_placeholders={"miner": subentry.title, "host": host},
            errors=errors,
        )
