"""Config flow steps of the microgrid part: detect, confirm, reconfigure, options."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import probatio

from ..const import CONF_KIND, EntryKind
from . import const
from .const import (
    CONF_DEVICE,
    CONF_POLICY,
    CONF_SHORTFALL_OFF_DELAY,
    CONF_SHORTFALL_ON_DELAY,
    CONF_SHORTFALL_THRESHOLD,
    CONF_TARGET_SOC,
    CONF_UNIT_ID,
    DEFAULT_OPTIONS,
    DEFAULT_PORT,
    DEFAULT_UNIT_ID,
)
from .detect import DetectedDevice, detect, entry_title
from .errors import (
    CannotConnect,
    DeviceBusy,
    DeviceFailure,
    GatewayPathUnavailable,
    GatewayTargetFailed,
    InvalidValue,
    MalformedMap,
    MalformedReply,
    MicrogridError,
    ModbusTimeout,
)
from .surplus import BatteryPolicy

#: Form errors by error class (the most specific class of an error wins).
_ERRORS: dict[type[MicrogridError], str] = {
    CannotConnect: "cannot_connect",
    ModbusTimeout: "timeout",
    MalformedMap: "malformed_map",
    InvalidValue: "not_supported",
    MalformedReply: "malformed_reply",
    DeviceBusy: "device_busy",
    DeviceFailure: "device_failure",
    GatewayPathUnavailable: "gateway_path_unavailable",
    GatewayTargetFailed: "gateway_target_failed",
}


def _form_error(err: MicrogridError) -> str:
    return next(
        (_ERRORS[cls] for cls in type(err).__mro__ if cls in _ERRORS), "not_supported"
    )


_KIND_LABELS = {"sunspec": "SunSpec", "victron": "Victron GX"}


def _number(low: float, high: float, step: float = 1, unit: str | None = None) -> Any:
    config = NumberSelectorConfig(
        min=low, max=high, step=step, mode=NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


CONNECTION_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_HOST): str,
        probatio.Required(CONF_PORT, default=DEFAULT_PORT): _number(1, 65535),
        probatio.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(0, 255),
    }
)

OPTIONS_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_POLICY): SelectSelector(
            SelectSelectorConfig(
                options=[p.value for p in BatteryPolicy],
                translation_key="microgrid_policy",
                mode=SelectSelectorMode.LIST,
            )
        ),
        probatio.Required(CONF_TARGET_SOC): _number(0, 100, 1, "%"),
        probatio.Required(CONF_SHORTFALL_THRESHOLD): _number(-100000, 100000, 1, "W"),
        probatio.Required(CONF_SHORTFALL_ON_DELAY): _number(0, 3600, 1, "s"),
        probatio.Required(CONF_SHORTFALL_OFF_DELAY): _number(0, 3600, 1, "s"),
    }
)


def device_unique_id(device: DetectedDevice) -> str:
    """The entry's unique id: the device's serial (else its address)."""
    if device.serial:
        return device.serial
    return f"{device.host}:{device.port}/{device.unit_id}"


async def _detect(user_input: dict[str, Any]) -> tuple[DetectedDevice | None, str]:
    """Detect what answers; return it, or None and a form error key."""
    try:
        found = await detect(
            user_input[CONF_HOST].strip(),
            int(user_input[CONF_PORT]),
            int(user_input[CONF_UNIT_ID]),
            request_timeout=const.REQUEST_TIMEOUT,
        )
    except MicrogridError as err:
        return None, _form_error(err)
    return found, ""


def _entry_data(found: DetectedDevice) -> dict[str, Any]:
    return {
        CONF_HOST: found.host,
        CONF_PORT: found.port,
        CONF_UNIT_ID: found.unit_id,
        CONF_DEVICE: found.kind,
    }


def _placeholders(found: DetectedDevice) -> dict[str, str]:
    return {
        "kind": _KIND_LABELS[found.kind],
        "manufacturer": found.manufacturer or "?",
        "model": found.model or "?",
        "serial": found.serial or "?",
        "host": f"{found.host}:{found.port}",
        "unit_id": str(found.unit_id),
    }


class MicrogridFlowMixin(ConfigFlow):
    """The `microgrid` steps of the main config flow."""

    _microgrid_found: DetectedDevice | None = None

    async def async_step_microgrid(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask where the device is, then find out what it is."""
        errors: dict[str, str] = {}
        if user_input is not None:
            found, error = await _detect(user_input)
            if found is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(device_unique_id(found))
                self._abort_if_unique_id_configured()
                self._microgrid_found = found
                return await self.async_step_microgrid_confirm()
        return self.async_show_form(
            step_id="microgrid",
            data_schema=self.add_suggested_values_to_schema(
                CONNECTION_SCHEMA, user_input
            ),
            errors=errors,
        )

    async def async_step_microgrid_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say which device was found; add it when the user confirms."""
        found = self._microgrid_found
        assert found is not None
        if user_input is not None:
            return self.async_create_entry(
                title=entry_title(found),
                data={CONF_KIND: EntryKind.MICROGRID, **_entry_data(found)},
                options=dict(DEFAULT_OPTIONS),
            )
        return self.async_show_form(
            step_id="microgrid_confirm",
            description_placeholders=_placeholders(found),
        )

    async def async_step_reconfigure_microgrid(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the address; it must still be the same device."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            found, error = await _detect(user_input)
            if found is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(device_unique_id(found))
                self._abort_if_unique_id_mismatch(reason="wrong_device")
                return self.async_update_reload_and_abort(
                    entry, data_updates=_entry_data(found)
                )
        return self.async_show_form(
            step_id="reconfigure_microgrid",
            data_schema=self.add_suggested_values_to_schema(
                CONNECTION_SCHEMA, user_input or dict(entry.data)
            ),
            errors=errors,
        )


class MicrogridOptionsFlow(OptionsFlow):
    """The surplus policy and the shortfall flag's threshold and delays."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Options of a microgrid entry (their own step id among the kinds)."""
        return await self.async_step_microgrid(user_input)

    async def async_step_microgrid(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick the policy and the shortfall's threshold and delays."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="microgrid",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, {**DEFAULT_OPTIONS, **self.config_entry.options}
            ),
        )
