"""The grid signal config flow against openleadr's VTN: register, errors, options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import logging
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ConfigEntryError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hashgrid.const import DOMAIN
from simulators.grid_signal import SimulatedVtn, free_port
from tests.flows import open_form

from .conftest import VEN_NAME, add_entry, unload_all


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


async def _form(hass: HomeAssistant) -> str:
    return await open_form(hass, "grid_signal")


async def _submit(hass: HomeAssistant, flow_id: str, **data: Any) -> dict[str, Any]:
    return await hass.config_entries.flow.async_configure(flow_id, data)


async def test_registers_and_creates_the_entry(
    hass: HomeAssistant, vtn: SimulatedVtn
) -> None:
    """Registering succeeds: the entry is made, loads and refuses a duplicate."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url + "/", ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Demand response {VEN_NAME}"
    assert result["data"] == {
        "kind": "grid_signal",
        "vtn_url": vtn.url,
        "ven_name": VEN_NAME,
    }
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.unique_id == f"{vtn.url}#{VEN_NAME}"
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert VEN_NAME in vtn.ven_ids

    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_nothing_listening(hass: HomeAssistant, socket_enabled: None) -> None:
    """No VTN at the URL: cannot_connect."""
    flow_id = await _form(hass)
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    result = await _submit(hass, flow_id, vtn_url=url, ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_rejected(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """The VTN refuses this VEN: rejected."""
    vtn.reject.add("stranger")
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name="stranger")
    assert result["errors"] == {"base": "rejected"}


async def test_certificate_mismatch(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """A fingerprint is expected but the VTN's messages are not signed with it."""
    flow_id = await _form(hass)
    result = await _submit(
        hass,
        flow_id,
        vtn_url=vtn.url,
        ven_name=VEN_NAME,
        vtn_fingerprint="00:11:22:33:44:55:66:77:88:99",
    )
    assert result["errors"] == {"base": "certificate_mismatch"}
    assert VEN_NAME not in vtn.ven_ids


async def test_certificate_files(
    hass: HomeAssistant, vtn: SimulatedVtn, tmp_path: Any
) -> None:
    """A certificate without its key, or files that do not exist, are refused."""
    flow_id = await _form(hass)
    result = await _submit(
        hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME, client_cert="/nope.pem"
    )
    assert result["errors"] == {"base": "certificate_incomplete"}
    result = await _submit(
        hass,
        flow_id,
        vtn_url=vtn.url,
        ven_name=VEN_NAME,
        client_cert=str(tmp_path / "missing.pem"),
        client_key=str(tmp_path / "missing.key"),
    )
    assert result["errors"] == {"base": "unreadable_certificate"}


async def test_reconfigure(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """A new VEN name registers again and becomes the entry's identity."""
    entry = await add_entry(hass, vtn)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_grid_signal"
    vtn.reject.add("renamed-bad")
    result = await _submit(
        hass, result["flow_id"], vtn_url=vtn.url, ven_name="renamed-bad"
    )
    assert result["errors"] == {"base": "rejected"}
    result = await _submit(hass, result["flow_id"], vtn_url=vtn.url, ven_name="barn")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["ven_name"] == "barn"
    assert entry.unique_id == f"{vtn.url}#barn"
    assert "barn" in vtn.ven_ids


async def test_options_pick_the_telemetry_sensor(
    hass: HomeAssistant, vtn: SimulatedVtn
) -> None:
    """The options flow stores the power sensor to report."""
    entry = await add_entry(hass, vtn)
    hass.states.async_set("sensor.site_power", "100", {"device_class": "power"})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "grid_signal"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"telemetry_sensor": "sensor.site_power"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {"telemetry_sensor": "sensor.site_power"}
    assert entry.state is config_entries.ConfigEntryState.LOADED


type _Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _write_key(path: Path, key: _Key | None = None) -> _Key:
    key = key or ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def _write_certificate(path: Path, key: _Key) -> None:
    """A self-signed certificate of the key, as a utility's test CA would issue."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, VEN_NAME)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(
            key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        )
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """A certificate, its own key, a key of another certificate, a few wrong files."""
    key = _write_key(tmp_path / "ven.key")
    _write_certificate(tmp_path / "ven.pem", key)
    _write_key(tmp_path / "other.key")
    rsa_key = _write_key(tmp_path / "rsa.key", rsa.generate_private_key(65537, 2048))
    _write_certificate(tmp_path / "rsa.pem", rsa_key)
    ed_key = _write_key(tmp_path / "ed25519.key", ed25519.Ed25519PrivateKey.generate())
    _write_certificate(tmp_path / "ed25519.pem", ed_key)
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "encrypted.key").write_bytes(encrypted)
    os.mkfifo(tmp_path / "fifo")
    return {
        name: str(tmp_path / name)
        for name in (
            "ven.pem",
            "ven.key",
            "other.key",
            "rsa.pem",
            "rsa.key",
            "ed25519.pem",
            "ed25519.key",
            "notes.txt",
            "encrypted.key",
            "fifo",
        )
    }


def _assert_nothing_stored(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    assert hass.config_entries.async_entries(DOMAIN) == []
    assert VEN_NAME not in vtn.ven_ids


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "garbage",
        "http://",
        "ftp://vtn.example.com/OpenADR2/Simple/2.0b",
        "http://vtn.example.com:99999/OpenADR2",
        "http://vtn example.com/OpenADR2",
    ],
)
async def test_invalid_url(
    hass: HomeAssistant, vtn: SimulatedVtn, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A URL that is not http(s) with a host: invalid_url, not cannot_connect."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=url, ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"vtn_url": "invalid_url"}
    _assert_nothing_stored(hass, vtn)
    assert "Traceback" not in caplog.text
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_blank_ven_name(hass: HomeAssistant, vtn: SimulatedVtn) -> None:
    """A VEN name of spaces is refused before anything is sent to the VTN."""
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name="   ")
    assert result["errors"] == {"ven_name": "empty_name"}
    assert hass.config_entries.async_entries(DOMAIN) == []
    assert not vtn.ven_ids


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"client_cert": "ven.pem", "client_key": "other.key"}, "key_mismatch"),
        ({"client_cert": "rsa.pem", "client_key": "ven.key"}, "key_mismatch"),
        (
            {"client_cert": "ed25519.pem", "client_key": "ed25519.key"},
            "unsupported_key",
        ),
        ({"ca_file": "ven.key"}, "invalid_ca_file"),
        ({"ca_file": "notes.txt"}, "invalid_ca_file"),
        (
            {"client_cert": "notes.txt", "client_key": "ven.key"},
            "invalid_client_certificate",
        ),
        (
            {"client_cert": "ven.key", "client_key": "ven.key"},
            "invalid_client_certificate",
        ),
        ({"client_cert": "ven.pem", "client_key": "ven.pem"}, "invalid_client_key"),
        (
            {"client_cert": "ven.pem", "client_key": "encrypted.key"},
            "invalid_client_key",
        ),
        ({"client_cert": "ven.pem", "client_key": "fifo"}, "unreadable_certificate"),
        ({"ca_file": "/nonexistent/ca.pem"}, "unreadable_certificate"),
    ],
)
async def test_wrong_certificate_files(
    hass: HomeAssistant,
    vtn: SimulatedVtn,
    pki: dict[str, str],
    files: dict[str, str],
    error: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each wrong file is its own translated error; nothing is stored or logged."""
    caplog.set_level(logging.INFO)
    flow_id = await _form(hass)
    paths = {field: pki.get(name, name) for field, name in files.items()}
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME, **paths)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    _assert_nothing_stored(hass, vtn)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("field", ["client_cert", "client_key", "ca_file"])
async def test_endless_file_is_refused(
    hass: HomeAssistant, vtn: SimulatedVtn, pki: dict[str, str], field: str
) -> None:
    """/dev/zero as any of the files is refused after reading a bounded amount."""
    files = {
        "client_cert": pki["ven.pem"],
        "client_key": pki["ven.key"],
        field: "/dev/zero",
    }
    if field == "ca_file":
        files = {"ca_file": "/dev/zero"}
    flow_id = await _form(hass)
    result = await _submit(hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME, **files)
    assert result["errors"] == {"base": "certificate_file_too_large"}
    _assert_nothing_stored(hass, vtn)


@pytest.mark.parametrize("name", ["ven", "rsa"])
async def test_matching_certificate_files_register(
    hass: HomeAssistant, vtn: SimulatedVtn, pki: dict[str, str], name: str
) -> None:
    """A certificate (EC or RSA) with its own key and a CA file of certificates pass."""
    flow_id = await _form(hass)
    result = await _submit(
        hass,
        flow_id,
        vtn_url=vtn.url,
        ven_name=VEN_NAME,
        client_cert=pki[f"{name}.pem"],
        client_key=pki[f"{name}.key"],
        ca_file=pki[f"{name}.pem"],
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["client_key"] == pki[f"{name}.key"]
    await hass.async_block_till_done()
    assert VEN_NAME in vtn.ven_ids


async def test_reconfigure_refuses_the_same_mistakes(
    hass: HomeAssistant, vtn: SimulatedVtn, pki: dict[str, str]
) -> None:
    """Reconfigure: a bad URL, a blank name or a foreign key leave the entry as it was."""
    entry = await add_entry(hass, vtn)
    before = dict(entry.data)
    result = await entry.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]
    result = await _submit(hass, flow_id, vtn_url="file:///etc/passwd", ven_name=" ")
    assert result["errors"] == {"vtn_url": "invalid_url", "ven_name": "empty_name"}
    result = await _submit(
        hass,
        flow_id,
        vtn_url=vtn.url,
        ven_name=VEN_NAME,
        client_cert=pki["ven.pem"],
        client_key=pki["other.key"],
    )
    assert result["errors"] == {"base": "key_mismatch"}
    result = await _submit(
        hass, flow_id, vtn_url=vtn.url, ven_name=VEN_NAME, ca_file="/dev/zero"
    )
    assert result["errors"] == {"base": "certificate_file_too_large"}
    assert dict(entry.data) == before
    assert entry.state is config_entries.ConfigEntryState.LOADED


@pytest.mark.parametrize(
    ("files", "state"),
    [
        ({"ca_file": "/dev/zero"}, config_entries.ConfigEntryState.SETUP_ERROR),
        (
            {"client_cert": "ven.pem", "client_key": "other.key"},
            config_entries.ConfigEntryState.SETUP_ERROR,
        ),
        (
            {"ca_file": "/nonexistent/ca.pem"},
            config_entries.ConfigEntryState.SETUP_RETRY,
        ),
    ],
)
async def test_entry_whose_files_went_bad(
    hass: HomeAssistant,
    vtn: SimulatedVtn,
    pki: dict[str, str],
    files: dict[str, str],
    state: config_entries.ConfigEntryState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Files changed after the flow: setup fails with a reason, no traceback, no OOM."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{VEN_NAME} @ 127.0.0.1",
        data={
            "kind": "grid_signal",
            "vtn_url": vtn.url,
            "ven_name": VEN_NAME,
            **{field: pki.get(name, name) for field, name in files.items()},
        },
        unique_id=f"{vtn.url}#{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is state
    assert entry.reason is not None
    assert "cannot be used" in entry.reason
    # Only HA's own report of the translated setup error, no unexpected exception.
    for record in caplog.records:
        if record.exc_info and record.levelno > logging.DEBUG:
            assert isinstance(record.exc_info[1], ConfigEntryError)
    assert VEN_NAME not in vtn.ven_ids
