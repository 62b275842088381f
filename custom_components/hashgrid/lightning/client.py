"""One async client for a Core Lightning node, over either of its transports.

- :class:`SocketClient`: lightningd's JSON-RPC on the local unix socket through
  ``pyln-client`` (synchronous), each call run by the ``runner`` it is given
  (Home Assistant passes ``hass.async_add_executor_job``; default
  ``asyncio.to_thread``), so the event loop never blocks.
- :class:`RestClient`: CLNRest over HTTPS with ``aiohttp`` (Home Assistant's shared
  session is injected): ``POST /v1/<method>`` with the ``Rune`` header. The
  certificate is pinned by its SHA-256 fingerprint, or verified against the CAs.

Both raise the same errors (:mod:`.errors`): :class:`CannotConnect` (and its
:class:`ConnectionLost`, when a request was sent but no answer came: its outcome
is unknown), :class:`RuneRejected`, and :class:`RpcError` with CLN's code and
message. No Home Assistant imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
from collections.abc import Awaitable, Callable
import json
from typing import Any

import aiohttp
from pyln.client import LightningRpc, RpcError as PylnRpcError

from .errors import (
    CannotConnect,
    CertificateMismatch,
    ConnectionLost,
    LightningError,
    RateLimited,
    RpcError,
    RuneRejected,
)

type Runner = Callable[[Callable[[], Any]], Awaitable[Any]]

#: CLN's rune error codes (not authorized, not permitted, blacklisted).
RUNE_ERROR_CODES = frozenset({1501, 1502, 1503})
#: Seconds to wait for an ordinary answer over CLNRest.
REQUEST_TIMEOUT = 30.0
#: Seconds to wait before asking again when the rune says "too soon".
RATE_LIMIT_BACKOFF_S = (1.0, 2.0, 4.0)
#: What checkrune says when a rune's ``per=``/``rate=`` condition is not met yet.
RATE_LIMIT_MARKERS = ("too soon", "rate of", "per minute", "exceeded")


def is_rate_limited(message: str) -> bool:
    """Does a rune refusal only mean "not this soon"?"""
    text = message.lower()
    return any(marker in text for marker in RATE_LIMIT_MARKERS)


#: CLN error codes of methods that wait.
INVOICE_WAIT_TIMED_OUT = 904


async def _to_thread(func: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(func)


def normalize_fingerprint(value: str | None) -> str | None:
    """``AA:bb:…`` or ``aabb…`` → lowercase hex without colons (None if empty)."""
    if not value:
        return None
    text = value.strip().replace(":", "").replace(" ", "").lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError("a SHA-256 fingerprint is 64 hex digits")
    return text


class NodeClient(ABC):
    """The calls HashGrid makes, over whichever transport."""

    @abstractmethod
    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        request_timeout_s: float | None = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """Call one RPC method; raise a :class:`LightningError`."""

    @property
    @abstractmethod
    def address(self) -> str:
        """Where the node is (socket path or URL), for messages."""

    # Convenience wrappers (only the parameters HashGrid uses).

    async def getinfo(self) -> dict[str, Any]:
        """The node's identity and counters."""
        return await self.call("getinfo")

    async def decode(self, text: str) -> dict[str, Any]:
        """Decode a BOLT11/BOLT12 string (RpcError if it is not one)."""
        return await self.call("decode", {"string": text})

    async def listpays(self) -> list[dict[str, Any]]:
        """Every payment this node sent (one entry per payment)."""
        return list((await self.call("listpays"))["pays"])

    async def wait_invoice_paid(
        self, lastpay_index: int, timeout_s: int
    ) -> dict[str, Any] | None:
        """The next invoice paid after ``lastpay_index``; None if none in time."""
        try:
            return await self.call(
                "waitanyinvoice",
                {"lastpay_index": lastpay_index, "timeout": timeout_s},
                request_timeout_s=timeout_s + REQUEST_TIMEOUT,
            )
        except RpcError as err:
            if err.code == INVOICE_WAIT_TIMED_OUT:
                return None
            raise


