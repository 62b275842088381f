"""Check the VEN's certificate, key and CA files before openleadr uses them (HA-free).

openleadr reads the certificate and key whole and only fails when it signs the
first message; `ssl` reads the CA file when it connects. Reading each file here
first, with a size limit, turns a wrong path (a device such as /dev/zero, a FIFO,
a directory), a key of another certificate or a CA file that holds no certificate
into a distinct error at once.
"""

from __future__ import annotations

import os
import stat

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# Far above any real certificate, key or CA bundle (a full public CA bundle is ~220 kB).
MAX_FILE_BYTES = 1 << 20


class CredentialsError(ValueError):
    """A certificate, key or CA file cannot be used."""


class UnreadableFile(CredentialsError):
    """The file does not exist, cannot be opened, or is not a regular file."""


class FileTooLarge(CredentialsError):
    """The file is larger than any certificate, key or CA bundle (MAX_FILE_BYTES)."""


class InvalidCertificate(CredentialsError):
    """The client certificate file holds no PEM certificate."""


class InvalidKey(CredentialsError):
    """The client key file holds no unencrypted PEM private key."""


class UnsupportedKey(CredentialsError):
    """The private key is of a type that cannot sign OpenADR messages (not RSA or EC)."""


class KeyMismatch(CredentialsError):
    """The private key is not the key of the client certificate."""


class InvalidCaFile(CredentialsError):
    """The CA file holds no PEM certificate."""


def read_limited(path: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a file of at most `limit` bytes; raise a CredentialsError if not."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise UnreadableFile(f"{path} is not a file")
            data = file.read(limit + 1)
    except OSError as err:
        raise UnreadableFile(f"{path} cannot be read: {err.strerror}") from err
    if len(data) > limit:
        raise FileTooLarge(f"{path} is larger than {limit} bytes")
    return data


def _public_key(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def check_credentials(
    client_cert: str | None, client_key: str | None, ca_file: str | None
) -> None:
    """Check the files given (reads them: run it in an executor).

    The certificate and key must be PEM and belong together, the key RSA or EC
    (what OpenADR signs with); the CA file must hold at least one PEM certificate.
    """
    if client_cert and client_key:
        cert_data = read_limited(client_cert)
        key_data = read_limited(client_key)
        try:
            certificate = x509.load_pem_x509_certificate(cert_data)
        except ValueError as err:
            raise InvalidCertificate(f"{client_cert}: {err}") from err
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as err:
            raise InvalidKey(f"{client_key} is not an unencrypted PEM key") from err
        # OpenADR 2.0b signs with RSA or ECDSA; openleadr fails on any other key.
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise UnsupportedKey(f"{client_key}: a {type(key).__name__} cannot sign")
        if _public_key(certificate.public_key()) != _public_key(key.public_key()):
            raise KeyMismatch(f"{client_key} is not the key of {client_cert}")
    if ca_file:
        ca_data = read_limited(ca_file)
        try:
            x509.load_pem_x509_certificates(ca_data)
        except ValueError as err:
            raise InvalidCaFile(f"{ca_file}: {err}") from err
