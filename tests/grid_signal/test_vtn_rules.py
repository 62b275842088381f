"""OpenADR 2.0b rules against misbehaving VTNs: no event is missed or cut short."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.grid_signal import ven as ven_module
from simulators.grid_signal import SimulatedVtn

from .conftest import VEN_NAME, coordinator_of, move_to, poll
from .test_entry import eid, state, t0

HOUR = timedelta(hours=1)


@pytest.fixture
def now(entry: ConfigEntry, freezer: FrozenDateTimeFactory) -> datetime:
    """The test's start: HA's clock frozen at t0, once the entry is set up."""
    start = t0()
    freezer.move_to(start)
    return start


async def test_completed_event_kept_in_the_list(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """A running event the VTN lists as "completed" again and again breaks nothing.

    openleadr's client deletes its answer for such an event, then reads it the
    next time the event is listed (KeyError): it opted out of the whole list and
    never showed HashGrid a new event in it.
    """
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


async def test_modification_keeps_the_randomised_start(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """Modifying a running randomised event never moves its start, nor does a restart."""
    event_id = vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=1),
        duration=HOUR,
        level=1,
        start_after=timedelta(minutes=30),
    )
    await poll(hass, entry)
    scheduled = coordinator_of(entry).schedule.get(event_id)
    assert scheduled is not None
    start = scheduled.start
    await move_to(hass, freezer, start + timedelta(seconds=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    for level in (2, 3, 1, 2, 3):
        vtn.modify_event(VEN_NAME, event_id, level=level)
        await poll(hass, entry)
        active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
        assert active.state == STATE_ON
        assert active.attributes["start"] == start.isoformat()
        assert state(hass, entry, "sensor", "signal_level") == str(level)

    await vtn.stop()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.state == STATE_ON
    assert active.attributes["start"] == start.isoformat()
    await vtn.start()
    vtn.modify_event(VEN_NAME, event_id, level=2)
    await poll(hass, entry)
    assert coordinator_of(entry).schedule.get(event_id).start == start
    await move_to(hass, freezer, start + HOUR - timedelta(seconds=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    await move_to(hass, freezer, start + HOUR)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF


async def test_sites_sharing_a_ven_name_start_apart(
    hass: HomeAssistant, vtn: SimulatedVtn
) -> None:
    """Each site has its own randomisation seed, kept across restarts."""
    from .conftest import add_entry, unload_all

    first = await add_entry(hass, vtn)
    seed = coordinator_of(first).schedule.seed
    assert seed != VEN_NAME
    assert await hass.config_entries.async_reload(first.entry_id)
    await hass.async_block_till_done()
    assert coordinator_of(first).schedule.seed == seed
    await unload_all(hass)


@pytest.mark.parametrize("code", [452, 463])
async def test_lost_registration_registers_again(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
    code: int,
) -> None:
    """A VTN that forgot this VEN gets it registered again; no event is missed."""
    registrations = vtn.registrations
    vtn.lose_registration(VEN_NAME, code)
    event_id = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=5), duration=HOUR, level=2
    )
    await poll(hass, entry)
    assert vtn.registrations == registrations + 1
    assert vtn.opts(event_id) == ["optIn"]
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    await move_to(hass, freezer, now + timedelta(minutes=6))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    # Lost, and the VTN now refuses it: shown as disconnected, tried each poll.
    vtn.lose_registration(VEN_NAME, code)
    vtn.reject.add(VEN_NAME)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    vtn.reject.clear()
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON


async def test_trickling_vtn_is_cut_off(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A VTN sending a byte at a time never holds a poll past its deadline."""
    monkeypatch.setattr(ven_module, "POLL_DEADLINE_S", 0.5)
    vtn.trickle = 0.05  # well under aiohttp's 10 s read timeout
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with asyncio.timeout(10):
        await poll(hass, entry)
    assert loop.time() - began < 2
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_OFF

    vtn.trickle = None
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON


async def test_old_modification_never_replaces_a_newer_one(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """A replayed modification 0 does not cut a 90-minute level-3 event short."""
    event_id = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=1), duration=timedelta(minutes=30)
    )
    await poll(hass, entry)
    vtn.modify_event(VEN_NAME, event_id, level=3, duration=timedelta(minutes=90))
    await poll(hass, entry)
    vtn.replay_event(VEN_NAME, event_id, 0)
    await poll(hass, entry)

    active = coordinator_of(entry).schedule.get(event_id)
    assert active is not None
    assert active.event.modification_number == 1
    await move_to(hass, freezer, now + timedelta(minutes=60))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "3"
    await move_to(hass, freezer, now + timedelta(minutes=91))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF


