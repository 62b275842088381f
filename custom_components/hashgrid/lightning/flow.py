"""Config flow steps of the Lightning part: the node entry and its neighbours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_NAME, CONF_URL
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from ..const import CONF_KIND, EntryKind
from .client import NodeClient, normalize_fingerprint
from .const import (
    CONF_CAP_PER_DAY,
    CONF_CAP_PER_PAYMENT,
    CONF_DIRECTION,
    CONF_FINGERPRINT,
    CONF_MAX_FEE,
    CONF_METER_ENTITY,
    CONF_MIN_SETTLEMENT,
    CONF_NODE_ID,
    CONF_OFFER,
    CONF_PAY_METHOD,
    CONF_PRICE,
    CONF_PRICE_ENTITY,
    CONF_PRICE_MODE,
    CONF_RUNE,
    CONF_SOCKET_PATH,
    CONF_TRANSPORT,
    Direction,
    PayMethod,
    PriceMode,
    Transport,
)
from .coordinator import make_client
from .errors import (
    CannotConnect,
    CertificateMismatch,
    LightningError,
    RpcError,
    RuneRejected,
)

_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


def _sats(low: int = 0) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=low, max=2_100_000_000_000_000, step=1, mode=NumberSelectorMode.BOX
        )
    )


SOCKET_SCHEMA = probatio.Schema({probatio.Required(CONF_SOCKET_PATH): str})
REST_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_URL): _URL,
        probatio.Required(CONF_RUNE): _PASSWORD,
        probatio.Optional(CONF_FINGERPRINT): str,
    }
)
RUNE_SCHEMA = probatio.Schema({probatio.Required(CONF_RUNE): _PASSWORD})


def _entry_data(transport: Transport, user_input: Mapping[str, Any]) -> dict[str, Any]:
    if transport is Transport.SOCKET:
        return {
            CONF_TRANSPORT: transport.value,
            CONF_SOCKET_PATH: str(user_input[CONF_SOCKET_PATH]).strip(),
        }
    data: dict[str, Any] = {
        CONF_TRANSPORT: transport.value,
        CONF_URL: str(user_input[CONF_URL]).strip().rstrip("/"),
        CONF_RUNE: str(user_input[CONF_RUNE]).strip(),
    }
    if fingerprint := user_input.get(CONF_FINGERPRINT):
        data[CONF_FINGERPRINT] = normalize_fingerprint(fingerprint)
    return data


def _is_web_url(url: str) -> bool:
    """An http(s) URL with a host (CLNRest's), not ``file://`` or garbage."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad port raises
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


class LightningFlowMixin(ConfigFlow):
    """The `lightning_node` steps of the main config flow."""

    async def _lightning_getinfo(
        self, data: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, str]:
        """Ask the node who it is; return (getinfo, "") or (None, form error)."""
        try:
            info = await make_client(self.hass, data).getinfo()
        except RuneRejected:
            return None, "invalid_auth"
        except CertificateMismatch:
            return None, "invalid_certificate"
        except CannotConnect:
            return None, "cannot_connect"
        except LightningError:
            return None, "unknown"
        return info, ""

    async def _lightning_validate(
        self, transport: Transport, user_input: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, str]]:
        """(entry data, getinfo or None, form errors)."""
        try:
            data = _entry_data(transport, user_input)
        except ValueError:
            return {}, None, {CONF_FINGERPRINT: "invalid_fingerprint"}
        if transport is Transport.REST and not _is_web_url(data[CONF_URL]):
            return {}, None, {CONF_URL: "invalid_url"}
        if transport is Transport.SOCKET and not data[CONF_SOCKET_PATH]:
            return {}, None, {CONF_SOCKET_PATH: "invalid_socket_path"}
        info, error = await self._lightning_getinfo(data)
        return data, info, {} if info is not None else {"base": error}

    async def async_step_lightning_node(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """How to reach the node: its local socket, or CLNRest."""
        return self.async_show_menu(
            step_id="lightning_node",
            menu_options=["lightning_socket", "lightning_rest"],
        )

    async def _lightning_create(
        self,
        transport: Transport,
        user_input: dict[str, Any] | None,
        schema: probatio.Schema,
    ) -> ConfigFlowResult:
        step_id = f"lightning_{transport.value}"
        errors: dict[str, str] = {}
        if user_input is not None:
            data, info, errors = await self._lightning_validate(transport, user_input)
            if info is not None:
                await self.async_set_unique_id(info["id"])
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"Lightning node {info.get('alias') or info['id'][:12]}",
                    data={CONF_KIND: EntryKind.LIGHTNING_NODE, **data},
                )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_lightning_socket(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The path of lightningd's `lightning-rpc` socket."""
        return await self._lightning_create(Transport.SOCKET, user_input, SOCKET_SCHEMA)

    async def async_step_lightning_rest(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """CLNRest's URL, a rune, and (for a self-signed certificate) its fingerprint."""
        return await self._lightning_create(Transport.REST, user_input, REST_SCHEMA)

    async def async_step_reauth_lightning(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The node refused the rune: ask for a new one."""
        return await self.async_step_reauth_confirm_lightning()

    async def async_step_reauth_confirm_lightning(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new rune, checked with getinfo on the same node."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**entry.data, CONF_RUNE: str(user_input[CONF_RUNE]).strip()}
            info, error = await self._lightning_getinfo(data)
            if info is None:
                errors["base"] = error
            else:
                await self.async_set_unique_id(info["id"])
                self._abort_if_unique_id_mismatch(reason="wrong_node")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_RUNE: data[CONF_RUNE]}
                )
        return self.async_show_form(
            step_id="reauth_confirm_lightning",
            data_schema=RUNE_SCHEMA,
            description_placeholders={"url": str(entry.data.get(CONF_URL, ""))},
            errors=errors,
        )

    async def async_step_reconfigure_lightning_node(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change how the node is reached; it must still be the same node."""
        entry = self._get_reconfigure_entry()
        transport = Transport(entry.data[CONF_TRANSPORT])
        schema = SOCKET_SCHEMA if transport is Transport.SOCKET else REST_SCHEMA
        errors: dict[str, str] = {}
        if user_input is not None:
            data, info, errors = await self._lightning_validate(transport, user_input)
            if info is not None:
                await self.async_set_unique_id(info["id"])
                self._abort_if_unique_id_mismatch(reason="wrong_node")
                return self.async_update_reload_and_abort(
                    entry, data={CONF_KIND: entry.data[CONF_KIND], **data}
                )
        suggested = user_input or {
            k: v for k, v in entry.data.items() if k != CONF_RUNE
        }
        return self.async_show_form(
            step_id="reconfigure_lightning_node",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )


# ---- neighbours --------------------------------------------------------------------


def _neighbour_schema() -> probatio.Schema:
    sensor = EntitySelector(EntitySelectorConfig(domain="sensor"))
    return probatio.Schema(
        {
            probatio.Required(CONF_NAME): str,
            probatio.Required(CONF_DIRECTION, default=Direction.WE_PAY.value): (
                SelectSelector(
                    SelectSelectorConfig(
                        options=[d.value for d in Direction],
                        translation_key="neighbour_direction",
                        mode=SelectSelectorMode.LIST,
                    )
                )
            ),
            probatio.Optional(CONF_OFFER): str,
            probatio.Optional(CONF_NODE_ID): str,
            probatio.Required(CONF_METER_ENTITY): sensor,
            probatio.Optional(CONF_PRICE): NumberSelector(
                NumberSelectorConfig(
                    min=0,
                    max=10_000_000,
                    step="any",
                    unit_of_measurement="sat/kWh",
                    mode=NumberSelectorMode.BOX,
                )
            ),
            probatio.Optional(CONF_PRICE_ENTITY): sensor,
            probatio.Optional(CONF_CAP_PER_PAYMENT): _sats(1),
            probatio.Optional(CONF_CAP_PER_DAY): _sats(1),
            probatio.Optional(CONF_MIN_SETTLEMENT, default=1): _sats(1),
            probatio.Optional(CONF_MAX_FEE): _sats(0),
        }
    )


def _is_node_id(value: str) -> bool:
    return (
        len(value) == 66
        and value[:2] in ("02", "03")
        and all(c in "0123456789abcdef" for c in value)
    )


class NeighbourSubentryFlow(ConfigSubentryFlow):
    """Add a neighbour to a node (how to pay them, the price, the meter, caps)."""

    def _client(self) -> NodeClient | None:
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        return make_client(self.hass, entry.data)

    async def _validate(
        self, user_input: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None, dict[str, str]]:
        """(subentry data, unique id, form errors)."""
        data: dict[str, Any] = {k: v for k, v in user_input.items() if v not in ("",)}
        for key in (CONF_CAP_PER_PAYMENT, CONF_CAP_PER_DAY, CONF_MIN_SETTLEMENT):
            if data.get(key) is not None:
                data[key] = int(data[key])
        if data.get(CONF_MAX_FEE) is not None:
            data[CONF_MAX_FEE] = int(data[CONF_MAX_FEE])
        errors: dict[str, str] = {}
        if not str(data.get(CONF_NAME, "")).strip():
            errors[CONF_NAME] = "empty_name"
        else:
            data[CONF_NAME] = str(data[CONF_NAME]).strip()
        direction = Direction(data[CONF_DIRECTION])
        if data.get(CONF_PRICE) is None and not data.get(CONF_PRICE_ENTITY):
            errors[CONF_PRICE] = "price_required"
        data[CONF_PRICE_MODE] = (
            PriceMode.SENSOR if data.get(CONF_PRICE_ENTITY) else PriceMode.FIXED
        ).value
        unique: str | None = None
        if direction is Direction.WE_PAY:
            offer = str(data.get(CONF_OFFER, "")).strip()
            node_id = str(data.get(CONF_NODE_ID, "")).strip().lower()
            if offer:
                data[CONF_OFFER], data[CONF_PAY_METHOD] = offer, PayMethod.OFFER.value
                data.pop(CONF_NODE_ID, None)
                issuer, error = await self._check_offer(offer)
                if error:
                    errors[CONF_OFFER] = error
                unique = f"{direction.value}:{issuer or offer}"
            elif node_id:
                if not _is_node_id(node_id):
                    errors[CONF_NODE_ID] = "invalid_node_id"
                data[CONF_NODE_ID], data[CONF_PAY_METHOD] = (
                    node_id,
                    PayMethod.KEYSEND.value,
                )
                unique = f"{direction.value}:{node_id}"
            else:
                errors["base"] = "offer_or_node_id"
        else:
            data.pop(CONF_OFFER, None)
            data.pop(CONF_NODE_ID, None)
            unique = f"{direction.value}:{data[CONF_METER_ENTITY]}"
        return data, unique, errors

    async def _check_offer(self, offer: str) -> tuple[str | None, str | None]:
        """(issuer id, error): the node decodes the offer when it is loaded."""
        if (client := self._client()) is None:
            ok = offer.lower().startswith("lno1")
            return None, None if ok else "invalid_offer"
        try:
            decoded = await client.decode(offer)
        except RpcError:
            return None, "invalid_offer"
        except LightningError:
            return None, "cannot_connect"
        if decoded.get("type") != "bolt12 offer" or not decoded.get("valid", True):
            return None, "invalid_offer"
        return decoded.get("offer_issuer_id"), None

    def _known(self, exclude: str | None = None) -> set[str]:
        return {
            sub.unique_id
            for sub in self._get_entry().subentries.values()
            if sub.unique_id and sub.subentry_id != exclude
        }

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Everything about one neighbour, on one form."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, unique, errors = await self._validate(user_input)
            if not errors:
                if unique in self._known():
                    return self.async_abort(reason="already_configured")
                return self.async_create_entry(
                    title=data[CONF_NAME], data=data, unique_id=unique
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _neighbour_schema(), user_input
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a neighbour's terms."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, unique, errors = await self._validate(user_input)
            if not errors:
                if unique in self._known(exclude=subentry.subentry_id):
                    return self.async_abort(reason="already_configured")
                return self.async_update_and_abort(
                    self._get_entry(),
                    subentry,
                    title=data[CONF_NAME],
                    data=data,
                    unique_id=unique,
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _neighbour_schema(), user_input or dict(subentry.data)
            ),
            errors=errors,
        )
