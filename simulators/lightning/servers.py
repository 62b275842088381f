"""Transports of a simulated node: lightningd's unix-socket JSON-RPC and CLNRest.

- JSON-RPC 2.0 on a unix socket, framed like lightningd: requests are JSON objects
  written back to back (pyln-client sends one per connection), each answer is a JSON
  object followed by a blank line (``"\\n\\n"``), which is what pyln-client reads up to.
- CLNRest: HTTPS with a self-signed certificate made at start; ``POST /v1/<method>``
  with a JSON object of parameters and a ``Rune`` header, checked with ``checkrune``
  exactly as CLNRest does. Success is HTTP 201 with the result; failures carry the
  RPC error object (``{"code", "message"[, "data"]}``) with 403 (no rune),
  401 (rune refused), 404 (unknown method) or 500 (the method failed).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
import hashlib
import ipaddress
import json
import logging
import os
from pathlib import Path
import socket
import ssl
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .node import NodeRestart, RpcFault, SimNode

_LOGGER = logging.getLogger(__name__)


def _bind_unix(path: str) -> socket.socket:
    """A bound unix socket; long paths go through /proc/self/fd like pyln does."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(path.encode()) < 100:
            sock.bind(path)
        else:
            dirfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
            try:
                sock.bind(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
            finally:
                os.close(dirfd)
    except BaseException:
        sock.close()
        raise
    return sock


class RpcSocketServer:
    """lightningd's JSON-RPC on a unix socket, for one node."""

    def __init__(self, node: SimNode, path: str | os.PathLike[str]) -> None:
        self.node = node
        self.path = str(path)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def close(self) -> None:
        """Stop for good (a pending simulated restart will not come back)."""
        self._closed = True
        await self.stop()

    async def start(self) -> None:
        """Listen (again)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(
            self._handle, sock=_bind_unix(self.path)
        )
        self.node.rpc_path = self.path
        if self.restart not in self.node.restart_hooks:
            self.node.restart_hooks.append(self.restart)

    async def stop(self) -> None:
        """Stop listening, drop every connection, cancel running commands."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def restart(self, downtime: float) -> None:
        """Crash: close everything, stay away ``downtime`` seconds, come back."""
        await self.stop()
        await asyncio.sleep(downtime)
        if not self._closed:
            await self.start()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        lock = asyncio.Lock()
        decoder = json.JSONDecoder()
        buffer = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buffer += data
                while True:
                    try:
                        text = buffer.decode()
                    except UnicodeDecodeError:
                        break  # a multi-byte character is split: read on
                    stripped = text.lstrip()
                    if not stripped:
                        buffer = b""
                        break
                    try:
                        request, end = decoder.raw_decode(stripped)
                    except json.JSONDecodeError:
                        buffer = stripped.encode()
                        break
                    buffer = stripped[end:].encode()
                    task = asyncio.create_task(self._serve(request, writer, lock))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)

    async def _serve(
        self, request: Any, writer: asyncio.StreamWriter, lock: asyncio.Lock
    ) -> None:
        if not isinstance(request, dict):
            response: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "Expected {} for json command"},
            }
        else:
            response = {"jsonrpc": "2.0", "id": request.get("id")}
            method = request.get("method")
            try:
                if method == "notifications":
                    response["result"] = {}
                elif not isinstance(method, str):
                    raise RpcFault(-32600, "Expected string for method")
                else:
                    response["result"] = await self.node.call(
                        method, request.get("params")
                    )
            except RpcFault as err:
                response["error"] = err.to_json()
            except NodeRestart:
                writer.transport.abort()
                return
            except Exception as err:
                _LOGGER.exception("simulated %s failed", method)
                response["error"] = {"code": -1, "message": f"simulator error: {err}"}
        payload = json.dumps(response, ensure_ascii=False).encode() + b"\n\n"
        async with lock:
            if writer.is_closing():
                return
            writer.write(payload)
            with contextlib.suppress(ConnectionError):
                await writer.drain()


def make_certificate(directory: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for 127.0.0.1/localhost.

    Returns (certificate path, key path, sha256 fingerprint of the DER, hex).
    The certificate is its own CA: clients pin it (``ca.pem``) or its fingerprint.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cln rest server")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("cln"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "server.pem"
    key_path = directory / "server-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    fingerprint = hashlib.sha256(
        cert.public_bytes(serialization.Encoding.DER)
    ).hexdigest()
    return cert_path, key_path, fingerprint


class RestServer:
    """CLNRest for one node."""

    def __init__(
        self, node: SimNode, cert_dir: Path, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.cert_path, self.key_path, self.fingerprint = make_certificate(cert_dir)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:3010``."""
        return f"https://{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve HTTPS."""
        app = web.Application(middlewares=[self._down_middleware])
        app.router.add_post("/v1/{method}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _down_middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        if self.node.down:
            _drop(request)
        response: web.StreamResponse = await handler(request)
        return response

    async def _post(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        body = await request.read()
        try:
            params = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            return _error(500, RpcFault(-32700, "Parse error"))
        if not isinstance(params, dict):
            return _error(500, RpcFault(-32602, "Expected object for params"))
        rune = request.headers.get("Rune")
        if rune is None:
            return _error(403, RpcFault(1501, "Not authorized: Missing rune"))
        try:
            await self.node.call(
                "checkrune", {"rune": rune, "method": method, "params": params}
            )
        except RpcFault as err:
            return _error(401, err)
        try:
            result = await self.node.call(method, params)
        except RpcFault as err:
            return _error(404 if err.code == -32601 else 500, err)
        except NodeRestart:
            _drop(request)
        return web.json_response(result, status=201)


def _error(status: int, err: RpcFault) -> web.Response:
    return web.json_response(err.to_json(), status=status)


def _drop(request: web.Request) -> None:
    """Cut the connection without an answer (the node 'crashed')."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError
