"""Cheaper transports under pyasic's own API objects (no Home Assistant).

pyasic opens a new `httpx.AsyncClient` for every web request, so each request
pays for a new client and a new TCP connection, and Antminer's digest
authentication starts from scratch (a 401 round trip) every time. It also
rebuilds an API's command list with `dir()` on every RPC multicommand. For a
fleet of hundreds of miners these costs dominate a poll or a curtailment.

`keep_alive(miner)` swaps in, per miner:
- for the web APIs we know (Antminer stock, AxeOS/Bitaxe): the same class's
  behaviour on one kept-alive `httpx.AsyncClient`, with one `DigestAuth` whose
  challenge is reused (nonce count increments, as RFC 7616 allows; a stale or
  refused nonce is re-negotiated by httpx);
- for every RPC API: its command list computed once;
- a count of requests pyasic could not deliver (it swallows transport errors
  into empty replies), so the caller can tell "unreachable" from "refused"
  without probing the miner before every request.

`aclose(miner)` closes the kept-alive connections.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from pyasic import settings
from pyasic.errors import APIError
from pyasic.miners.base import BaseMiner
from pyasic.rpc.base import BaseMinerRPCAPI
from pyasic.web.antminer import AntminerModernWebAPI
from pyasic.web.espminer import ESPMinerWebAPI

# pyasic's default for GET requests (httpx's own default).
GET_TIMEOUT_S = 5.0
# Connections kept open between requests; a poll every 10 s outlives them,
# a curtailment (command, then read-backs) reuses them.
KEEPALIVE_EXPIRY_S = 5.0

# RPC command lists by API class (they depend on the class only).
_RPC_COMMANDS: dict[type, list[str]] = {}


class Delivery:
    """Counts requests that reached no miner (refused, reset, timed out)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.undelivered = 0


class _KeptAliveWeb:
    """One kept-alive HTTP client (and digest session) for one miner."""

    delivery: Delivery
    _client: httpx.AsyncClient | None
    _digest: tuple[str | None, str | None, httpx.DigestAuth] | None

    def _setup_keep_alive(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self._client = None
        self._digest = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(
                    verify=settings.ssl_cxt,
                    limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
                ),
                timeout=GET_TIMEOUT_S,
            )
        return self._client

    def _auth(self, username: str | None, password: str | None) -> httpx.DigestAuth:
        digest = self._digest
        if digest is None or digest[0] != username or digest[1] != password:
            auth = httpx.DigestAuth(username or "", password or "")
            self._digest = digest = (username, password, auth)
        return digest[2]

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class KeptAliveAntminerWebAPI(_KeptAliveWeb, AntminerModernWebAPI):  # type: ignore[misc]
    """pyasic's Antminer (stock, modern) web API on a kept-alive client."""

    async def send_command(
        self,
        command: str,
        ignore_errors: bool = False,
        allow_warning: bool = True,
        privileged: bool = False,
        **parameters: Any,
    ) -> dict[str, Any]:
        """Send one CGI command, as pyasic does, on the kept-alive client."""
        url = f"http://{self.ip}:{self.port}/cgi-bin/{command}.cgi"
        auth = self._auth(self.username, self.pwd)
        client = self._http()
        try:
            if parameters:
                data = await client.post(
                    url,
                    auth=auth,
                    timeout=settings.get("api_function_timeout", 3),
                    json=parameters,
                )
            else:
                data = await client.get(url, auth=auth)
        except httpx.HTTPError as e:
            self.delivery.undelivered += 1
            return {"success": False, "message": f"HTTP error occurred: {e!s}"}
        if data.status_code == 200:
            try:
                return data.json()  # type: ignore[no-any-return]
            except json.decoder.JSONDecodeError:
                return {"success": False, "message": "Failed to decode JSON"}
        return {"success": False, "message": "Unknown error occurred"}

    async def multicommand(
        self, *commands: str, ignore_errors: bool = False, allow_warning: bool = True
    ) -> dict[str, Any]:
        """Send several commands concurrently (as pyasic does)."""
        replies = await asyncio.gather(
            *(self._handle_multicommand(self._http(), c) for c in commands)
        )
        data: dict[str, Any] = {}
        for reply in replies:
            data.update(reply)
        data["multicommand"] = True
        return data

    async def _handle_multicommand(
        self, client: httpx.AsyncClient, command: str
    ) -> dict[str, Any]:
        auth = self._auth(self.username, self.pwd)
        try:
            reply = await client.get(
                f"http://{self.ip}:{self.port}/cgi-bin/{command}.cgi", auth=auth
            )
        except httpx.HTTPError:
            self.delivery.undelivered += 1
        else:
            if reply.status_code == 200:
                try:
                    return {command: reply.json()}
                except json.decoder.JSONDecodeError:
                    pass
        return {command: {}}


