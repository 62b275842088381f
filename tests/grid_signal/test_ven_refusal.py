"""The VEN tells a VTN that refuses its credentials from one that is away (HA-free).

Refusals: HTTP 401/403, and a TLS alert that names the client certificate (a
TLS 1.2 server here: under TLS 1.3 the alert follows the handshake and is
usually lost to the connection's reset, which reads as "unreachable").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import contextlib
from pathlib import Path
import socket
import ssl
import threading

from aiohttp import web
import pytest

from custom_components.hashgrid.grid_signal.ven import (
    CannotConnect,
    Unauthorized,
    Ven,
    VenConfig,
)
from simulators.grid_signal import PATH_PREFIX

from .tls_vtn import Pki


def _ven(url: str, **files: str) -> Ven:
    return Ven(
        VenConfig(vtn_url=url, ven_name="farm", **files),
        on_event=lambda _e, _u: "optOut",
        on_malformed=lambda *_: None,
    )


@contextlib.asynccontextmanager
async def _answering(status: int) -> AsyncIterator[str]:
    """A web server that answers every POST with `status`."""

    async def _handler(_request: web.Request) -> web.Response:
        return web.Response(status=status, text="no")

    app = web.Application()
    app.router.add_post(PATH_PREFIX + "/{service}", _handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}{PATH_PREFIX}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("status", [401, 403])
async def test_http_refusal_is_unauthorized(socket_enabled: None, status: int) -> None:
    """HTTP 401/403: the registration fails as Unauthorized; a poll says why."""
    async with _answering(status) as url:
        ven = _ven(url)
        try:
            with pytest.raises(Unauthorized):
                await ven.register()
            assert not await ven.poll()
            assert ven.refusal == f"HTTP {status}"
        finally:
            await ven.close()


async def test_server_error_is_not_a_refusal(socket_enabled: None) -> None:
    """HTTP 500 is a VTN that cannot answer, not a refused certificate."""
    async with _answering(500) as url:
        ven = _ven(url)
        try:
            with pytest.raises(CannotConnect):
                await ven.register()
            assert not await ven.poll()
            assert ven.refusal is None
        finally:
            await ven.close()


@contextlib.contextmanager
def _tls12_server(pki: Pki, trusted_ca: str) -> Iterator[str]:
    """A TLS 1.2 server that trusts only client certificates of `trusted_ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(*pki.issue("vtn", server=True))
    context.load_verify_locations(trusted_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def _serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with contextlib.suppress(OSError), conn:
                context.wrap_socket(conn, server_side=True).recv(1)

    thread = threading.Thread(target=_serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}{PATH_PREFIX}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def test_tls_alert_on_the_certificate_is_unauthorized(
    socket_enabled: None, tmp_path: Path
) -> None:
    """The VTN's TLS alert (unknown CA) refuses the certificate: Unauthorized."""
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = Pki(tmp_path / "ours")
    theirs = Pki(tmp_path / "theirs")
    cert, key = ours.issue("farm")
    with _tls12_server(ours, theirs.ca_file) as url:
        ven = _ven(url, client_cert=cert, client_key=key, ca_file=ours.ca_file)
        try:
            with pytest.raises(Unauthorized):
                await ven.register()
            assert not await ven.poll()
            assert ven.refusal == "TLS alert TLSV1_ALERT_UNKNOWN_CA"
        finally:
            await ven.close()
