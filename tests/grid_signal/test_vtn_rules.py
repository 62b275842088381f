"""OpenADR 2.0b rules against misbehaving VTNs: no event is missed or cut short."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant

from simulators.grid_signal import SimulatedVtn

from .conftest import VEN_NAME, coordinator_of, move_to, poll
from .test_entry import eid, state, t0

HOUR = timedelta(hours=1)


async def test_completed_event_kept_in_the_list(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A running event the VTN lists as "completed" again and again breaks nothing.

    openleadr's client deletes its answer for such an event, then reads it the
    next time the event is listed (KeyError): it opted out of the whole list and
    never showed HashGrid a new event in it.
    """
    now = t0()
    freezer.move_to(now)
    running = vtn.add_event(VEN_NAME, start=now, duration=HOUR, level=2)
    await poll(hass, entry)
    assert vtn.opts(running) == ["optIn"]

    vtn.wire_faults[running] = {"status": "completed"}
    for _ in range(2):
        vtn.push(VEN_NAME)
        await poll(hass, entry)
    fresh = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=10), duration=HOUR, level=3
    )
    await poll(hass, entry)

    assert vtn.opts(fresh) == ["optIn"]
    assert "optOut" not in vtn.opts(running)
    assert coordinator_of(entry).schedule.get(fresh) is not None
    await move_to(hass, freezer, now + timedelta(minutes=11))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    await move_to(hass, freezer, now + timedelta(minutes=71))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert hass.states.get(eid(hass, entry, "sensor", "signal_level")).state == "0"
