"""Config flow steps of the mining part: the site entry and its miner subentries."""

from __future__ import annotations

from collections.abc import Iterable
import ipaddress
from typing import Any

from homeassistant.config_entries import (
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PASSWORD, CONF_USERNAME
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util import slugify
import probatio

from ..const import CONF_KIND, DOMAIN, LOGGER, EntryKind
from .client import MinerInfo, identify
from .const import (
    CONF_MAX_POWER,
    CONF_MIN_POWER,
    CONF_PRIORITY,
    CONF_ROOM_TEMPERATURE,
    CONF_SUBNET,
    SUBENTRY_MINER,
)
from .errors import (
    AuthRequired,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    MinerError,
    NotAMiner,
    UnsupportedMiner,
)
from .heater import CONF_HYSTERESIS, CONF_MIN_CYCLE
from .scan import MAX_SCAN_HOSTS, SCAN_TIMEOUT_S, scan_subnet

_ERRORS: dict[type[MinerError], str] = {
    CannotConnect: "cannot_connect",
    NotAMiner: "not_a_miner",
    UnsupportedMiner: "unsupported_miner",
    InvalidAuth: "invalid_auth",
    AuthRequired: "auth_required",
    InvalidResponse: "invalid_response",
}

_POWER = NumberSelector(
    NumberSelectorConfig(
        min=0, max=20000, step=1, unit_of_measurement="W", mode=NumberSelectorMode.BOX
    )
)
_PRIORITY = NumberSelector(
    NumberSelectorConfig(min=0, max=100, step=1, mode=NumberSelectorMode.BOX)
)
# The room the miner heats (its heater's current temperature).
_ROOM_TEMPERATURE = EntitySelector(
    EntitySelectorConfig(domain="sensor", device_class="temperature")
)
# The heater's hysteresis (°C) and minimum on/off time (minutes).
_HYSTERESIS = NumberSelector(
    NumberSelectorConfig(
        min=0.1, max=5, step=0.1, unit_of_measurement="°C", mode=NumberSelectorMode.BOX
    )
)
_MIN_CYCLE = NumberSelector(
    NumberSelectorConfig(
        min=0, max=120, step=1, unit_of_measurement="min", mode=NumberSelectorMode.BOX
    )
)
_HEATER_OPTIONS = (CONF_ROOM_TEMPERATURE, CONF_HYSTERESIS, CONF_MIN_CYCLE)


def _site_schema(defaults: dict[str, Any]) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(
                CONF_NAME, default=defaults.get(CONF_NAME, "Mining site")
            ): str,
            probatio.Optional(
                CONF_SUBNET,
                description={"suggested_value": defaults.get(CONF_SUBNET)},
            ): str,
        }
    )


def _valid_subnet(value: str | None) -> bool:
    if not value:
        return True
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return network.num_addresses <= MAX_SCAN_HOSTS


def site_title(name: str) -> str:
    """A site entry's title says what it is: "Garage" → "Garage mining site"."""
    name = " ".join(name.split())
    if name.casefold().endswith(("site", "mining")):
        return name[0].upper() + name[1:]
    return f"{name} mining site"


def miner_title(info: MinerInfo, taken: Iterable[str] = ()) -> str:
    """A miner's name as a person would say it: make, model, a serial suffix.

    Never its address (DHCP moves it, nobody says it): "Antminer S19j Pro
    8F3A" from the serial's last four characters, else the MAC's; longer
    when another miner of the site already has that name.
    """
    model = " ".join(info.model.split())
    make = " ".join(info.make.split())
    base = model if model.casefold().startswith(make.casefold()) else f"{make} {model}"
    tail = "".join(ch for ch in (info.serial or "") if ch.isalnum())
    if not tail and info.mac:
        tail = "".join(ch for ch in info.mac if ch.isalnum())
    if not tail:
        return base
    names = {name.casefold() for name in taken}
    for length in (4, 8, len(tail)):
        title = f"{base} {tail[-length:].upper()}"
        if title.casefold() not in names:
            break
    return title


def _valid_host(host: str) -> bool:
    """An IP address or a host name: no scheme, path, port or spaces."""
    if not host or any(char.isspace() or char in "/@" for char in host):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ":" not in host
    return True


