"""Errors of the Lightning node client (no Home Assistant imports)."""

from __future__ import annotations

from typing import Any


class LightningError(Exception):
    """Base class of every node client error."""


class CannotConnect(LightningError):
    """The node could not be reached (no socket, refused, TLS failure, timeout)."""


class ConnectionLost(CannotConnect):
    """The connection dropped after the request was sent: its outcome is unknown."""


class CertificateMismatch(CannotConnect):
    """CLNRest's certificate is not the pinned one (or does not verify)."""


class RuneRejected(LightningError):
    """CLNRest refused the rune (missing, wrong, blacklisted or not permitted)."""

    def __init__(self, code: int | None, message: str) -> None:
        """Keep CLN's code and message."""
        super().__init__(message)
        self.code = code
        self.message = message


class RateLimited(LightningError):
    """The rune allows the call, but not this soon (``per=``/``rate=``): wait."""

    def __init__(self, code: int | None, message: str) -> None:
        """Keep CLN's code and message."""
        super().__init__(message)
        self.code = code
        self.message = message


class RpcError(LightningError):
    """The node answered the call with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        """Keep the method, CLN's error code, message and data."""
        super().__init__(f"{method}: {message} ({code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data
