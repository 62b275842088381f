"""Config flow steps of the grid signal part: VTN, VEN name, certificates; options."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from ..const import CONF_KIND, LOGGER, EntryKind
from .certs import (
    CredentialsError,
    FileTooLarge,
    InvalidCaFile,
    InvalidCertificate,
    InvalidKey,
    KeyMismatch,
    UnsupportedKey,
)
from .const import (
    CONF_CA_FILE,
    CONF_CLIENT_CERT,
    CONF_CLIENT_KEY,
    CONF_TELEMETRY_SENSOR,
    CONF_VEN_NAME,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_URL,
    REGISTER_TIMEOUT_S,
)
from .coordinator import ven_config
from .ven import (
    CannotConnect,
    CertificateMismatch,
    Rejected,
    Unauthorized,
    Ven,
    VenError,
)

_OPTIONAL = (CONF_CLIENT_CERT, CONF_CLIENT_KEY, CONF_CA_FILE, CONF_VTN_FINGERPRINT)
_FILES = (CONF_CLIENT_CERT, CONF_CLIENT_KEY, CONF_CA_FILE)

_CREDENTIALS_ERRORS: dict[type[CredentialsError], str] = {
    FileTooLarge: "certificate_file_too_large",
    InvalidCertificate: "invalid_client_certificate",
    InvalidKey: "invalid_client_key",
    KeyMismatch: "key_mismatch",
    UnsupportedKey: "unsupported_key",
    InvalidCaFile: "invalid_ca_file",
}

VTN_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_VTN_URL): TextSelector(
            TextSelectorConfig(type=TextSelectorType.URL)
        ),
        probatio.Required(CONF_VEN_NAME): str,
        probatio.Optional(CONF_CLIENT_CERT): str,
        probatio.Optional(CONF_CLIENT_KEY): str,
        probatio.Optional(CONF_CA_FILE): str,
        probatio.Optional(CONF_VTN_FINGERPRINT): str,
    }
)

REAUTH_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_CLIENT_CERT): str,
        probatio.Required(CONF_CLIENT_KEY): str,
        probatio.Optional(CONF_CA_FILE): str,
    }
)

OPTIONS_SCHEMA = probatio.Schema(
    {
        probatio.Optional(CONF_TELEMETRY_SENSOR): EntitySelector(
            EntitySelectorConfig(domain="sensor", device_class="power")
        ),
    }
)


def _clean(user_input: dict[str, Any]) -> dict[str, Any]:
    data = {
        CONF_VTN_URL: str(user_input[CONF_VTN_URL]).strip().rstrip("/"),
        CONF_VEN_NAME: str(user_input[CONF_VEN_NAME]).strip(),
    }
    for key in _OPTIONAL:
        if value := str(user_input.get(key) or "").strip():
            data[key] = value
    return data


def _check_form(data: dict[str, Any]) -> dict[str, str]:
    """Return the form's errors that need no file and no VTN."""
    errors: dict[str, str] = {}
    try:
        url = urlsplit(data[CONF_VTN_URL])
        valid_url = (
            url.scheme in ("http", "https")
            and bool(url.hostname)
            and not any(char.isspace() for char in data[CONF_VTN_URL])
            and url.port != 0  # .port raises ValueError when out of range
        )
    except ValueError:
        valid_url = False
    if not valid_url:
        errors[CONF_VTN_URL] = "invalid_url"
    if not data[CONF_VEN_NAME]:
        errors[CONF_VEN_NAME] = "empty_name"
    return errors


def grid_signal_unique_id(data: dict[str, Any]) -> str:
    """The entry's unique id: the VTN URL (lower-cased host) and the VEN name."""
    url = urlsplit(data[CONF_VTN_URL])
    normalized = url._replace(netloc=url.netloc.lower()).geturl()
    return f"{normalized}#{data[CONF_VEN_NAME]}"


