"""The Lightning node coordinator: polls getinfo, listfunds and listpeerchannels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from ..const import DOMAIN, LOGGER
from ..models import HashGridConfigEntry
from .client import NodeClient, RestClient, SocketClient
from .const import (
    CONF_FINGERPRINT,
    CONF_RUNE,
    CONF_SOCKET_PATH,
    CONF_TRANSPORT,
    SCAN_INTERVAL,
    Transport,
)
from .errors import LightningError, RateLimited, RuneRejected

#: Channel states in which a channel carries payments.
NORMAL = "CHANNELD_NORMAL"


def make_client(hass: HomeAssistant, data: Mapping[str, Any]) -> NodeClient:
    """The client an entry's data describes (socket in HA's executor, or REST)."""
    if data.get(CONF_TRANSPORT) == Transport.REST:
        return RestClient(
            async_get_clientsession(hass),
            data[CONF_URL],
            data[CONF_RUNE],
            data.get(CONF_FINGERPRINT),
        )

    async def runner(func: Any) -> Any:
        return await hass.async_add_executor_job(func)

    return SocketClient(data[CONF_SOCKET_PATH], runner)


@dataclass(frozen=True)
class NodeData:
    """What one poll of the node found (amounts in sats, rounded down)."""

    node_id: str
    alias: str
    network: str
    block_height: int
    version: str
    peers: int
    onchain_sat: int
    spendable_sat: int
    receivable_sat: int
    channels_active: int
    channels_total: int
    fees_collected_sat: int
    #: Paid BOLT12 invoices per offer id of ours (what they_pay neighbours sent).
    offer_received_msat: dict[str, int] = field(default_factory=dict)


def node_data(
    info: Mapping[str, Any],
    funds: Mapping[str, Any],
    peerchannels: Mapping[str, Any],
) -> NodeData:
    """Reduce the three answers to the figures the entities show."""
    outputs = funds.get("outputs", [])
    channels = peerchannels.get("channels", [])
    usable = [
        c for c in channels if c.get("state") == NORMAL and c.get("peer_connected")
    ]
    return NodeData(
        node_id=info["id"],
        alias=info.get("alias") or "",
        network=info.get("network") or "",
        block_height=int(info.get("blockheight", 0)),
        version=info.get("version") or "",
        peers=int(info.get("num_peers", 0)),
        onchain_sat=sum(
            int(o.get("amount_msat", 0))
            for o in outputs
            if o.get("status") == "confirmed" and not o.get("reserved")
        )
        // 1000,
        spendable_sat=sum(int(c.get("spendable_msat", 0)) for c in usable) // 1000,
        receivable_sat=sum(int(c.get("receivable_msat", 0)) for c in usable) // 1000,
        channels_active=len(usable),
        channels_total=len(channels),
        fees_collected_sat=int(info.get("fees_collected_msat", 0)) // 1000,
    )


class LightningCoordinator(DataUpdateCoordinator[NodeData]):
    """Polls the node every 30 s; a rejected rune asks the user for a new one."""

    config_entry: HashGridConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: HashGridConfigEntry, client: NodeClient
    ) -> None:
        """Poll through ``client``."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} lightning node {entry.title}",
            update_interval=SCAN_INTERVAL,
        )
        self.client = client
        #: Offer ids whose paid invoices are counted (they_pay neighbours).
        self.watched_offers: set[str] = set()

    async def _async_update_data(self) -> NodeData:
        try:
            info = await self.client.getinfo()
            funds = await self.client.call("listfunds")
            channels = await self.client.call("listpeerchannels")
            received: dict[str, int] = {}
            for offer_id in sorted(self.watched_offers):
                invoices = await self.client.call(
                    "listinvoices", {"offer_id": offer_id}
                )
                received[offer_id] = sum(
                    int(i.get("amount_received_msat", 0))
                    for i in invoices.get("invoices", [])
                    if i.get("status") == "paid"
                )
        except RateLimited as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="lightning_rate_limited",
                translation_placeholders={"error": err.message},
            ) from err
        except RuneRejected as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="lightning_rune_rejected",
                translation_placeholders={"error": err.message},
            ) from err
        except LightningError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="lightning_poll_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        data = node_data(info, funds, channels)
        data.offer_received_msat.update(received)
        return data
