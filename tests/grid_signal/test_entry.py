"""A grid signal entry in a real Home Assistant against openleadr's own VTN."""

from __future__ import annotations

from datetime import datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.grid_signal import SimulatedVtn

from .conftest import VEN_NAME, coordinator_of, move_to, poll


def eid(hass: HomeAssistant, entry: ConfigEntry, platform: str, key: str) -> str:
    """Return the entity id of one of the entry's entities."""
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_{key}"
    )
    assert found is not None, key
    return found


def state(hass: HomeAssistant, entry: ConfigEntry, platform: str, key: str) -> str:
    """Return the state of one of the entry's entities."""
    found = hass.states.get(eid(hass, entry, platform, key))
    assert found is not None
    return found.state


async def calendar_events(
    hass: HomeAssistant, entry: ConfigEntry, start: datetime, end: datetime
) -> list[dict]:
    """Return the calendar's events between start and end (the calendar action)."""
    calendar = eid(hass, entry, "calendar", "events")
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {"start_date_time": start, "end_date_time": end},
        target={"entity_id": calendar},
        blocking=True,
        return_response=True,
    )
    return response[calendar]["events"]


def t0() -> datetime:
    """A round time a little ahead of the real clock (the clock is frozen there)."""
    return dt_util.utcnow().replace(microsecond=0) + timedelta(seconds=5)


async def test_registers_and_shows_no_event(
    hass: HomeAssistant, entry: ConfigEntry, vtn: SimulatedVtn
) -> None:
    """The VEN registers; nothing is active; the VTN connection is on."""
    assert entry.state is ConfigEntryState.LOADED
    assert vtn.ven_ids == {VEN_NAME: f"ven-{VEN_NAME}"}
    assert coordinator_of(entry).ven_id == f"ven-{VEN_NAME}"
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert state(hass, entry, "sensor", "signal_level") == "0"
    assert state(hass, entry, "sensor", "next_event_start") == "unknown"
    assert state(hass, entry, "switch", "participate") == STATE_ON
    assert state(hass, entry, "calendar", "events") == STATE_OFF


