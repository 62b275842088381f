"""Cheaper transports under pyasic's own API objects (no Home Assistant).

pyasic opens a new `httpx.AsyncClient` for every web request, so each request
pays for a new client and a new TCP connection, and Antminer's digest
authentication starts from scratch (a 401 round trip) every time. It also
rebuilds an API's command list with `dir()` on every RPC multicommand. For a
fleet of hundreds of miners these costs dominate a poll or a curtailment.

`keep_alive(miner, session)` swaps in, per miner:
- for the web APIs we know (Antminer stock, AxeOS/Bitaxe): the same class,
  the same requests and the same replies and errors, sent through an
  `aiohttp.ClientSession` (the caller's, e.g. one `web_session()` for a whole
  fleet, or one of its own) whose connections are kept alive, with one
  digest session per miner whose challenge is reused (preemptive
  authentication, RFC 7616 3.6; a stale or refused nonce is negotiated
  again);
- for Braiins OS+'s gRPC API (pyasic opens a new HTTP/2 connection for
  every call, its login included): the same calls, replies and errors on
  one kept-alive grpclib channel per miner, closed after `KEEPALIVE_S` idle;
- for every RPC API: its command list computed once, and each request
  (one TCP connection, as the protocol wants) on a bare asyncio protocol
  instead of streams and a reader task;
- a count of requests pyasic could not deliver (it swallows transport errors
  into empty replies), so the caller can tell "unreachable" from "refused"
  without probing the miner before every request;
- a bound on every reply: at most `MAX_REPLY_BYTES` (far above any real
  reply), within one deadline per request; a miner sending more raises
  `ReplyTooLarge` at once (a flooding miner costs a few MiB, not gigabytes).

`probe_reply_sizes(host, ports)` checks the same bound before pyasic's own
identification probes (which read whatever comes) talk to a miner.

`aclose(miner)` closes what it opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from datetime import datetime
import json
from typing import Any

import aiohttp
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.const import Cardinality
from pyasic import settings
from pyasic.errors import APIError
from pyasic.miners.base import BaseMiner
from pyasic.rpc.base import BaseMinerRPCAPI
from pyasic.web.antminer import AntminerModernWebAPI
from pyasic.web.braiins_os.boser import BOSerWebAPI, BOSMinerGRPCStub
from pyasic.web.braiins_os.proto.braiins.bos.v1 import LoginRequest, LoginResponse
from pyasic.web.espminer import ESPMinerWebAPI

# pyasic's timeout for GET requests (httpx's default).
GET_TIMEOUT_S = 5.0
# How long an idle connection is kept: a curtailment (command, then
# read-backs) reuses it; between two polls (every 10 s) it is closed, so a
# large fleet does not hold a socket per miner for good.
KEEPALIVE_S = 5.0

# The largest reply taken from a miner (RPC or web): real ones are a few KiB.
MAX_REPLY_BYTES = 4 * 1024 * 1024

# RPC command lists by API class (they depend on the class only).
_RPC_COMMANDS: dict[type, list[str]] = {}

_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)


class ReplyTooLarge(Exception):
    """A miner's reply exceeded MAX_REPLY_BYTES (it was cut off)."""


class Delivery:
    """Counts requests that reached no miner (refused, reset, timed out)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.undelivered = 0


def web_session() -> aiohttp.ClientSession:
    """Return a session for many miners' web APIs (to close when done).

    At most one connection per miner (its requests take turns), each closed
    after `KEEPALIVE_S` idle: a fleet of a thousand then holds at most one
    socket per miner, and only for a few seconds after it was read.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=0, limit_per_host=1, keepalive_timeout=KEEPALIVE_S
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class _KeptAliveWeb:
    """A miner's web API on a kept-alive aiohttp session."""

    ip: str
    port: int
    username: str | None
    pwd: str | None
    delivery: Delivery
    _session: aiohttp.ClientSession | None
    _own_session: bool
    _digest: tuple[str | None, str | None, aiohttp.DigestAuthMiddleware] | None

    def _setup_keep_alive(
        self, delivery: Delivery, session: aiohttp.ClientSession | None
    ) -> None:
        self.delivery = delivery
        self._session = session
        self._own_session = False
        self._digest = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = web_session()
            self._own_session = True
        return self._session

    def _digest_auth(self) -> aiohttp.DigestAuthMiddleware:
        digest = self._digest
        if digest is None or digest[0] != self.username or digest[1] != self.pwd:
            auth = aiohttp.DigestAuthMiddleware(self.username or "", self.pwd or "")
            self._digest = digest = (self.username, self.pwd, auth)
        return digest[2]

    async def _request(
        self,
        method: str,
        url: str,
        *,
        timeout_s: float,
        json_body: dict[str, Any] | None = None,
        digest: bool = False,
    ) -> tuple[int, bytes]:
        """Send one request; return its status and body (transport errors raise)."""
        async with self._http().request(
            method,
            url,
            json=json_body,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            middlewares=(self._digest_auth(),) if digest else (),
        ) as response:
            return response.status, await read_bounded(response, url)

    async def aclose(self) -> None:
        """Close the session, if it is our own."""
        if self._own_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()


