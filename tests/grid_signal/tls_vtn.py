"""openleadr's VTN over TLS with client certificates, and a small PKI for it.

The VTN serves HTTPS, asks every VEN for a client certificate signed by the
test CA and, as openleadr does for a secure request, checks the certificate's
fingerprint against the one it knows for the VEN (its `ven_lookup`): a VEN
whose certificate is not the expected one gets OpenADR's 463 (not registered
or authorized). `expect` changes what it expects: the VTN starts refusing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import ipaddress
from pathlib import Path
import ssl
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openleadr import errors, utils

from simulators.grid_signal import PATH_PREFIX, SimulatedVtn, fix_openleadr_server
from simulators.grid_signal.vtn import free_port


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Pki:
    """A test CA that issues the VTN's server certificate and VEN certificates."""

    folder: Path
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name("HashGrid test CA"))
            .issuer_name(_name("HashGrid test CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = str(self.folder / "ca.pem")
        Path(self.ca_file).write_bytes(
            self.certificate.public_bytes(serialization.Encoding.PEM)
        )

    def issue(self, name: str, *, server: bool = False) -> tuple[str, str]:
        """Write a certificate signed by the CA and its key; return their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()
                ),
                False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        cert_path = self.folder / f"{name}.pem"
        key_path = self.folder / f"{name}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return str(cert_path), str(key_path)


def fingerprint(cert_path: str) -> str:
    """Return a certificate's OpenADR fingerprint (what a utility is given)."""
    return str(utils.certificate_fingerprint(Path(cert_path).read_text()))


@dataclass
class TlsVtn(SimulatedVtn):
    """The simulated VTN served over HTTPS, checking each VEN's certificate."""

    pki: Pki | None = None
    expected: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the VTN's https URL."""
        return f"https://{self.host}:{self.port}{PATH_PREFIX}"

    def expect(self, ven_name: str, cert_path: str) -> None:
        """Accept only this certificate for the VEN from now on."""
        self.expected[ven_name] = fingerprint(cert_path)

    async def start(self) -> None:
        """Serve over TLS; a client certificate of the test CA is required."""
        assert self.pki is not None
        if self.port == 0:
            self.port = free_port(self.host)
        if self.server is None:
            self.server = self._make_server()
        fix_openleadr_server()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.pki.issue("vtn", server=True))
        context.load_verify_locations(self.pki.ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
        self._runner = web.AppRunner(self.server.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(
            self._runner, self.host, self.port, ssl_context=context
        ).start()
        self.running = True

    def _ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        info = super()._ven_lookup(ven_id)
        if info is not None:
            info["fingerprint"] = self.expected.get(info["ven_name"])
        return info

    def _on_register(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        name = str(payload.get("ven_name"))
        if payload.get("fingerprint") != self.expected.get(name):
            raise errors.NotRegisteredOrAuthorizedError(
                f"{name} registers with a certificate this VTN does not know"
            )
        return super()._on_register(payload)
