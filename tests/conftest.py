"""Fixtures shared by the HashGrid tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import PropertyMock, patch

from aiohttp import web
import pytest
import pytest_socket
from syrupy.assertion import SnapshotAssertion

from tests.net import addr
from tests.snapshots import CanonicalSnapshotExtension


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> None:
    """Let Home Assistant load custom_components/hashgrid in every test."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """HA's snapshots, the same whichever loopback network the run has."""
    return snapshot.use_extension(CanonicalSnapshotExtension)


@pytest.fixture
def loopback(socket_enabled: None) -> None:
    """Allow connections to all of 127.0.0.0/8 (simulated miners live there).

    HA's test plugin allows 127.0.0.1 only; the simulators give each device its
    own loopback address, as on a real network.
    """
    pytest_socket.socket_allow_hosts(["127.0.0.0/8"], allow_unix_socket=True)


class ManualClock:
    """A clock the test moves by hand (simulated seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    """A simulators' clock that only moves when the test says."""
    return ManualClock()


# A loopback address where an ordinary web server (not a miner) answers.
WEB_ONLY = addr("3.251")


@pytest.fixture
async def web_only(loopback: None) -> AsyncIterator[str]:
    """Serve an ordinary web page (a router, a printer …) on port 80."""

    async def page(request: web.BaseRequest) -> web.Response:
        return web.Response(
            text="<html><title>Router</title></html>", content_type="text/html"
        )

    runner = web.ServerRunner(web.Server(page), shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, WEB_ONLY, 80).start()
    yield WEB_ONLY
    await runner.cleanup()


@pytest.fixture
def tolerate_failed_handshakes() -> Iterator[None]:
    """A client refusing the certificate resets the TLS handshake; asyncio reports
    that server-side through the loop's exception handler, which HA's test
    harness turns into a failure. Drop just those reports."""
    loop = asyncio.get_event_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith(
            "Error on transport creation for incoming connection"
        ):
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    loop.set_exception_handler(handler)
    yield
    loop.set_exception_handler(previous)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, as HA core's fixture of that name does."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield
