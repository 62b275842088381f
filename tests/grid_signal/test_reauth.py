"""Reauthentication: the VTN refuses the VEN's certificate; new files bring it back.

openleadr's own VTN, over TLS with client certificates (tls_vtn.py): a secure
request whose certificate is not the one the VTN knows for the VEN is answered
with OpenADR's 463 (not registered or authorized).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hashgrid.const import DOMAIN

from .conftest import VEN_NAME, move_to, poll, unload_all
from .test_entry import state, t0
from .tls_vtn import Pki, TlsVtn

HOUR = timedelta(hours=1)


@pytest.fixture
async def tls_vtn(socket_enabled: None, tmp_path: Path) -> AsyncIterator[TlsVtn]:
    """openleadr's VTN over HTTPS, requiring client certificates of a test CA."""
    vtn = TlsVtn(poll_interval=HOUR, pki=Pki(tmp_path))
    await vtn.start()
    try:
        yield vtn
    finally:
        await vtn.stop()


@pytest.fixture(autouse=True)
async def _unload(hass: HomeAssistant) -> AsyncIterator[None]:
    yield
    await unload_all(hass)


async def _add_tls_entry(
    hass: HomeAssistant, vtn: TlsVtn, cert: str, key: str
) -> ConfigEntry:
    assert vtn.pki is not None
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{VEN_NAME} @ 127.0.0.1",
        data={
            "kind": "grid_signal",
            "vtn_url": vtn.url,
            "ven_name": VEN_NAME,
            "client_cert": cert,
            "client_key": key,
            "ca_file": vtn.pki.ca_file,
        },
        unique_id=f"{vtn.url}#{VEN_NAME}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _reauth_flows(hass: HomeAssistant, entry: ConfigEntry) -> list[dict[str, Any]]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
        and flow["context"].get("entry_id") == entry.entry_id
    ]


async def _text(hass: HomeAssistant, category: str, key: str) -> str:
    """Return the English text a user sees for a translation key."""
    texts = await async_get_translations(hass, "en", category, [DOMAIN])
    text = texts.get(f"component.{DOMAIN}.{category}.{key}")
    assert text, key
    return text


async def test_refused_certificate_asks_for_new_files(
    hass: HomeAssistant, tls_vtn: TlsVtn, freezer: FrozenDateTimeFactory
) -> None:
    """The VTN starts refusing: a reauth flow; new files reload and reconnect."""
    assert tls_vtn.pki is not None
    now = t0()
    freezer.move_to(now)
    old_cert, old_key = tls_vtn.pki.issue("farm-2026")
    tls_vtn.expect(VEN_NAME, old_cert)
    entry = await _add_tls_entry(hass, tls_vtn, old_cert, old_key)
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    tls_vtn.add_event(VEN_NAME, start=now + timedelta(minutes=5), duration=HOUR)
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=6))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert _reauth_flows(hass, entry) == []

    # The utility replaces the VEN's certificate: the old one is refused (463).
    new_cert, new_key = tls_vtn.pki.issue("farm-2027")
    tls_vtn.expect(VEN_NAME, new_cert)
    await poll(hass, entry)
    flows = _reauth_flows(hass, entry)
    assert len(flows) == 1
    assert flows[0]["step_id"] == "reauth_confirm_grid_signal"
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF
    # The known event stays in force while the certificate is being replaced.
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "client_cert": old_cert,
            "client_key": old_key,
            "ca_file": tls_vtn.pki.ca_file,
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unauthorized"}
    assert "refused this certificate" in await _text(
        hass, "config", "error.unauthorized"
    )
    assert entry.data["client_cert"] == old_cert

    registrations = tls_vtn.registrations
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "client_cert": new_cert,
            "client_key": new_key,
            "ca_file": tls_vtn.pki.ca_file,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_certificate_successful"
    assert "accepts the new certificate" in await _text(
        hass, "config", "abort.reauth_certificate_successful"
    )
    await hass.async_block_till_done()
    assert entry.data["client_cert"] == new_cert
    assert entry.data["client_key"] == new_key
    assert entry.state is ConfigEntryState.LOADED
    assert tls_vtn.registrations > registrations
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert _reauth_flows(hass, entry) == []


async def test_refused_at_startup_keeps_the_schedule_and_asks(
    hass: HomeAssistant, tls_vtn: TlsVtn
) -> None:
    """Refused from the first poll: the entry loads (disconnected) and asks."""
    assert tls_vtn.pki is not None
    cert, key = tls_vtn.pki.issue("farm-2026")
    tls_vtn.expect(VEN_NAME, tls_vtn.pki.issue("someone-else")[0])
    entry = await _add_tls_entry(hass, tls_vtn, cert, key)
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF
    assert len(_reauth_flows(hass, entry)) == 1


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"client_key": "other.key"}, "key_mismatch"),
        ({"client_cert": "notes.txt"}, "invalid_client_certificate"),
        ({"client_key": "missing.key"}, "unreadable_certificate"),
        ({"ca_file": "notes.txt"}, "invalid_ca_file"),
        ({"ca_file": "/dev/zero"}, "certificate_file_too_large"),
    ],
)
async def test_reauth_refuses_wrong_files(
    hass: HomeAssistant,
    tls_vtn: TlsVtn,
    tmp_path: Path,
    files: dict[str, str],
    error: str,
) -> None:
    """Wrong files: a translated form error; the entry keeps its files."""
    assert tls_vtn.pki is not None
    cert, key = tls_vtn.pki.issue("farm-2026")
    tls_vtn.expect(VEN_NAME, cert)
    entry = await _add_tls_entry(hass, tls_vtn, cert, key)
    before = dict(entry.data)
    new_cert, new_key = tls_vtn.pki.issue("farm-2027")
    tls_vtn.pki.issue("other")
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    tls_vtn.expect(VEN_NAME, new_cert)
    await poll(hass, entry)
    (flow,) = _reauth_flows(hass, entry)

    submitted = {
        "client_cert": new_cert,
        "client_key": new_key,
        "ca_file": tls_vtn.pki.ca_file,
    }
    for field, name in files.items():
        submitted[field] = name if name.startswith("/") else str(tmp_path / name)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], submitted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm_grid_signal"
    assert result["errors"] == {"base": error}
    assert await _text(hass, "config", f"error.{error}")
    assert dict(entry.data) == before