class MiningSiteFlowMixin(ConfigFlow):
    """The `mining_site` steps of the main config flow."""

    async def async_step_mining_site(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Name the site and, optionally, the subnet its miners live on."""
        errors: dict[str, str] = {}
        if user_input is not None:
            name = str(user_input[CONF_NAME]).strip()
            if not name:
                errors[CONF_NAME] = "empty_name"
            if not _valid_subnet(user_input.get(CONF_SUBNET)):
                errors[CONF_SUBNET] = "invalid_subnet"
            if not errors:
                await self.async_set_unique_id(
                    f"{EntryKind.MINING_SITE}_{slugify(name)}"
                )
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=site_title(name),
                    data={
                        CONF_KIND: EntryKind.MINING_SITE,
                        **user_input,
                        CONF_NAME: name,
                    },
                )
        return self.async_show_form(
            step_id="mining_site",
            data_schema=_site_schema(user_input or {}),
            errors=errors,
        )

    async def async_step_reconfigure_mining_site(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the site's subnet (its name is its identity)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            if _valid_subnet(user_input.get(CONF_SUBNET)):
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_SUBNET: user_input.get(CONF_SUBNET)}
                )
            errors[CONF_SUBNET] = "invalid_subnet"
        return self.async_show_form(
            step_id="reconfigure_mining_site",
            data_schema=probatio.Schema(
                {
                    probatio.Optional(
                        CONF_SUBNET,
                        description={"suggested_value": entry.data.get(CONF_SUBNET)},
                    ): str
                }
            ),
            errors=errors,
        )


def _limits_schema(info: MinerInfo | None, defaults: dict[str, Any]) -> dict[Any, Any]:
    """The per-miner options: curtailment priority and power limits."""
    min_default = defaults.get(CONF_MIN_POWER, info.min_power_w if info else None)
    max_default = defaults.get(CONF_MAX_POWER, info.max_power_w if info else None)
    return {
        probatio.Required(
            CONF_PRIORITY, default=defaults.get(CONF_PRIORITY, 50)
        ): _PRIORITY,
        probatio.Optional(
            CONF_MIN_POWER, description={"suggested_value": min_default}
        ): _POWER,
        probatio.Optional(
            CONF_MAX_POWER, description={"suggested_value": max_default}
        ): _POWER,
    }


class MinerSubentryFlow(ConfigSubentryFlow):
    """Add a miner to a site (by host or from a scan) and change its options."""

    # The whole subnet scan ends within this time (tests shorten it).
    scan_timeout_s: float = SCAN_TIMEOUT_S

    def __init__(self) -> None:
        """Start with nothing known."""
        self._host: str | None = None
        self._info: MinerInfo | None = None
        self._username: str | None = None
        self._password: str | None = None
        # Whatsminer: its API password only (no user name to ask for).
        self._password_only = False

    def _known_unique_ids(self) -> set[str]:
        return {
            subentry.unique_id
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            for subentry in entry.subentries.values()
            if subentry.subentry_type == SUBENTRY_MINER and subentry.unique_id
        }

    async def _identify(self, host: str) -> str | None:
        """Identify the miner at host; return an error key or None."""
        try:
            self._info = await identify(
                host, username=self._username, password=self._password
            )
        except MinerError as err:
            if isinstance(err, AuthRequired):
                self._password_only = err.password_only
            return _ERRORS.get(type(err), "unknown")
        except Exception:
            LOGGER.exception("Unexpected error identifying the miner at %s", host)
            return "unknown"
        self._host = host
        if self._info.unique_id in self._known_unique_ids():
            return "already_configured"
        return None

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add by host, or pick from a scan when the site has a subnet."""
        if self._get_entry().data.get(CONF_SUBNET):
            return self.async_show_menu(step_id="user", menu_options=["host", "scan"])
        return await self.async_step_host()

    async def async_step_host(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the miner's address and its curtailment options."""
        errors: dict[str, str] = {}
        if user_input is not None:
            host = user_input[CONF_HOST].strip()
            error = await self._identify(host) if _valid_host(host) else "invalid_host"
            if error == "auth_required":
                self._host = host
                return await self.async_step_credentials()
            if error == "already_configured":
                return self.async_abort(reason="already_configured")
            if error is None:
                return await self.async_step_limits()
            errors["base"] = error
        return self.async_show_form(
            step_id="host",
            data_schema=probatio.Schema({probatio.Required(CONF_HOST): str}),
            errors=errors,
        )

    async def async_step_scan(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Scan the site's subnet and offer the miners not yet added."""
        errors: dict[str, str] = {}
        if user_input is not None:
            error = await self._identify(user_input[CONF_HOST])
            if error is None:
                return await self.async_step_limits()
            if error == "auth_required":
                self._host = user_input[CONF_HOST]
                return await self.async_step_credentials()
            errors["base"] = error
        subnet = self._get_entry().data[CONF_SUBNET]
        try:
            found = await scan_subnet(subnet, timeout_s=self.scan_timeout_s)
        except TimeoutError:
            return self.async_abort(
                reason="scan_timeout",
                description_placeholders={"seconds": f"{self.scan_timeout_s:g}"},
            )
        except Exception as err:  # a stored subnet that is not one, the network
            LOGGER.warning(
                "Scanning %s failed: %s: %s", subnet, type(err).__name__, err
            )
            return self.async_abort(reason="scan_failed")
        known = self._known_unique_ids()
        options = [
            SelectOptionDict(
                value=info.host, label=f"{miner_title(info)} ({info.host})"
            )
            for info in found
            if info.unique_id not in known
        ]
        if not options:
            return self.async_abort(reason="no_miners_found")
        return self.async_show_form(
            step_id="scan",
            data_schema=probatio.Schema(
                {
                    probatio.Required(CONF_HOST): SelectSelector(
                        SelectSelectorConfig(options=options)
                    )
                }
            ),
            errors=errors,
        )

    async def async_step_credentials(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the firmware's credentials."""
        assert self._host is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            self._username = user_input.get(CONF_USERNAME)
            self._password = user_input[CONF_PASSWORD]
            error = await self._identify(self._host)
            if error == "already_configured":
                return self.async_abort(reason="already_configured")
            if error is None:
                return await self.async_step_limits()
            errors["base"] = "invalid_auth" if error == "auth_required" else error
        return self.async_show_form(
            step_id="credentials",
            data_schema=probatio.Schema(
                {
                    **(
                        {}
                        if self._password_only
                        else {probatio.Required(CONF_USERNAME, default="root"): str}
                    ),
                    probatio.Required(CONF_PASSWORD): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    ),
                }
            ),
            description_placeholders={"host": self._host},
            errors=errors,
        )

    async def async_step_limits(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Set the miner's priority and power limits, then add it."""
        info = self._info
        assert info is not None
        assert self._host is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            if (error := _check_limits(user_input)) is None:
                return self.async_create_entry(
                    title=miner_title(
                        info,
                        (sub.title for sub in self._get_entry().subentries.values()),
                    ),
                    unique_id=info.unique_id,
                    data={
                        CONF_HOST: self._host,
                        **(
                            {
                                CONF_USERNAME: self._username,
                                CONF_PASSWORD: self._password,
                            }
                            if self._password is not None
                            else {}
                        ),
                        **user_input,
                    },
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="limits",
            data_schema=probatio.Schema(_limits_schema(info, user_input or {})),
            description_placeholders={"model": info.model, "host": self._host},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a miner's priority, power limits and the room it heats."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            if (error := _check_limits(user_input)) is None:
                data = {
                    k: v
                    for k, v in subentry.data.items()
                    if k not in (CONF_MIN_POWER, CONF_MAX_POWER, *_HEATER_OPTIONS)
                }
                return self.async_update_and_abort(
                    self._get_entry(), subentry, data={**data, **user_input}
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=probatio.Schema(
                {
                    **_limits_schema(
                        None, defaults := user_input or dict(subentry.data)
                    ),
                    probatio.Optional(
                        CONF_ROOM_TEMPERATURE,
                        description={
                            "suggested_value": defaults.get(CONF_ROOM_TEMPERATURE)
                        },
                    ): _ROOM_TEMPERATURE,
                    probatio.Optional(
                        CONF_HYSTERESIS,
                        description={"suggested_value": defaults.get(CONF_HYSTERESIS)},
                    ): _HYSTERESIS,
                    probatio.Optional(
                        CONF_MIN_CYCLE,
                        description={"suggested_value": defaults.get(CONF_MIN_CYCLE)},
                    ): _MIN_CYCLE,
                }
            ),
            errors=errors,
        )


def _check_limits(user_input: dict[str, Any]) -> str | None:
    low, high = user_input.get(CONF_MIN_POWER), user_input.get(CONF_MAX_POWER)
    if low is not None and high is not None and low > high:
        return "min_above_max"
    return None