class KeptAliveAntminerWebAPI(_KeptAliveWeb, AntminerModernWebAPI):  # type: ignore[misc]
    """pyasic's Antminer (stock, modern) web API on a kept-alive session."""

    async def send_command(
        self,
        command: str,
        ignore_errors: bool = False,
        allow_warning: bool = True,
        privileged: bool = False,
        **parameters: Any,
    ) -> dict[str, Any]:
        """Send one CGI command; the same replies as pyasic's."""
        url = f"http://{self.ip}:{self.port}/cgi-bin/{command}.cgi"
        try:
            if parameters:
                status, body = await self._request(
                    "POST",
                    url,
                    timeout_s=settings.get("api_function_timeout", 3),
                    json_body=parameters,
                    digest=True,
                )
            else:
                status, body = await self._request(
                    "GET", url, timeout_s=GET_TIMEOUT_S, digest=True
                )
        except _TRANSPORT_ERRORS as e:
            self.delivery.undelivered += 1
            return {"success": False, "message": f"HTTP error occurred: {e!s}"}
        if status == 200:
            try:
                return json.loads(body)  # type: ignore[no-any-return]
            except json.decoder.JSONDecodeError:
                return {"success": False, "message": "Failed to decode JSON"}
        return {"success": False, "message": "Unknown error occurred"}

    async def multicommand(
        self, *commands: str, ignore_errors: bool = False, allow_warning: bool = True
    ) -> dict[str, Any]:
        """Send several commands concurrently (as pyasic does)."""
        replies = await asyncio.gather(*(self._get_one(c) for c in commands))
        data: dict[str, Any] = {}
        for reply in replies:
            data.update(reply)
        data["multicommand"] = True
        return data

    async def _get_one(self, command: str) -> dict[str, Any]:
        url = f"http://{self.ip}:{self.port}/cgi-bin/{command}.cgi"
        try:
            status, body = await self._request(
                "GET", url, timeout_s=GET_TIMEOUT_S, digest=True
            )
        except _TRANSPORT_ERRORS:
            self.delivery.undelivered += 1
        else:
            if status == 200:
                try:
                    return {command: json.loads(body)}
                except json.decoder.JSONDecodeError:
                    pass
        return {command: {}}


class KeptAliveESPMinerWebAPI(_KeptAliveWeb, ESPMinerWebAPI):  # type: ignore[misc]
    """pyasic's AxeOS (Bitaxe) web API on a kept-alive session."""

    async def send_command(
        self,
        command: str,
        ignore_errors: bool = False,
        allow_warning: bool = True,
        privileged: bool = False,
        **parameters: Any,
    ) -> dict[str, Any]:
        """Send one request; the same replies and errors as pyasic's."""
        url = f"http://{self.ip}:{self.port}/api/{command}"
        method = "GET"
        timeout_s = settings.get("api_function_timeout", 5)
        if parameters.pop("post", False):
            method, timeout_s = "POST", settings.get("api_function_timeout", 3)
        elif parameters.pop("patch", False):
            method, timeout_s = "PATCH", settings.get("api_function_timeout", 3)
        body_json = parameters if method != "GET" else None
        retries = settings.get("get_data_retries", 1)
        for attempt in range(retries):
            try:
                status, body = await self._request(
                    method, url, timeout_s=timeout_s, json_body=body_json
                )
            except _TRANSPORT_ERRORS as e:
                if attempt == retries - 1:
                    self.delivery.undelivered += 1
                    raise APIError(
                        f"HTTP error sending '{command}' to {self.ip}: {e}"
                    ) from e
            else:
                if status == 200:
                    try:
                        return json.loads(body)  # type: ignore[no-any-return]
                    except json.decoder.JSONDecodeError as e:
                        if attempt == retries - 1:
                            text = body.decode(errors="replace") or "empty response"
                            raise APIError(
                                f"JSON decode error for '{command}' from "
                                f"{self.ip}: {e} - Response: {text}"
                            ) from e
        raise APIError(f"Failed to send command to miner API: {url}")


