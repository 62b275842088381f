"""Blueprint "curtail mining during a demand-response event", end to end.

Real parts: openleadr's VTN issues the events, HashGrid's VEN turns its
"DR event active" sensor and calendar on, the automation made from the
blueprint sets and clears the site's demand-response limit, and the simulated
miners stop and start again (only as far as the site's other limits allow).
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

from .conftest import (
    Phone,
    device_of,
    effective_kw,
    entity_of,
    site_limits,
    use_blueprint,
    wait_until,
)

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
    assert site_limits(hass, site) == {"demand_response": 0}

    # The first event ends at +5 s, the second goes on until +8 s.
    await wait_until(hass, lambda: dt_util.utcnow() > first + timedelta(seconds=4))
    assert hass.states.get(active).state == "on"
    assert not lux.mining
    assert not ant.mining

    await wait_until(hass, lambda: hass.states.get(active).state == "off")
    await wait_until(hass, lambda: lux.mining and ant.mining)
    assert site_limits(hass, site) == {}
    await wait_until(hass, lambda: len(phone.messages) == 2)
    assert phone.messages[0][0] == "Demand response"
    assert "limited to 0" in phone.messages[0][1]
    assert "restored" in phone.messages[1][1]
    await unload_all(hass)


async def test_a_lower_limit_binds_during_and_after_the_event(
    hass: HomeAssistant, fleet: Fleet, vtn: SimulatedVtn
) -> None:
    """An event limit above a person's lower one does not raise the budget,
    and the event's end leaves the person's limit in force."""
    lux, ant, _axe = fleet.miners
    site = await setup_fleet_site(hass, fleet)
    dr = await add_entry(hass, vtn)
    active = entity_of(hass, "binary_sensor", f"{dr.entry_id}_event_active")
    budget = entity_of(hass, "number", f"{site.entry_id}_power_budget")
    binding = entity_of(hass, "sensor", f"{site.entry_id}_binding_limit")
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
    await wait_until(hass, lambda: "demand_response" in site_limits(hass, site))
    assert site_limits(hass, site) == {"manual": 0.5, "demand_response": 3}
    assert hass.states.get(binding).state == "manual"
    await wait_until(hass, lambda: hass.states.get(active).state == "off")
    await wait_until(hass, lambda: site_limits(hass, site) == {"manual": 0.5})
    assert hass.states.get(binding).state == "manual"
    assert not lux.mining
    assert not ant.mining
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
    assert site_limits(hass, site) == {}

    await move_to(hass, freezer, start - timedelta(minutes=6))
    assert site_limits(hass, site) == {}
    await move_to(hass, freezer, start - timedelta(minutes=5))
    assert site_limits(hass, site) == {"demand_response": 0.25}
    assert effective_kw(hass, site) == 0.25
    assert hass.states.get(calendar).state == "off"  # the event itself is ahead

    await move_to(hass, freezer, start + timedelta(minutes=5))
    assert hass.states.get(calendar).state == "on"
    assert site_limits(hass, site) == {"demand_response": 0.25}
    await move_to(hass, freezer, start + timedelta(minutes=10))
    assert site_limits(hass, site) == {}
    await unload_all(hass)