async def test_event_scheduled_active_and_over(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Calendar, next start, on at the start, off at the end; optIn reaches the VTN."""
    now = t0()
    freezer.move_to(now)
    start, duration = now + timedelta(minutes=10), timedelta(minutes=30)
    event_id = vtn.add_event(VEN_NAME, start=start, duration=duration, level=2)
    await poll(hass, entry)

    assert vtn.opts(event_id) == ["optIn"]
    events = await calendar_events(hass, entry, now, now + timedelta(hours=2))
    assert len(events) == 1
    assert dt_util.parse_datetime(events[0]["start"]) == start
    assert dt_util.parse_datetime(events[0]["end"]) == start + duration
    assert "level 2" in events[0]["summary"]
    assert (
        dt_util.parse_datetime(state(hass, entry, "sensor", "next_event_start"))
        == start
    )
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    dr_event = hass.states.get(eid(hass, entry, "event", "dr_event"))
    assert dr_event.attributes["event_type"] == "new"
    assert dr_event.attributes["event_id"] == event_id

    await move_to(hass, freezer, start - timedelta(seconds=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    await move_to(hass, freezer, start)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "2"
    assert state(hass, entry, "calendar", "events") == STATE_ON
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.attributes["event_id"] == event_id
    assert active.attributes["phase"] == "active"

    await move_to(hass, freezer, start + duration)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert state(hass, entry, "sensor", "signal_level") == "0"
    # Past events stay in the calendar.
    events = await calendar_events(hass, entry, now, now + timedelta(hours=2))
    assert [e["description"].split(",")[0] for e in events] == [f"Event {event_id}"]


async def test_randomised_start_and_ramp_up(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The start is shifted within the tolerance; the ramp-up turns the flag on early."""
    now = t0()
    freezer.move_to(now)
    start = now + timedelta(minutes=10)
    event_id = vtn.add_event(
        VEN_NAME,
        start=start,
        duration=timedelta(minutes=30),
        level=3,
        start_after=timedelta(minutes=5),
        ramp_up=timedelta(minutes=2),
    )
    await poll(hass, entry)
    scheduled = coordinator_of(entry).schedule.get(event_id)
    assert scheduled is not None
    assert timedelta(0) < scheduled.offset <= timedelta(minutes=5)
    assert scheduled.start == start + scheduled.offset
    assert (
        dt_util.parse_datetime(state(hass, entry, "sensor", "next_event_start"))
        == scheduled.start
    )

    await move_to(hass, freezer, scheduled.start - timedelta(minutes=3))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    await move_to(hass, freezer, scheduled.start - timedelta(minutes=2))
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.state == STATE_ON
    assert active.attributes["phase"] == "ramp_up"
    assert state(hass, entry, "sensor", "signal_level") == "3"
    await move_to(hass, freezer, scheduled.start)
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.attributes["phase"] == "active"
    await move_to(hass, freezer, scheduled.end)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF


async def test_modification_and_cancellation(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A modified event moves and changes level; a cancelled one disappears."""
    now = t0()
    freezer.move_to(now)
    start = now + timedelta(minutes=10)
    event_id = vtn.add_event(
        VEN_NAME, start=start, duration=timedelta(minutes=30), level=1
    )
    await poll(hass, entry)
    new_start = now + timedelta(minutes=20)
    vtn.modify_event(VEN_NAME, event_id, level=3, start=new_start)
    await poll(hass, entry)

    assert vtn.opts(event_id) == ["optIn", "optIn"]
    dr_event = hass.states.get(eid(hass, entry, "event", "dr_event"))
    assert dr_event.attributes["event_type"] == "modified"
    assert dr_event.attributes["modification_number"] == 1
    events = await calendar_events(hass, entry, now, now + timedelta(hours=2))
    assert len(events) == 1
    assert dt_util.parse_datetime(events[0]["start"]) == new_start
    assert "level 3" in events[0]["summary"]
    await move_to(hass, freezer, start + timedelta(minutes=5))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    await move_to(hass, freezer, new_start + timedelta(minutes=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "3"

    vtn.cancel_event(VEN_NAME, event_id)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert state(hass, entry, "sensor", "signal_level") == "0"
    dr_event = hass.states.get(eid(hass, entry, "event", "dr_event"))
    assert dr_event.attributes["event_type"] == "cancelled"
    assert await calendar_events(hass, entry, now, now + timedelta(hours=2)) == []
    assert len(vtn.opts(event_id)) == 3  # the cancellation is acknowledged


async def test_opt_out_action_and_participate_switch(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """opt_out sends optOut for one event; the switch opts out of all, and back in."""
    now = t0()
    freezer.move_to(now)
    first = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=1), duration=timedelta(minutes=30)
    )
    second = vtn.add_event(
        VEN_NAME, start=now + timedelta(hours=1), duration=timedelta(minutes=30)
    )
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=2))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    response = await hass.services.async_call(
        DOMAIN,
        "opt_out",
        {"config_entry_id": entry.entry_id, "event_id": first},
        blocking=True,
        return_response=True,
    )
    assert response == {"event_id": first, "opt": "optOut", "sent": True}
    assert vtn.opts(first) == ["optIn", "optOut"]
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    # The grid still signals; HashGrid just does not take part.
    assert state(hass, entry, "sensor", "signal_level") == "2"

    await hass.services.async_call(
        "switch",
        "turn_off",
        target={"entity_id": eid(hass, entry, "switch", "participate")},
        blocking=True,
    )
    assert vtn.opts(second) == ["optIn", "optOut"]
    await hass.services.async_call(
        "switch",
        "turn_on",
        target={"entity_id": eid(hass, entry, "switch", "participate")},
        blocking=True,
    )
    assert vtn.opts(second) == ["optIn", "optOut", "optIn"]
    # The action's opt-out holds when participation resumes.
    assert vtn.opts(first) == ["optIn", "optOut"]
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF

    with pytest.raises(Exception, match="no DR event"):
        await hass.services.async_call(
            DOMAIN,
            "opt_out",
            {"config_entry_id": entry.entry_id, "event_id": "nope"},
            blocking=True,
            return_response=True,
        )


async def test_unreachable_vtn_keeps_the_schedule(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """While the VTN is gone the schedule stays in force; it recovers afterwards."""
    now = t0()
    freezer.move_to(now)
    start = now + timedelta(minutes=10)
    event_id = vtn.add_event(
        VEN_NAME, start=start, duration=timedelta(minutes=30), level=2
    )
    await poll(hass, entry)

    await vtn.stop()
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF
    await move_to(hass, freezer, start + timedelta(minutes=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "2"
    events = await calendar_events(hass, entry, now, now + timedelta(hours=2))
    assert [e["description"].split(",")[0] for e in events] == [f"Event {event_id}"]

    # An opt-out while the VTN is away is sent when it is back.
    response = await hass.services.async_call(
        DOMAIN,
        "opt_out",
        {"config_entry_id": entry.entry_id, "event_id": event_id},
        blocking=True,
        return_response=True,
    )
    assert response["sent"] is False
    await vtn.start()
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    assert vtn.opts(event_id) == ["optIn", "optOut"]
    assert coordinator_of(entry).pending_opts == set()


async def test_restart_in_the_middle_of_an_event(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """After a restart the stored event is active at once, even with no VTN."""
    now = t0()
    freezer.move_to(now)
    start = now + timedelta(minutes=1)
    event_id = vtn.add_event(
        VEN_NAME, start=start, duration=timedelta(minutes=30), level=3
    )
    await poll(hass, entry)
    await move_to(hass, freezer, start + timedelta(minutes=5))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    await vtn.stop()  # no poll can help: the state must come from the store
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.state == STATE_ON
    assert active.attributes["event_id"] == event_id
    assert state(hass, entry, "sensor", "signal_level") == "3"
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF

    await vtn.start()
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    await move_to(hass, freezer, start + timedelta(minutes=30))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF


async def test_price_and_setpoint_sensors_appear_when_sent(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A price program adds the price sensor, with the interval's price."""
    registry = er.async_get(hass)
    assert not registry.async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_price")
    now = t0()
    freezer.move_to(now)
    start = now + timedelta(minutes=1)
    vtn.add_event(
        VEN_NAME,
        start=start,
        duration=timedelta(minutes=20),
        signal_name="ELECTRICITY_PRICE",
        signal_type="price",
        intervals=[(timedelta(minutes=10), 0.31), (timedelta(minutes=10), 0.45)],
    )
    vtn.add_event(
        VEN_NAME,
        start=start,
        duration=timedelta(minutes=20),
        signal_name="LOAD_DISPATCH",
        signal_type="setpoint",
        level=1500,
    )
    await poll(hass, entry)
    await move_to(hass, freezer, start + timedelta(minutes=1))
    assert float(state(hass, entry, "sensor", "price")) == pytest.approx(0.31)
    assert float(state(hass, entry, "sensor", "setpoint")) == pytest.approx(1500)
    await move_to(hass, freezer, start + timedelta(minutes=11))
    assert float(state(hass, entry, "sensor", "price")) == pytest.approx(0.45)
    await move_to(hass, freezer, start + timedelta(minutes=21))
    assert state(hass, entry, "sensor", "price") == "unknown"
