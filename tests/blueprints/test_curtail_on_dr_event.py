"""Blueprint "curtail mining during a demand-response event", end to end.

Real parts: openleadr's VTN issues the events, HashGrid's VEN turns its
"DR event active" sensor and calendar on, the automation made from the
blueprint sets the budget, and the simulated miners stop and start again.
Real time, not a frozen clock: the miners' commands and read-backs are real I/O.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest

from simulators.grid_signal import SimulatedVtn
from simulators.miner import Fleet
from tests.grid_signal.conftest import VEN_NAME, add_entry, move_to, poll, unload_all
from tests.mining.conftest import setup_fleet_site, setup_site

from .conftest import Phone, device_of, entity_of, use_blueprint, wait_until

pytestmark = pytest.mark.usefixtures("blueprints")


async def test_event_curtails_and_its_end_restores(
    hass: HomeAssistant, fleet: Fleet, vtn: SimulatedVtn, phone: Phone
) -> None:
    """On at the event's start: miners stop; off at its end: they mine again.

    Two overlapping events keep the curtailment until the second one ends.
    """
    lux, ant, _axe = fleet.miners
    site = await setup_fleet_site(hass, fleet)
    dr = await add_entry(hass, vtn)
    active = entity_of(hass, "binary_sensor", f"{dr.entry_id}_event_active")
    budget = entity_of(hass, "number", f"{site.entry_id}_power_budget")
    await use_blueprint(
        hass,
        "curtail_on_dr_event",
        {
            "dr_source": active,
            "sites": [device_of(hass, site)],
            "stagger": 0,
            "notify_target": ["notify.phone"],
        },
    )

    now = dt_util.utcnow().replace(microsecond=0)
    first = now + timedelta(seconds=2)
    vtn.add_event(VEN_NAME, start=first, duration=timedelta(seconds=3), level=2)
    vtn.add_event(
        VEN_NAME, start=first + timedelta(seconds=2), duration=timedelta(seconds=4)
    )
    await poll(hass, dr)
    assert lux.mining
    assert ant.mining

    await wait_until(hass, lambda: hass.states.get(active).state == "on")
    await wait_until(hass, lambda: not lux.mining and not ant.mining)
    assert float(hass.states.get(budget).state) == 0

    # The first event ends at +5 s, the second goes on until +8 s.
    await wait_until(hass, lambda: dt_util.utcnow() > first + timedelta(seconds=4))
    assert hass.states.get(active).state == "on"
    assert not lux.mining
    assert not ant.mining

    await wait_until(hass, lambda: hass.states.get(active).state == "off")
    await wait_until(hass, lambda: lux.mining and ant.mining)
    state = hass.states.get(budget)
    assert float(state.state) == float(state.attributes["max"])  # unlimited
    await wait_until(hass, lambda: len(phone.messages) == 2)
    assert phone.messages[0][0] == "Demand response"
    assert "curtailed to 0" in phone.messages[0][1]
    assert "restored" in phone.messages[1][1]
    await unload_all(hass)


async def test_a_lower_budget_is_kept_during_the_event(
    hass: HomeAssistant, fleet: Fleet, vtn: SimulatedVtn
) -> None:
    """An event budget above the site's present budget does not raise it."""
    site = await setup_fleet_site(hass, fleet)
    dr = await add_entry(hass, vtn)
    active = entity_of(hass, "binary_sensor", f"{dr.entry_id}_event_active")
    budget = entity_of(hass, "number", f"{site.entry_id}_power_budget")
    await hass.services.async_call(
        "number", "set_value", {"entity_id": budget, "value": 0.5}, blocking=True
    )
    await use_blueprint(
        hass,
        "curtail_on_dr_event",
        {
            "dr_source": active,
            "sites": [device_of(hass, site)],
            "event_budget": 3,
        },
    )
    start = dt_util.utcnow().replace(microsecond=0) + timedelta(seconds=2)
    vtn.add_event(VEN_NAME, start=start, duration=timedelta(seconds=2))
    await poll(hass, dr)
    await wait_until(hass, lambda: hass.states.get(active).state == "on")
    await hass.async_block_till_done()
    assert float(hass.states.get(budget).state) == pytest.approx(0.5)
    await unload_all(hass)


async def test_calendar_with_lead_time(
    hass: HomeAssistant, vtn: SimulatedVtn, freezer: FrozenDateTimeFactory
) -> None:
    """With HashGrid's DR calendar, the budget drops the lead time before the start.

    A frozen clock moves to the minute, so the site has no miners here (their
    commands need real time; the first test shows them obeying): the site's
    budget is what the blueprint sets.
    """
    site = await setup_site(hass, [])
    dr = await add_entry(hass, vtn)
    calendar = entity_of(hass, "calendar", f"{dr.entry_id}_events")
    budget = entity_of(hass, "number", f"{site.entry_id}_power_budget")
    await use_blueprint(
        hass,
        "curtail_on_dr_event",
        {
            "dr_source": calendar,
            "sites": [device_of(hass, site)],
            "lead_time": {"hours": 0, "minutes": 5, "seconds": 0},
            "event_budget": 0.25,
            "stagger": 0,
        },
    )
    now = dt_util.utcnow().replace(second=0, microsecond=0) + timedelta(minutes=1)
    freezer.move_to(now)
    start = now + timedelta(minutes=10)
    vtn.add_event(VEN_NAME, start=start, duration=timedelta(minutes=10))
    await poll(hass, dr)
    unlimited = float(hass.states.get(budget).attributes["max"])
    assert float(hass.states.get(budget).state) == unlimited

    await move_to(hass, freezer, start - timedelta(minutes=6))
    assert float(hass.states.get(budget).state) == unlimited
    await move_to(hass, freezer, start - timedelta(minutes=5))
    assert float(hass.states.get(budget).state) == 0.25
    assert hass.states.get(calendar).state == "off"  # the event itself is ahead

    await move_to(hass, freezer, start + timedelta(minutes=5))
    assert hass.states.get(calendar).state == "on"
    assert float(hass.states.get(budget).state) == 0.25
    await move_to(hass, freezer, start + timedelta(minutes=10))
    assert float(hass.states.get(budget).state) == unlimited
    await unload_all(hass)