class SocketClient(NodeClient):
    """lightningd's unix socket through pyln-client, calls run by ``runner``."""

    def __init__(self, path: str, runner: Runner | None = None) -> None:
        """Remember the socket (pyln connects anew for every call)."""
        self.path = path
        self._rpc = LightningRpc(path)
        self._runner: Runner = runner or _to_thread

    @property
    def address(self) -> str:
        """The socket's path."""
        return self.path

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        request_timeout_s: float | None = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """Run the call in the runner; map pyln's errors to ours."""

        def run() -> Any:
            return self._rpc.call(method, params or {})

        try:
            result = await self._runner(run)
        except PylnRpcError as err:
            error = err.error
            if isinstance(error, dict):
                raise RpcError(
                    method,
                    int(error.get("code", -1)),
                    str(error.get("message", "")),
                    error.get("data"),
                ) from None
            raise ConnectionLost(f"{method}: {error}") from None
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as err:
            # No connection was made: the request never reached the node.
            raise CannotConnect(f"{self.path}: {err}") from None
        except OSError as err:
            # Connected, then lost: the request may have been carried out.
            raise ConnectionLost(f"{method}: {err}") from None
        except ValueError as err:  # malformed answers
            raise LightningError(f"{method}: {err}") from None
        if not isinstance(result, dict):
            raise LightningError(f"{method}: unexpected answer {result!r}")
        return result


class RestClient(NodeClient):
    """CLNRest: HTTPS ``POST /v1/<method>`` with a rune."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        rune: str,
        fingerprint: str | None = None,
    ) -> None:
        """Pin the certificate when a fingerprint is given; else verify it."""
        self.url = url.rstrip("/")
        self._session = session
        self._rune = rune
        pinned = normalize_fingerprint(fingerprint)
        self._ssl: aiohttp.Fingerprint | bool = (
            aiohttp.Fingerprint(bytes.fromhex(pinned)) if pinned else True
        )

    @property
    def address(self) -> str:
        """The base URL."""
        return self.url

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        request_timeout_s: float | None = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """POST the call; map HTTP and CLN errors to ours.

        A rune limited by ``per=``/``rate=`` refuses calls that come too soon
        (a poll makes three back to back): the call did not run, so wait and
        ask again (a few times) rather than take the rune for a rejected one.
        """
        for delay in (*RATE_LIMIT_BACKOFF_S, None):
            try:
                return await self._post(method, params, request_timeout_s)
            except RateLimited:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _post(
        self,
        method: str,
        params: dict[str, Any] | None,
        request_timeout_s: float | None,
    ) -> dict[str, Any]:
        try:
            async with self._session.post(
                f"{self.url}/v1/{method}",
                json=params or {},
                headers={"Rune": self._rune},
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=request_timeout_s),
            ) as resp:
                status = resp.status
                text = await resp.text()
        except aiohttp.ServerFingerprintMismatch:
            raise CertificateMismatch(
                f"{self.url}: the certificate is not the pinned one"
            ) from None
        except aiohttp.ClientSSLError as err:
            raise CertificateMismatch(f"{self.url}: {err}") from None
        except aiohttp.ClientConnectorError as err:
            raise CannotConnect(f"{self.url}: {err}") from None
        except (aiohttp.ClientError, TimeoutError) as err:
            # Sent, but no answer: whatever it asked for may or may not be done.
            raise ConnectionLost(f"{method}: {err!r}") from None
        try:
            body: Any = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            body = None
        if 200 <= status < 300 and isinstance(body, dict):
            return body
        error = body if isinstance(body, dict) else {}
        code = error.get("code")
        message = str(error.get("message") or text[:200] or f"HTTP {status}")
        if code in RUNE_ERROR_CODES and is_rate_limited(message):
            raise RateLimited(code if isinstance(code, int) else None, message)
        if status in (401, 403) or code in RUNE_ERROR_CODES:
            raise RuneRejected(code if isinstance(code, int) else None, message)
        if isinstance(code, int):
            raise RpcError(method, code, message, error.get("data"))
        raise CannotConnect(f"{self.url}: HTTP {status} {message}")