class KeptAliveBOSerWebAPI(BOSerWebAPI):  # type: ignore[misc]
    """pyasic's Braiins OS+ gRPC API on one kept-alive HTTP/2 connection.

    pyasic opens a grpclib `Channel` (a TCP connection, the HTTP/2 preface
    and settings) for every call and its login; here one channel per miner
    carries them all (grpclib connects again when the miner closed it), and
    is closed after `KEEPALIVE_S` without a call. The same calls (pyasic's
    stubs, its token and its one new login on UNAUTHENTICATED), the same
    replies and errors.
    """

    delivery: Delivery
    _channel: Channel | None
    _calls: int
    _idle: asyncio.TimerHandle | None

    def _setup_keep_alive(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self._channel = None
        self._calls = 0
        self._idle = None

    @contextlib.asynccontextmanager
    async def _grpc(self) -> AsyncIterator[Channel]:
        """The miner's channel for one call (opened if need be)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._channel is None:
            self._channel = Channel(self.ip, self.port)
        channel = self._channel
        self._calls += 1
        try:
            yield channel
        except ConnectionError:
            self.delivery.undelivered += 1
            raise
        finally:
            self._calls -= 1
            if not self._calls and self._channel is channel:
                self._idle = asyncio.get_running_loop().call_later(
                    KEEPALIVE_S, self._close_channel
                )

    def _close_channel(self) -> None:
        self._idle = None
        if self._channel is not None and not self._calls:
            channel, self._channel = self._channel, None
            channel.close()

    async def send_command(
        self,
        command: str,
        ignore_errors: bool = False,
        allow_warning: bool = True,
        privileged: bool = False,
        **parameters: Any,
    ) -> dict[str, Any]:
        """Call one gRPC method, as pyasic does, on the kept channel."""
        message = parameters["message"]
        metadata = []
        if privileged:
            metadata.append(("authorization", await self.auth()))
        endpoint: Any = None
        try:
            async with self._grpc() as channel:
                endpoint = getattr(BOSMinerGRPCStub(channel), command)
                try:
                    reply = await endpoint(message, metadata=metadata)
                except GRPCError as e:
                    if e.status != Status.UNAUTHENTICATED:
                        raise
                    await self._get_auth()
                    metadata = [("authorization", await self.auth())]
                    reply = await endpoint(message, metadata=metadata)
                return reply.to_pydict()  # type: ignore[no-any-return]
        except (GRPCError, ConnectionError) as e:
            raise APIError(f"gRPC command failed - {endpoint}") from e

    async def _get_auth(self) -> str | None:
        """Log in, as pyasic does (the token comes in the initial metadata)."""
        async with self._grpc() as channel:
            request = LoginRequest(username=self.username, password=self.pwd)
            async with channel.request(
                "/braiins.bos.v1.AuthenticationService/Login",
                Cardinality.UNARY_UNARY,
                LoginRequest,
                LoginResponse,
            ) as stream:
                await stream.send_message(request, end=True)
                await stream.recv_initial_metadata()
                metadata = stream.initial_metadata
                token = None if metadata is None else metadata.get("authorization")
                await stream.recv_message()
                await stream.recv_trailing_metadata()
        if not isinstance(token, str):
            return None
        self.token = token
        self._auth_time = datetime.now()
        return token

    async def aclose(self) -> None:
        """Close the channel."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._channel is not None:
            channel, self._channel = self._channel, None
            channel.close()


_KEPT_ALIVE: dict[type, type[_KeptAliveWeb]] = {
    AntminerModernWebAPI: KeptAliveAntminerWebAPI,
    ESPMinerWebAPI: KeptAliveESPMinerWebAPI,
}


def _rpc_commands(rpc: BaseMinerRPCAPI) -> list[str]:
    cls = type(rpc)
    if (commands := _RPC_COMMANDS.get(cls)) is None:
        commands = _RPC_COMMANDS[cls] = cls.get_commands(rpc)
    return commands


async def read_bounded(response: aiohttp.ClientResponse, url: str) -> bytes:
    """Read a web reply's body; raise ReplyTooLarge past MAX_REPLY_BYTES."""
    length = response.content_length
    if length is not None and length > MAX_REPLY_BYTES:
        response.close()
        raise ReplyTooLarge(f"{url}: reply of {length} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            response.close()
            raise ReplyTooLarge(f"{url}: reply over {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _OneExchange(asyncio.Protocol):
    """One cgminer-style RPC exchange: send the request, read until closed."""

    def __init__(self, request: bytes, reply: asyncio.Future[bytes]) -> None:
        self._request = request
        self._reply = reply
        self._chunks: list[bytes] = []
        self._size = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > MAX_REPLY_BYTES:
            self._chunks.clear()
            if not self._reply.done():
                self._reply.set_exception(
                    ReplyTooLarge(f"RPC reply over {MAX_REPLY_BYTES} bytes")
                )
            if self._transport is not None:
                self._transport.abort()
            return
        self._chunks.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._reply.done():
            # As pyasic: a connection broken mid-reply reads as nothing.
            self._reply.set_result(b"" if exc else b"".join(self._chunks))


async def _exchange(host: str, port: int, request: bytes, timeout_s: float) -> bytes:
    """pyasic's `_send_bytes` on a bare protocol (no streams, no extra task).

    The same outcomes: `{}` when the connection is refused or the reply times
    out, `b""` when it breaks mid-reply, otherwise every byte until the miner
    closes the connection; but ReplyTooLarge past MAX_REPLY_BYTES.
    """
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()
    try:
        transport, _ = await loop.create_connection(
            lambda: _OneExchange(request, reply), host, port
        )
    except OSError:
        return b"{}"
    try:
        async with asyncio.timeout(timeout_s):
            return await reply
    except TimeoutError:
        return b"{}"
    finally:
        transport.close()


async def _probe_rpc(host: str, port: int, timeout_s: float) -> None:
    await _exchange(host, port, b'{"command":"version"}', timeout_s)


async def _probe_web(host: str, port: int, timeout_s: float) -> None:
    scheme = "https" if port == 443 else "http"
    url = f"{scheme}://{host}:{port}/"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        try:
            async with session.get(
                url, ssl=False, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                await read_bounded(response, url)
        except _TRANSPORT_ERRORS:
            pass


async def probe_reply_sizes(
    host: str, ports: tuple[int, ...], timeout_s: float = 3.0
) -> None:
    """Raise ReplyTooLarge if a port pyasic probes floods its replies.

    pyasic's identification reads the RPC port and the web page without a
    bound; a miner must first prove it answers them within MAX_REPLY_BYTES.
    """
    probes = []
    for port in ports:
        if port == 4028:
            probes.append(_probe_rpc(host, port, timeout_s))
        else:
            probes.append(_probe_web(host, port, timeout_s))
    results = await asyncio.gather(*probes, return_exceptions=True)
    for result in results:
        if isinstance(result, ReplyTooLarge):
            raise result


def _lean_rpc(rpc: BaseMinerRPCAPI, delivery: Delivery) -> None:
    """Send RPC requests on a bare protocol; count those that got no reply.

    pyasic returns `{}` for a refused or timed-out request. Only the plain
    cgminer-style exchange is replaced; an API with its own (e.g. encrypted
    Whatsminer) keeps it, and is only counted.
    """
    original = rpc._send_bytes
    lean = type(rpc)._send_bytes is BaseMinerRPCAPI._send_bytes
    host = str(rpc.ip)

    async def _send_bytes(
        data: bytes,
        *,
        port: int | None = None,
        timeout: int = 100,  # noqa: ASYNC109
    ) -> bytes:
        if lean:
            port = rpc.port if port is None else port
            reply = await _exchange(host, port, data, timeout)
        else:
            reply = await original(data, port=port, timeout=timeout)
        if not reply or reply == b"{}":
            delivery.undelivered += 1
        return reply

    rpc._send_bytes = _send_bytes


def keep_alive(
    miner: BaseMiner, session: aiohttp.ClientSession | None = None
) -> Delivery:
    """Swap cheaper transports into an identified pyasic miner (see module doc).

    Without a `session`, the miner's web API opens its own (closed by `aclose`).
    """
    delivery = Delivery()
    web = getattr(miner, "web", None)
    if web is not None and (kept := _KEPT_ALIVE.get(type(web))) is not None:
        new_web: Any = kept.__new__(kept)
        new_web.__dict__.update(web.__dict__)
        new_web._setup_keep_alive(delivery, session)
        miner.web = new_web
    elif type(web) is BOSerWebAPI:
        grpc: Any = KeptAliveBOSerWebAPI.__new__(KeptAliveBOSerWebAPI)
        grpc.__dict__.update(web.__dict__)
        grpc._setup_keep_alive(delivery)
        miner.web = grpc
    rpc = getattr(miner, "rpc", None)
    if isinstance(rpc, BaseMinerRPCAPI):
        commands = _rpc_commands(rpc)
        rpc.get_commands = lambda: commands
        _lean_rpc(rpc, delivery)
    return delivery


async def aclose(miner: BaseMiner) -> None:
    """Close what `keep_alive` opened (kept-alive HTTP and gRPC connections)."""
    web = getattr(miner, "web", None)
    if isinstance(web, (_KeptAliveWeb, KeptAliveBOSerWebAPI)):
        await web.aclose()