async def test_overlapping_events_deepest_level_and_priority(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """Overlaps show the deepest level; a higher-priority event governs."""
    shallow = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=1), duration=HOUR, level=1
    )
    deep = vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=10),
        duration=timedelta(minutes=20),
        level=3,
    )
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=5))
    assert state(hass, entry, "sensor", "signal_level") == "1"
    await move_to(hass, freezer, now + timedelta(minutes=15))
    assert state(hass, entry, "sensor", "signal_level") == "3"
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.attributes["event_id"] == deep
    assert active.attributes["level"] == 3
    await move_to(hass, freezer, now + timedelta(minutes=31))
    assert state(hass, entry, "sensor", "signal_level") == "1"
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.attributes["event_id"] == shallow

    # Priority 1 (the highest) governs the events without priority (0: lowest).
    urgent = vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=35),
        duration=timedelta(minutes=10),
        level=2,
        priority=1,
    )
    vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=35),
        duration=timedelta(minutes=10),
        level=3,
    )
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=36))
    assert state(hass, entry, "sensor", "signal_level") == "2"
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.attributes["event_id"] == urgent


async def test_response_never_required_is_never_answered(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """responseRequired=never: no opt reaches the VTN, not even the user's."""
    event_id = vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=1),
        duration=HOUR,
        response_required="never",
    )
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=2))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    await hass.services.async_call(
        "switch",
        "turn_off",
        target={"entity_id": eid(hass, entry, "switch", "participate")},
        blocking=True,
    )
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    response = await hass.services.async_call(
        DOMAIN,
        "opt_out",
        {"config_entry_id": entry.entry_id, "event_id": event_id},
        blocking=True,
        return_response=True,
    )
    assert response["sent"] is False
    vtn.push(VEN_NAME)
    await poll(hass, entry)
    assert vtn.opts(event_id) == []
    assert coordinator_of(entry).pending_opts == set()


async def test_event_left_out_of_the_list_is_cancelled(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """A full event list without a known event cancels it, the empty list too."""
    first = vtn.add_event(VEN_NAME, start=now + timedelta(minutes=1), duration=HOUR)
    second = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=1), duration=HOUR, level=3
    )
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=2))
    assert state(hass, entry, "sensor", "signal_level") == "3"

    vtn.drop_event(VEN_NAME, second)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "2"
    dr_event = hass.states.get(eid(hass, entry, "event", "dr_event"))
    assert dr_event.attributes["event_type"] == "cancelled"
    assert dr_event.attributes["event_id"] == second

    # The last event: openleadr's client skips the empty list HashGrid heeds.
    vtn.drop_event(VEN_NAME, first)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert state(hass, entry, "sensor", "signal_level") == "0"
    assert coordinator_of(entry).schedule.get(first).cancelled
    assert state(hass, entry, "binary_sensor", "vtn_connected") == STATE_ON
    # A restart keeps them cancelled.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF


async def test_completed_event_leaving_the_list_is_not_cancelled(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """A VTN drops an event it calls completed: HashGrid's clock still ends it."""
    running = vtn.add_event(VEN_NAME, start=now, duration=HOUR)
    vtn.wire_faults[running] = {"status": "completed"}
    await poll(hass, entry)
    vtn.drop_event(VEN_NAME, running)
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=30))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON


