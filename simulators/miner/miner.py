"""One simulated miner: identity, physical model, fault knobs and listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
import socket
from typing import Any

from aiohttp import web

from .firmware import Firmware
from .model import MinerModel, MinerSpec
from .rpc import RpcProtocol

_LOGGER = logging.getLogger(__name__)

RPC_PORT = 4028
HTTP_PORT = 80
GARBAGE = b'<html><body>upgrade in progress {{{ "STATUS": [</body>'
# What a flooding miner sends, over and over (JSON that never ends).
FLOOD_CHUNK = b'{"STATUS":[{"STATUS":"S","Msg":"flood"},' + b'{"Msg":"flood"},' * 4000
FLOOD_LIMIT_BYTES = 1 << 30


def _listen(ip: str, port: int) -> socket.socket:
    """A listening TCP socket whose connections asyncio sets TCP_NODELAY on.

    asyncio sets it on a connection only when the socket says IPPROTO_TCP;
    `socket.create_server` makes them with protocol 0, so a server that
    writes a reply in several small writes (grpclib: HTTP/2 headers, then
    the message) met Nagle's algorithm and the client's delayed ACK: ~40 ms
    per gRPC call that no firmware has.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class SimulatedMiner:
    """A miner on its own loopback address.

    Fault knobs, all settable while running:
    - `unreachable`: the listeners close, so connections are refused;
    - `slow`: every reply is delayed by this many (real) seconds;
    - `garbage`: every reply is malformed (not JSON, not the firmware's page):
      `garbage_payload`, which may be set to any bytes (e.g. invalid UTF-8);
    - `ignore_commands`: commands are acknowledged but change nothing;
    - `lie`: figures the firmware reports instead of the true ones, by name:
      `power_w`, `hashrate_ths`, `serial`, `mac`, `preset_w` (LuxOS: the
      lowest profile's watts). Any JSON value: -5, NaN, 1e308, "abc", 12345;
    - `flood`: every reply (RPC and HTTP) is an endless stream of bytes, until
      the client hangs up or `FLOOD_LIMIT_BYTES` went out (`flood_sent` counts);
    - `readdress(ip)` (or `Fleet.swap_addresses`): the miner moves to another
      address, as when DHCP hands it a new one.
    """

    def __init__(
        self,
        ip: str,
        firmware: type[Firmware],
        spec: MinerSpec,
        clock: Callable[[], float],
        *,
        serial: str | None,
        mac: str,
        web_password: str = "root",
    ) -> None:
        """Create the miner (not yet listening)."""
        self.ip = ip
        self.spec = spec
        self.physics = MinerModel(spec, clock)
        self.serial = serial
        self.mac = mac
        self.hostname = f"{spec.model.split()[0].lower()}-{mac[-5:].replace(':', '')}"
        self._web_password = web_password
        self.slow = 0.0
        self.garbage = False
        self.garbage_payload = GARBAGE
        self.ignore_commands = False
        self.lie: dict[str, Any] = {}
        self.flood = False
        self.flood_sent = 0
        # Traffic seen, for tests: RPC and HTTP connections accepted, HTTP
        # requests served, of which refused for want of (digest) credentials.
        self.rpc_connections = 0
        self.http_connections = 0
        self.http_requests = 0
        self.http_challenges = 0
        self._unreachable = False
        self.personality = firmware(self)
        self._servers: list[asyncio.Server] = []
        self._retired: list[asyncio.Server] = []
        self._web = web.Server(self._http, handler_cancellation=True, access_log=None)
        self._opening: set[asyncio.Task[None]] = set()

    @property
    def web_password(self) -> str:
        """Return the password of the miner's web UI / API (user root)."""
        return self._web_password

    @web_password.setter
    def web_password(self, value: str) -> None:
        """Change the password, as its owner would in the web UI."""
        self._web_password = value
        self.personality.on_password_change()

    def __repr__(self) -> str:
        """Describe the miner briefly."""
        return f"<SimulatedMiner {self.firmware} {self.model} at {self.ip}>"

    # ---- identity and state ---------------------------------------------

    @property
    def firmware(self) -> str:
        """Return the firmware's short name (luxos, antminer, bitaxe)."""
        return self.personality.name

    @property
    def model(self) -> str:
        """Return the hardware model, as the firmware reports it."""
        return self.spec.model

    @property
    def mining(self) -> bool:
        """Return True while hashing (not asleep or stopped)."""
        return self.physics.mining

    @property
    def power_w(self) -> float:
        """Return the power drawn now, in W."""
        return self.physics.power_w

    @property
    def power_target_w(self) -> float:
        """Return the power the miner draws when mining, in W."""
        return self.physics.power_target_w

    @property
    def hashrate_ths(self) -> float:
        """Return the hashrate now, in TH/s."""
        return self.physics.hashrate_ths

    @property
    def energy_wh(self) -> float:
        """Return the energy drawn since the simulation started, in Wh."""
        return self.physics.energy_wh

    def reported(self, name: str, truth: Any) -> Any:
        """Return what the firmware reports for a figure: the truth, or a lie."""
        return self.lie.get(name, truth)

    def reported_ghs(self, truth_ths: float) -> Any:
        """Return the hashrate as reported in GH/s (a lie is passed through)."""
        if "hashrate_ths" not in self.lie:
            return round(truth_ths * 1000, 2)
        lie = self.lie["hashrate_ths"]
        if isinstance(lie, (int, float)) and not isinstance(lie, bool):
            return lie * 1000
        return lie

    def reboot(self) -> None:
        """Reboot: uptime restarts, power ramps from idle, sessions are gone."""
        self.physics.reboot()
        self.personality.on_reboot()

    # ---- faults ----------------------------------------------------------

    @property
    def unreachable(self) -> bool:
        """Return True while the miner refuses connections."""
        return self._unreachable

    @unreachable.setter
    def unreachable(self, value: bool) -> None:
        if value == self._unreachable:
            return
        self._unreachable = value
        if value:
            self._close_listeners()
        else:
            self._open_listeners()

    async def readdress(self, ip: str) -> None:
        """Move to another address (its listeners close and open there)."""
        was_unreachable = self._unreachable
        self.unreachable = True
        for server in self._retired:
            await server.wait_closed()
        self._retired.clear()
        self.ip = ip
        self.unreachable = was_unreachable
        await self._settle()

    # ---- listeners -------------------------------------------------------

    async def start(self) -> None:
        """Start listening (unless unreachable)."""
        if not self._unreachable:
            self._open_listeners()
        await self._settle()

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        await self._settle()
        self.personality.on_stop()
        self._close_listeners()
        await self._web.shutdown(timeout=0.1)
        for server in self._retired:
            await server.wait_closed()
        self._retired.clear()

    async def settle(self) -> None:
        """Wait until the listeners being opened serve."""
        await self._settle()

    async def _settle(self) -> None:
        while self._opening:
            await asyncio.gather(*self._opening)

    def _open_listeners(self) -> None:
        """Bind now (so connections queue at once), serve from the next loop turn."""
        loop = asyncio.get_running_loop()
        factories: list[tuple[int, Callable[[], asyncio.BaseProtocol]]] = [
            (HTTP_PORT, self._http_protocol)
        ]
        if self.personality.serves_rpc:
            factories.append((RPC_PORT, self._rpc_protocol))
        factories.extend(self.personality.extra_listeners())
        for port, factory in factories:
            sock = _listen(self.ip, port)
            task = loop.create_task(self._serve(factory, sock))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _serve(
        self, factory: Callable[[], asyncio.BaseProtocol], sock: socket.socket
    ) -> None:
        server = await asyncio.get_running_loop().create_server(factory, sock=sock)
        self._servers.append(server)
        if self._unreachable:  # made unreachable while we were opening
            self._close_listeners()

    def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
            server.abort_clients()
        self._retired.extend(self._servers)
        self._servers.clear()

    # ---- transports -> personality, through the fault knobs ---------------

    def _http_protocol(self) -> asyncio.BaseProtocol:
        self.http_connections += 1
        return self._web()

    def _rpc_protocol(self) -> asyncio.Protocol:
        self.rpc_connections += 1
        if self.flood:
            return FloodProtocol(self)
        return RpcProtocol(self._rpc_reply, lambda: self.slow)

    def _rpc_reply(self, request: dict[str, Any]) -> bytes:
        if self.garbage:
            return self.garbage_payload
        try:
            return self.personality.rpc_reply(request)
        except Exception:
            _LOGGER.exception("%s: RPC %s failed", self, request)
            raise

    async def _http(self, request: web.BaseRequest) -> web.StreamResponse:
        self.http_requests += 1
        if self.slow:
            await asyncio.sleep(self.slow)
        if self.garbage:
            return web.Response(body=self.garbage_payload, content_type="text/html")
        if self.flood:
            return await self._http_flood(request)
        response = await self.personality.http_reply(request)
        if response.status == 401:
            self.http_challenges += 1
        return response

    async def _http_flood(self, request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            while self.flood and self.flood_sent < FLOOD_LIMIT_BYTES:
                await response.write(FLOOD_CHUNK)
                self.flood_sent += len(FLOOD_CHUNK)
        except ConnectionError, RuntimeError:
            pass  # the client hung up
        return response


class FloodProtocol(asyncio.Protocol):
    """An RPC port that answers any request with bytes that never end.

    Written as fast as the client reads (flow control), until it hangs up.
    """

    def __init__(self, miner: SimulatedMiner) -> None:
        """Flood for this miner (it counts what went out)."""
        self._miner = miner
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Start flooding at the first request."""
        if not self._started:
            self._started = True
            self._pump()

    def _pump(self) -> None:
        transport = self._transport
        while transport is not None and not self._paused and not transport.is_closing():
            if self._miner.flood_sent >= FLOOD_LIMIT_BYTES:
                transport.close()
                return
            transport.write(FLOOD_CHUNK)
            self._miner.flood_sent += len(FLOOD_CHUNK)

    def pause_writing(self) -> None:
        """The client's buffers are full: wait."""
        self._paused = True

    def resume_writing(self) -> None:
        """Go on."""
        self._paused = False
        asyncio.get_running_loop().call_soon(self._pump)

    def connection_lost(self, exc: Exception | None) -> None:
        """The client hung up."""
        self._transport = None
