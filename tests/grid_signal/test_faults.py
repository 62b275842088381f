"""Bad events from the VTN (a clear log, a repair issue, never a crash), telemetry,
diagnostics and the entity registry."""

from __future__ import annotations

from datetime import timedelta
import logging
import tracemalloc

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.grid_signal.coordinator import issue_id
from custom_components.hashgrid.grid_signal.ven import MAX_RESPONSE_BYTES
from simulators.grid_signal import SimulatedVtn

from .conftest import (
    VEN_NAME,
    add_entry,
    coordinator_of,
    move_to,
    poll,
    unload_all,
)
from .test_entry import calendar_events, eid, state, t0

MINUTES_30 = timedelta(minutes=30)


@pytest.mark.parametrize(
    ("fault", "code", "opt_sent"),
    [
        # A payload that is not a number: the XML does not validate.
        ({"wire_level": "lots"}, "malformed", False),
        # A SIMPLE level openleadr's own server would refuse to send.
        ({"wire_level": "7"}, "out_of_range", True),
        # The active period is shorter than the signal's interval.
        ({"wire_active_duration": "PT5M"}, "contradictory", True),
    ],
)
async def test_bad_event_raises_a_repair_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, str],
    code: str,
    opt_sent: bool,
) -> None:
    """The event is not scheduled, the user is told, the rest goes on."""
    now = t0()
    freezer.move_to(now)
    good = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=5), duration=MINUTES_30, level=1
    )
    await poll(hass, entry)
    bad = vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=5),
        duration=MINUTES_30,
        level=2,
        **fault,  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.WARNING, logger="custom_components.hashgrid"):
        await poll(hass, entry)

    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id, bad))
    assert issue is not None
    assert issue.translation_key == f"grid_signal_{code}"
    assert issue.translation_placeholders["event_id"] == bad
    assert f"sent event {bad} that HashGrid cannot honour ({code})" in caplog.text
    assert vtn.opts(bad) == (["optOut"] if opt_sent else [])
    assert set(vtn.opts(good)) == {"optIn"}
    dr_event = hass.states.get(eid(hass, entry, "event", "dr_event"))
    assert dr_event.attributes["event_type"] == "rejected"
    assert dr_event.attributes["problem"] == code

    events = await calendar_events(hass, entry, now, now + timedelta(hours=2))
    assert [e["description"].split(",")[0] for e in events] == [f"Event {good}"]
    await move_to(hass, freezer, now + timedelta(minutes=6))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "1"  # not the bad level
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON


async def test_bad_modification_withdraws_the_event(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A valid event whose modification is bad is no longer in force; a fix clears it."""
    now = t0()
    freezer.move_to(now)
    event_id = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=1), duration=MINUTES_30, level=2
    )
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=2))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    vtn.wire_faults[event_id] = {"level": "9"}
    vtn.modify_event(VEN_NAME, event_id, level=3)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, event_id))

    del vtn.wire_faults[event_id]
    vtn.modify_event(VEN_NAME, event_id, level=3)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "3"
    assert not registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, event_id))


async def test_telemetry_reports_the_chosen_sensor(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """The VTN asks for reports; the chosen sensor's power arrives there in W."""
    from simulators.grid_signal import running_vtn

    hass.states.async_set("sensor.site_power", "2.5", {"unit_of_measurement": "kW"})
    async with running_vtn(
        poll_interval=timedelta(hours=1),
        request_telemetry=True,
        telemetry_interval=timedelta(seconds=1),
    ) as vtn:
        entry = await add_entry(
            hass, vtn, options={"telemetry_sensor": "sensor.site_power"}
        )
        try:
            await vtn.wait_for_telemetry(1, within=15)
            assert vtn.telemetry[0].value == pytest.approx(2500)
            assert vtn.telemetry[0].ven_id == f"ven-{VEN_NAME}"
            diagnostics = coordinator_of(entry).diagnostics()
            assert diagnostics["telemetry_requested"] is True
        finally:
            await unload_all(hass)


async def test_diagnostics(
    hass: HomeAssistant, hass_client, entry: ConfigEntry, vtn: SimulatedVtn
) -> None:
    """Diagnostics show the connection and the schedule, not the fingerprint."""
    now = dt_util.utcnow()
    vtn.add_event(VEN_NAME, start=now + timedelta(hours=1), duration=MINUTES_30)
    await poll(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    runtime = diagnostics["runtime"]
    assert runtime["connected"] is True
    assert runtime["ven_id"] == f"ven-{VEN_NAME}"
    assert len(runtime["schedule"]["events"]) == 1
    assert diagnostics["entry"]["data"]["ven_name"] == VEN_NAME


async def test_junk_and_huge_answers_are_not_connected(
    hass: HomeAssistant, entry: ConfigEntry, vtn: SimulatedVtn
) -> None:
    """Junk mentioning oadrPayload is no VTN; a 64 MiB answer is cut off early."""
    vtn.junk = b"<html>502 Bad Gateway: oadrPayload expected</html>"
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF

    header = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07">'
    )
    vtn.junk = header + b" " * (64 * 1024 * 1024)
    tracemalloc.start()
    try:
        await poll(hass, entry)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF
    print(f"peak while polling a 64 MiB answer: {peak / 2**20:.1f} MiB")
    # Read up to the cap, not the whole 64 MiB (the VTN's copy predates this).
    assert peak < MAX_RESPONSE_BYTES * 2, peak

    vtn.junk = None
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