class KeptAliveESPMinerWebAPI(_KeptAliveWeb, ESPMinerWebAPI):  # type: ignore[misc]
    """pyasic's AxeOS (Bitaxe) web API on a kept-alive client."""

    async def send_command(
        self,
        command: str,
        ignore_errors: bool = False,
        allow_warning: bool = True,
        privileged: bool = False,
        **parameters: Any,
    ) -> dict[str, Any]:
        """Send one request, as pyasic does, on the kept-alive client."""
        url = f"http://{self.ip}:{self.port}/api/{command}"
        client = self._http()
        retries = settings.get("get_data_retries", 1)
        for attempt in range(retries):
            try:
                if parameters.pop("post", False):
                    data = await client.post(
                        url,
                        timeout=settings.get("api_function_timeout", 3),
                        json=parameters,
                    )
                elif parameters.pop("patch", False):
                    data = await client.patch(
                        url,
                        timeout=settings.get("api_function_timeout", 3),
                        json=parameters,
                    )
                else:
                    data = await client.get(
                        url, timeout=settings.get("api_function_timeout", 5)
                    )
            except httpx.HTTPError as e:
                if attempt == retries - 1:
                    self.delivery.undelivered += 1
                    raise APIError(
                        f"HTTP error sending '{command}' to {self.ip}: {e}"
                    ) from e
            else:
                if data.status_code == 200:
                    try:
                        return data.json()  # type: ignore[no-any-return]
                    except json.decoder.JSONDecodeError as e:
                        if attempt == retries - 1:
                            text = data.text or "empty response"
                            raise APIError(
                                f"JSON decode error for '{command}' from "
                                f"{self.ip}: {e} - Response: {text}"
                            ) from e
        raise APIError(f"Failed to send command to miner API: {url}")


_KEPT_ALIVE: dict[type, type[_KeptAliveWeb]] = {
    AntminerModernWebAPI: KeptAliveAntminerWebAPI,
    ESPMinerWebAPI: KeptAliveESPMinerWebAPI,
}


def _rpc_commands(rpc: BaseMinerRPCAPI) -> list[str]:
    cls = type(rpc)
    if (commands := _RPC_COMMANDS.get(cls)) is None:
        commands = _RPC_COMMANDS[cls] = cls.get_commands(rpc)
    return commands


def _count_undelivered(rpc: BaseMinerRPCAPI, delivery: Delivery) -> None:
    """Count RPC requests that got no reply (pyasic returns `{}` for them)."""
    send_bytes = rpc._send_bytes

    async def _send_bytes(*args: Any, **kwargs: Any) -> Any:
        reply = await send_bytes(*args, **kwargs)
        if not reply or reply == b"{}":
            delivery.undelivered += 1
        return reply

    rpc._send_bytes = _send_bytes


def keep_alive(miner: BaseMiner) -> Delivery:
    """Swap cheaper transports into an identified pyasic miner (see module doc)."""
    delivery = Delivery()
    web = getattr(miner, "web", None)
    if web is not None and (kept := _KEPT_ALIVE.get(type(web))) is not None:
        new_web: Any = kept.__new__(kept)
        new_web.__dict__.update(web.__dict__)
        new_web._setup_keep_alive(delivery)
        miner.web = new_web
    rpc = getattr(miner, "rpc", None)
    if isinstance(rpc, BaseMinerRPCAPI):
        commands = _rpc_commands(rpc)
        rpc.get_commands = lambda: commands
        _count_undelivered(rpc, delivery)
    return delivery


async def aclose(miner: BaseMiner) -> None:
    """Close what `keep_alive` opened (kept-alive HTTP connections)."""
    web = getattr(miner, "web", None)
    if isinstance(web, _KeptAliveWeb):
        await web.aclose()