async def _validate(flow: ConfigFlow, data: dict[str, Any]) -> str | None:
    """Register with the VTN once; return a form error key, or None."""
    config = ven_config(data)
    if bool(config.client_cert) != bool(config.client_key):
        return "certificate_incomplete"

    def _build() -> Ven:
        return Ven(
            config, on_event=lambda _e, _u: "optOut", on_malformed=lambda *_: None
        )

    try:
        ven = await flow.hass.async_add_executor_job(_build)
    except CredentialsError as err:
        LOGGER.debug("Certificate files refused: %s", err)
        return _CREDENTIALS_ERRORS.get(type(err), "unreadable_certificate")
    except OSError, ValueError:
        return "unreadable_certificate"
    try:
        async with asyncio.timeout(REGISTER_TIMEOUT_S):
            await ven.register()
    except Unauthorized:
        return "unauthorized"
    except CannotConnect, TimeoutError:
        return "cannot_connect"
    except Rejected:
        return "rejected"
    except CertificateMismatch:
        return "certificate_mismatch"
    except VenError:
        return "cannot_connect"
    except Exception:
        LOGGER.exception("Unexpected error registering with the VTN")
        return "unknown"
    finally:
        await ven.close()
    return None


class GridSignalFlowMixin(ConfigFlow):
    """The `grid_signal` steps of the main config flow."""

    async def async_step_grid_signal(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the VTN and the VEN's name; register to check them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _clean(user_input)
            if not (errors := _check_form(data)):
                await self.async_set_unique_id(grid_signal_unique_id(data))
                self._abort_if_unique_id_configured()
                if (error := await _validate(self, data)) is None:
                    return self.async_create_entry(
                        title=f"Demand response {data[CONF_VEN_NAME]}",
                        data={CONF_KIND: EntryKind.GRID_SIGNAL, **data},
                    )
                errors["base"] = error
        return self.async_show_form(
            step_id="grid_signal",
            data_schema=self.add_suggested_values_to_schema(VTN_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_reconfigure_grid_signal(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the VTN, the VEN name or the certificates; register again."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _clean(user_input)
            if not (errors := _check_form(data)):
                unique_id = grid_signal_unique_id(data)
                if unique_id != entry.unique_id:
                    await self.async_set_unique_id(unique_id)
                    self._abort_if_unique_id_configured()
                if (error := await _validate(self, data)) is None:
                    return self.async_update_reload_and_abort(
                        entry,
                        unique_id=unique_id,
                        data={CONF_KIND: EntryKind.GRID_SIGNAL, **data},
                    )
                errors["base"] = error
        return self.async_show_form(
            step_id="reconfigure_grid_signal",
            data_schema=self.add_suggested_values_to_schema(
                VTN_SCHEMA, user_input or dict(entry.data)
            ),
            errors=errors,
        )

    async def async_step_reauth_grid_signal(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The VTN refused the VEN's certificate: ask for new files."""
        return await self.async_step_reauth_confirm_grid_signal()

    async def async_step_reauth_confirm_grid_signal(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """New certificate, key and CA files: checked, then a registration."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {k: v for k, v in entry.data.items() if k not in _FILES}
            for key in _FILES:
                if value := str(user_input.get(key) or "").strip():
                    data[key] = value
            if (error := await _validate(self, data)) is None:
                return self.async_update_reload_and_abort(
                    entry, data=data, reason="reauth_certificate_successful"
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm_grid_signal",
            data_schema=self.add_suggested_values_to_schema(
                REAUTH_SCHEMA, user_input or dict(entry.data)
            ),
            description_placeholders={
                "vtn_url": entry.data[CONF_VTN_URL],
                "ven_name": entry.data[CONF_VEN_NAME],
            },
            errors=errors,
        )


class GridSignalOptionsFlow(OptionsFlow):
    """The sensor whose power is reported to the VTN as telemetry."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Options of a grid signal entry (their own step id among the kinds)."""
        return await self.async_step_grid_signal(user_input)

    async def async_step_grid_signal(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick the telemetry sensor (none: no telemetry)."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="grid_signal",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, dict(self.config_entry.options)
            ),
        )
