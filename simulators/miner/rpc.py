"""The cgminer-style JSON API on TCP 4028, as LuxOS and bmminer serve it.

A client sends one JSON object (`{"command": "a+b", "parameter": "x,y"}`), reads
until the miner closes the connection. One `asyncio.Protocol` per connection and
no task: a slow reply is a timer, cancelled if the connection goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
from typing import Any

MAX_REQUEST_BYTES = 65536
#: The simulated miners' one pool.
POOL_URL = "stratum+tcp://pool.hashgrid.invalid:3333"

Responder = Callable[[dict[str, Any]], bytes]


class RpcProtocol(asyncio.Protocol):
    """Answer one request per connection, then close it."""

    def __init__(self, respond: Responder, delay: Callable[[], float]) -> None:
        """Bind to the miner's responder and its current reply delay."""
        self._respond = respond
        self._delay = delay
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Collect bytes until they form one JSON object, then answer."""
        if self._timer is not None or self._transport is None:
            return
        self._buffer += data
        try:
            request = json.loads(self._buffer.rstrip(b"\x00").decode("utf-8"))
        except UnicodeDecodeError, json.JSONDecodeError:
            if len(self._buffer) > MAX_REQUEST_BYTES:
                self._transport.close()
            return
        if not isinstance(request, dict):
            request = {}
        reply = self._respond(request)
        self._timer = asyncio.get_running_loop().call_later(
            self._delay(), self._send, reply
        )

    def _send(self, reply: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(reply)
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the pending reply."""
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None


def cgminer_pool(
    hostname: str, mining: bool, accepted: int, **extra: Any
) -> dict[str, Any]:
    """One entry of cgminer's ``pools`` reply (the simulated pool), with the
    fields every cgminer-derived firmware shares; ``extra`` adds a firmware's
    own (LuxOS's GROUP, Avalon's Stratum URL …)."""
    return {
        "POOL": 0,
        "URL": POOL_URL,
        "User": f"hashgrid.{hostname}",
        "Status": "Alive",
        "Stratum Active": mining,
        "Priority": 0,
        "Accepted": accepted,
        "Rejected": 0,
        "Get Failures": 0,
        "Remote Failures": 0,
        **extra,
    }