async def test_event_for_another_ven_is_not_acted_on(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """An event whose targets name only other VENs is answered optOut, not acted on."""
    start = now + timedelta(minutes=1)
    other = vtn.add_event(
        VEN_NAME, start=start, duration=HOUR, targets=[{"ven_id": "ven-neighbour"}]
    )
    group = vtn.add_event(
        VEN_NAME,
        start=start,
        duration=HOUR,
        level=1,
        targets=[{"ven_id": "ven-neighbour"}, {"group_id": "feeder-7"}],
    )
    ours = vtn.add_event(
        VEN_NAME,
        start=start + HOUR,
        duration=HOUR,
        level=3,
        targets=[{"ven_id": "ven-neighbour"}, {"ven_id": f"ven-{VEN_NAME}"}],
    )
    await poll(hass, entry)
    assert vtn.opts(other) == ["optOut"]
    assert vtn.opts(group) == ["optIn"]
    assert vtn.opts(ours) == ["optIn"]
    assert coordinator_of(entry).schedule.get(other) is None
    await move_to(hass, freezer, start + timedelta(minutes=1))
    assert state(hass, entry, "sensor", "signal_level") == "1"
    active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
    assert active.attributes["event_id"] == group
    await move_to(hass, freezer, start + HOUR + timedelta(minutes=1))
    assert state(hass, entry, "sensor", "signal_level") == "3"


async def test_test_events_are_ignored_unless_asked(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """A test event is answered optOut and not in force; the switch makes it count."""
    switch = eid(hass, entry, "switch", "act_on_test_events")
    assert hass.states.get(switch).state == STATE_OFF
    test = vtn.add_event(
        VEN_NAME, start=now + timedelta(minutes=1), duration=HOUR, test_event=True
    )
    await poll(hass, entry)
    assert vtn.opts(test) == ["optOut"]
    await move_to(hass, freezer, now + timedelta(minutes=2))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert state(hass, entry, "sensor", "signal_level") == "0"
    assert state(hass, entry, "sensor", "next_event_start") == "unknown"

    await hass.services.async_call(
        "switch", "turn_on", target={"entity_id": switch}, blocking=True
    )
    await vtn.wait_for_opt(test, "optIn")
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "2"
    # Kept across a restart.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(switch).state == STATE_ON
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    await hass.services.async_call(
        "switch", "turn_off", target={"entity_id": switch}, blocking=True
    )
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    opts = vtn.opts(test)
    assert opts[0] == "optOut"
    assert opts[1] == "optIn"
    assert opts[-1] == "optOut"


async def test_vtn_clock_ahead_raises_a_repair_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """The VTN calls active an event that starts in 3 h here: in force now, an issue."""
    event_id = vtn.add_event(VEN_NAME, start=now + 3 * HOUR, duration=HOUR, level=3)
    vtn.wire_faults[event_id] = {"status": "active"}
    await poll(hass, entry)

    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"grid_signal_clock_skew_{entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders["event_id"] == event_id
    assert issue.translation_placeholders["minutes"] == "180"
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "3"
    assert vtn.opts(event_id) == ["optIn"]
    # Listed again, unchanged: still the VTN's frame, not shifted twice.
    vtn.push(VEN_NAME)
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=59))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    await move_to(hass, freezer, now + timedelta(minutes=61))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    await move_to(hass, freezer, now + 3 * HOUR + timedelta(minutes=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF

    # Statuses that agree with the times clear the issue.
    del vtn.wire_faults[event_id]
    vtn.add_event(VEN_NAME, start=now + 5 * HOUR, duration=HOUR)
    await poll(hass, entry)
    assert (
        ir.async_get(hass).async_get_issue(
            DOMAIN, f"grid_signal_clock_skew_{entry.entry_id}"
        )
        is None
    )


async def test_vtn_clock_behind_keeps_the_event(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """The VTN calls "far" a running event: still in force here, and an issue."""
    event_id = vtn.add_event(VEN_NAME, start=now + timedelta(minutes=1), duration=HOUR)
    vtn.wire_faults[event_id] = {"status": "far"}
    await move_to(hass, freezer, now + timedelta(minutes=30))
    await poll(hass, entry)
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"grid_signal_clock_skew_{entry.entry_id}"
    )
    assert issue.translation_placeholders["direction"] == "behind"
    assert issue.translation_placeholders["minutes"] == "29"
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert vtn.opts(event_id) == ["optIn"]


async def test_flapping_event_is_damped(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """Cancelled and restored on every poll: in force throughout, one repair issue."""
    event_id = vtn.add_event(VEN_NAME, start=now + timedelta(minutes=1), duration=HOUR)
    await poll(hass, entry)
    await move_to(hass, freezer, now + timedelta(minutes=2))
    active = eid(hass, entry, "binary_sensor", "event_active")
    assert hass.states.get(active).state == STATE_ON
    changes: list[str] = []

    @callback
    def _changed(event: Event) -> None:
        if event.data["entity_id"] == active and event.data["new_state"]:
            changes.append(event.data["new_state"].state)

    hass.bus.async_listen("state_changed", _changed)
    minute = now + timedelta(minutes=2)
    for n in range(10):
        if n % 2 == 0:
            vtn.wire_faults[event_id] = {"status": "cancelled"}
        else:
            vtn.wire_faults.pop(event_id)
        vtn.push(VEN_NAME)
        minute += timedelta(seconds=10)
        await move_to(hass, freezer, minute)
        await poll(hass, entry)
    # The first cancellation was honoured; once restored, no more stops.
    assert changes == [STATE_OFF, STATE_ON]
    assert hass.states.get(active).state == STATE_ON
    issue_id = f"grid_signal_flapping_{entry.entry_id}_{event_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    # A cancellation that holds takes effect after the damping time.
    vtn.wire_faults[event_id] = {"status": "cancelled"}
    vtn.push(VEN_NAME)
    await poll(hass, entry)
    await move_to(hass, freezer, minute + timedelta(minutes=14))
    assert hass.states.get(active).state == STATE_ON
    await move_to(hass, freezer, minute + timedelta(minutes=15, seconds=1))
    assert hass.states.get(active).state == STATE_OFF
    assert coordinator_of(entry).schedule.get(event_id).cancelled


async def test_open_ended_event_until_cancelled(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """An event of duration 0 is in force until the VTN cancels it."""
    event_id = vtn.add_event(
        VEN_NAME,
        start=now + timedelta(minutes=1),
        duration=timedelta(days=30),
        level=3,
        # openleadr's server "fixes" the active period from the intervals.
        wire_active_duration="PT0S",
    )
    await poll(hass, entry)
    assert vtn.opts(event_id) == ["optIn"]
    assert not ir.async_get(hass).async_get_issue(
        DOMAIN, f"grid_signal_bad_event_{entry.entry_id}_{event_id}"
    )
    for later in (timedelta(minutes=2), 5 * HOUR, timedelta(days=3)):
        await move_to(hass, freezer, now + later)
        active = hass.states.get(eid(hass, entry, "binary_sensor", "event_active"))
        assert active.state == STATE_ON
        assert active.attributes["end"] is None
        assert state(hass, entry, "sensor", "signal_level") == "3"
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON

    vtn.cancel_event(VEN_NAME, event_id)
    await poll(hass, entry)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    assert state(hass, entry, "sensor", "signal_level") == "0"


async def test_load_control_setpoint_and_capacity_are_shown(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """x-loadControlSetpoint and x-loadControlCapacity each get a sensor."""
    start = now + timedelta(minutes=1)
    capacity = vtn.add_event(
        VEN_NAME,
        start=start,
        duration=timedelta(minutes=20),
        signal_name="LOAD_CONTROL",
        signal_type="x-loadControlCapacity",
        intervals=[(timedelta(minutes=10), 0.5), (timedelta(minutes=10), 0.25)],
    )
    setpoint = vtn.add_event(
        VEN_NAME,
        start=start,
        duration=timedelta(minutes=20),
        signal_name="LOAD_CONTROL",
        signal_type="x-loadControlSetpoint",
        level=120,
    )
    await poll(hass, entry)
    assert vtn.opts(capacity) == ["optIn"]
    assert vtn.opts(setpoint) == ["optIn"]
    await move_to(hass, freezer, start + timedelta(minutes=1))
    assert float(state(hass, entry, "sensor", "load_capacity")) == 0.5
    assert float(state(hass, entry, "sensor", "load_setpoint")) == 120
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    await move_to(hass, freezer, start + timedelta(minutes=11))
    assert float(state(hass, entry, "sensor", "load_capacity")) == 0.25
    await move_to(hass, freezer, start + timedelta(minutes=21))
    assert state(hass, entry, "sensor", "load_capacity") == "unknown"
    assert state(hass, entry, "sensor", "load_setpoint") == "unknown"


async def test_times_with_an_offset_are_converted(
    hass: HomeAssistant,
    entry: ConfigEntry,
    vtn: SimulatedVtn,
    freezer: FrozenDateTimeFactory,
    now: datetime,
) -> None:
    """+02:00 times (openleadr reads only Z) are the same instant; no zone: refused."""
    start = now + timedelta(minutes=10)
    event_id = vtn.add_event(VEN_NAME, start=start, duration=HOUR, level=3)
    vtn.wire_faults[event_id] = {"offset": "+02:00"}
    await poll(hass, entry)
    assert vtn.opts(event_id) == ["optIn"]
    scheduled = coordinator_of(entry).schedule.get(event_id)
    assert scheduled is not None
    assert scheduled.start == start
    await move_to(hass, freezer, start - timedelta(seconds=1))
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_OFF
    await move_to(hass, freezer, start)
    assert state(hass, entry, "binary_sensor", "event_active") == STATE_ON
    assert state(hass, entry, "sensor", "signal_level") == "3"

    local = vtn.add_event(VEN_NAME, start=start + 2 * HOUR, duration=HOUR)
    vtn.wire_faults[local] = {"offset": "none"}
    await poll(hass, entry)
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"grid_signal_bad_event_{entry.entry_id}_{local}"
    )
    assert issue is not None
    assert "has no time zone" in issue.translation_placeholders["detail"]
    assert vtn.opts(local) == ["optOut"]
