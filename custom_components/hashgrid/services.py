"""The actions HashGrid offers; each routes to the entry it names."""

from __future__ import annotations

from datetime import timedelta
import math
from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
import probatio

from .const import DOMAIN, EntryKind
from .entries import ATTR_CONFIG_ENTRY_ID, called_entry
from .grid_signal.runtime import grid_signal_runtime
from .lightning.actions import async_setup_lightning_services
from .mining.const import DEFAULT_STAGGER_S
from .mining.limits import MAX_LIMITS, SOURCE_MANUAL, valid_source
from .mining.runtime import MiningSiteRuntime, site_runtime

ATTR_POWER_KW = "power_kw"
ATTR_DURATION = "duration"
ATTR_STAGGER = "stagger"
ATTR_SOURCE = "source"

SERVICE_SET_LIMIT = "set_limit"
SERVICE_CLEAR_LIMIT = "clear_limit"
SERVICE_SET_POWER_BUDGET = "set_power_budget"
SERVICE_CURTAIL = "curtail"
SERVICE_RESUME = "resume"
SERVICE_OPT_OUT = "opt_out"
ATTR_EVENT_ID = "event_id"

#: The largest budget a site may be given (1 GW): far above any site.
MAX_POWER_KW = 1_000_000.0


def _finite(value: float) -> float:
    """NaN and infinities are no power (NaN passes every range check)."""
    if not math.isfinite(value):
        raise probatio.Invalid("not a finite number")
    return value


_SITE: dict[Any, Any] = {probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
_STAGGER: dict[Any, Any] = {
    probatio.Optional(ATTR_STAGGER, default=DEFAULT_STAGGER_S): probatio.All(
        probatio.Coerce(float), probatio.Range(min=0, max=600)
    )
}
SET_POWER_BUDGET_SCHEMA = probatio.Schema(
    {
        **_SITE,
        probatio.Required(ATTR_POWER_KW): probatio.All(
            probatio.Coerce(float), _finite, probatio.Range(min=0, max=MAX_POWER_KW)
        ),
        probatio.Optional(ATTR_DURATION): cv.positive_time_period,
        **_STAGGER,
    }
)
SET_LIMIT_SCHEMA = probatio.Schema(
    {
        **_SITE,
        probatio.Required(ATTR_SOURCE): cv.string,
        probatio.Required(ATTR_POWER_KW): probatio.All(
            probatio.Coerce(float), _finite, probatio.Range(min=0, max=MAX_POWER_KW)
        ),
        probatio.Optional(ATTR_DURATION): cv.positive_time_period,
        **_STAGGER,
    }
)
CLEAR_LIMIT_SCHEMA = probatio.Schema(
    {**_SITE, probatio.Required(ATTR_SOURCE): cv.string, **_STAGGER}
)
CURTAIL_SCHEMA = probatio.Schema(
    {**_SITE, probatio.Optional(ATTR_DURATION): cv.positive_time_period}
)
RESUME_SCHEMA = probatio.Schema({**_SITE, **_STAGGER})
OPT_OUT_SCHEMA = probatio.Schema({**_SITE, probatio.Required(ATTR_EVENT_ID): cv.string})


def _site(call: ServiceCall) -> MiningSiteRuntime:
    """The loaded mining site the call names."""
    return site_runtime(called_entry(call, EntryKind.MINING_SITE))


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value else None


def _source(call: ServiceCall) -> str:
    """The limit's source as given; a translated error when it is no name."""
    if (source := valid_source(call.data[ATTR_SOURCE])) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_limit_source",
            translation_placeholders={"source": str(call.data[ATTR_SOURCE])},
        )
    return source


async def _set_limit(call: ServiceCall) -> ServiceResponse:
    site = _site(call)
    source = _source(call)
    if site.coordinator.limits.get(source) is None and (
        len(site.coordinator.limits) >= MAX_LIMITS
    ):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="too_many_limits",
            translation_placeholders={"site": site.coordinator.config_entry.title},
        )
    return await site.curtailer.async_set_limit(
        source,
        call.data[ATTR_POWER_KW] * 1000,
        duration_s=_seconds(call.data.get(ATTR_DURATION)),
        stagger_s=call.data[ATTR_STAGGER],
    )


async def _clear_limit(call: ServiceCall) -> ServiceResponse:
    site = _site(call)
    return await site.curtailer.async_clear_limit(
        _source(call), stagger_s=call.data[ATTR_STAGGER]
    )


async def _set_power_budget(call: ServiceCall) -> ServiceResponse:
    site = _site(call)
    return await site.curtailer.async_set_budget(
        call.data[ATTR_POWER_KW] * 1000,
        stagger_s=call.data[ATTR_STAGGER],
        duration_s=_seconds(call.data.get(ATTR_DURATION)),
    )


async def _curtail(call: ServiceCall) -> ServiceResponse:
    site = _site(call)
    return await site.curtailer.async_set_limit(
        SOURCE_MANUAL, 0, duration_s=_seconds(call.data.get(ATTR_DURATION))
    )


async def _resume(call: ServiceCall) -> ServiceResponse:
    site = _site(call)
    return await site.curtailer.async_clear_limit(
        SOURCE_MANUAL, stagger_s=call.data[ATTR_STAGGER]
    )


async def _opt_out(call: ServiceCall) -> ServiceResponse:
    runtime = grid_signal_runtime(called_entry(call, EntryKind.GRID_SIGNAL))
    return await runtime.coordinator.async_opt_out(call.data[ATTR_EVENT_ID])


SERVICES: tuple[tuple[str, Any, probatio.Schema], ...] = (
    (SERVICE_SET_LIMIT, _set_limit, SET_LIMIT_SCHEMA),
    (SERVICE_CLEAR_LIMIT, _clear_limit, CLEAR_LIMIT_SCHEMA),
    (SERVICE_SET_POWER_BUDGET, _set_power_budget, SET_POWER_BUDGET_SCHEMA),
    (SERVICE_CURTAIL, _curtail, CURTAIL_SCHEMA),
    (SERVICE_RESUME, _resume, RESUME_SCHEMA),
    (SERVICE_OPT_OUT, _opt_out, OPT_OUT_SCHEMA),
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register HashGrid's actions."""
    for name, handler, schema in SERVICES:
        hass.services.async_register(
            DOMAIN,
            name,
            handler,
            schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )
    async_setup_lightning_services(hass)
