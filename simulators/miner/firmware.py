"""What every simulated firmware shares: cgminer-style replies and the hooks."""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
from collections.abc import Callable
import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

if TYPE_CHECKING:
    from .miner import SimulatedMiner


class Firmware(ABC):
    """One firmware's personality: how it answers RPC and HTTP for its miner."""

    name: ClassVar[str]
    serves_rpc: ClassVar[bool] = True
    description: ClassVar[str] = ""
    rpc_terminator: ClassVar[bytes] = b""

    def __init__(self, miner: SimulatedMiner) -> None:
        """Bind the personality to the miner whose state it reports."""
        self.miner = miner

    # ---- RPC (TCP 4028) -------------------------------------------------

    def status(self, code: int, msg: str, *, ok: bool = True) -> list[dict[str, Any]]:
        """Return a cgminer STATUS list."""
        return [
            {
                "STATUS": "S" if ok else "E",
                "When": int(time.time()),
                "Code": code,
                "Msg": msg,
                "Description": self.description,
            }
        ]

    def error(self, code: int, msg: str) -> dict[str, Any]:
        """Return a cgminer error reply."""
        return {"STATUS": self.status(code, msg, ok=False), "id": 1}

    def rpc_reply(self, request: dict[str, Any]) -> bytes:
        """Answer one request; `a+b` is a multi-command, as in cgminer."""
        command = str(request.get("command", ""))
        raw = request.get("parameter")
        params = [] if raw in (None, "") else str(raw).split(",")
        commands = command.split("+")
        if len(commands) == 1:
            reply = self.rpc_command(command, params)
        else:
            reply = {c: [self.rpc_command(c, params)] for c in commands}
            reply["id"] = 1
        return json.dumps(reply).encode() + self.rpc_terminator

    def rpc_command(self, command: str, params: list[str]) -> dict[str, Any]:
        """Answer one command; unknown commands get cgminer's error 14."""
        return self.error(14, "Invalid command")

    # ---- HTTP (TCP 80) --------------------------------------------------

    @abstractmethod
    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one HTTP request."""

    # ---- more listeners ---------------------------------------------------

    def extra_listeners(self) -> list[tuple[int, Callable[[], asyncio.BaseProtocol]]]:
        """Return (port, protocol factory) for ports beyond HTTP and RPC."""
        return []

    # ---- lifecycle ------------------------------------------------------

    @abstractmethod
    def on_reboot(self) -> None:
        """Forget what a reboot forgets (sessions, runtime state)."""

    def on_password_change(self) -> None:
        """The miner's web password changed (`SimulatedMiner.web_password`)."""
        return  # sessions outlive it unless a firmware says otherwise

    def on_stop(self) -> None:
        """The simulation ends: cancel what is still scheduled."""
        return  # most firmwares schedule nothing
