"""The whole site over a compressed day: the blueprints as the demo uses them.

Real parts: the site and its simulated miners (LuxOS, stock Antminer, Bitaxe),
HashGrid's blueprints for demand response, the solar surplus (with the
battery floor), the price, and voice — all instantiated through Home
Assistant's automation engine. The weather, the tariff, the battery and the
utility's DR signal are plain entities a script moves through one day:

  07:00 a weak morning surplus       12:00 noon, 8 kW of surplus
  13:00 a DR event; "resume mining" by voice during it; 14:00 it ends
  15:00 the price goes above break-even; 15:30-15:45 a DR event; 16:00 cheap
  18:00 dusk: -0.9 kW surplus        19:00-19:30 a DR event at night
  21:00 the battery below its floor

A sampler reads the miners' own (simulated) power every 20 ms and checks that
the site never draws more than its effective budget (the smallest active
limit) once the curtailer had its response time; at every step, the miners
never mine when any limit says 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
import math
import time

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hashgrid.mining.const import EVENT_CURTAILMENT
from simulators.miner import Fleet
from tests.mining.conftest import setup_fleet_site, three_miners
from tests.net import addr

from .conftest import device_of, site_limits, wait_until

pytestmark = pytest.mark.usefixtures("blueprints")


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """The mining tests' three miners, on this test's own addresses."""
    async with three_miners(addr("15.1")) as running:
        yield running


SURPLUS = "sensor.surplus"
SOC = "sensor.battery"
PRICE = "sensor.price"
DR = "binary_sensor.dr_event"
NO_DELAY = {"hours": 0, "minutes": 0, "seconds": 0}
# What the curtailer may take to bring the miners within a lowered budget
# (commands, read-backs and the simulated miners' ramp), in real seconds.
RESPONSE_S = 1.0
# The Bitaxe cannot stop (pyasic has no stop for AxeOS): it is allowed its draw.
TOLERANCE_W = 50.0


@dataclass
class DayLog:
    """What the sampler saw."""

    samples: int = 0
    mined_wh: float = 0.0
    violation_s: float = 0.0
    worst_excess_w: float = 0.0
    budget_changes: int = 0
    said: list[str] = field(default_factory=list)


async def _sample(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet, log: DayLog
) -> None:
    """Every 20 ms: the miners' draw against the budget in force."""
    curtailer = site.runtime_data.curtailer
    budget_w, lowered_at = curtailer.budget_w, time.monotonic()
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.02)
        now = time.monotonic()
        dt, last = now - last, now
        if curtailer.budget_w < budget_w:
            lowered_at = now
        budget_w = curtailer.budget_w
        draw = sum(m.power_w for m in fleet.miners)
        log.samples += 1
        log.mined_wh += draw * dt / 3600
        excess = draw - budget_w - TOLERANCE_W
        if excess > 0 and now - lowered_at > RESPONSE_S:
            log.violation_s += dt
            log.worst_excess_w = max(log.worst_excess_w, excess)


async def test_a_day_at_the_site(hass: HomeAssistant, fleet: Fleet) -> None:
    """DR events, a dusk shortfall, a price spike and a voice "resume" during
    DR: the miners never mine while a limit says no, and mine when all allow."""
    lux, ant, _axe = fleet.miners
    for component in ("homeassistant", "conversation", "intent"):
        assert await async_setup_component(hass, component, {})
    site = await setup_fleet_site(hass, fleet)
    device = device_of(hass, site)
    hass.states.async_set(DR, "off")
    hass.states.async_set(PRICE, "0.10")
    hass.states.async_set(SOC, "50", {"device_class": "battery"})
    _surplus(hass, 1.0)

    await _automations(
        hass,
        {
            "curtail_on_dr_event": {"dr_source": DR, "sites": [device], "stagger": 0},
            "follow_solar_surplus": {
                "surplus_sensor": SURPLUS,
                "site": device,
                "soc_sensor": SOC,
                "soc_floor": 20,
                "min_budget": 1,
                "max_budget": 15,
                "hysteresis": 0.3,
                "shortfall_delay": NO_DELAY,
                "min_on_time": NO_DELAY,
                "min_off_time": NO_DELAY,
                "stagger": 0,
            },
            "curtail_when_expensive": {
                "price_sensor": PRICE,
                "sites": [device],
                "break_even": 0.2,
                "stagger": 0,
            },
            "voice_commands": {"site": site.entry_id, "stagger": 0},
        },
    )

    log = DayLog()

    @callback
    def _changed(event: Event) -> None:
        log.budget_changes += 1

    hass.bus.async_listen(EVENT_CURTAILMENT, _changed)
    sampler = asyncio.create_task(_sample(hass, site, fleet, log))
    mining = lambda: lux.mining or ant.mining  # noqa: E731
    off = lambda: not lux.mining and not ant.mining  # noqa: E731
    try:
        # 07:00 a weak morning: 1.2 kW lets no S19/S21-class miner run.
        _surplus(hass, 1.2)
        await wait_until(hass, lambda: site_limits(hass, site).get("solar") == 1.2)
        assert off()
        # 12:00 noon: 8 kW, both big miners fit.
        _surplus(hass, 8.0)
        await wait_until(hass, lambda: lux.mining and ant.mining)
        # 13:00 a DR event: everything that can stop stops.
        hass.states.async_set(DR, "on")
        await wait_until(hass, off)
        # "resume mining" during it: it stays off and says why.
        answer = await _say(hass, "resume mining")
        log.said.append(answer)
        assert answer == "Mining stays off at Garage: demand response."
        await _hold(hass, 0.5)
        assert off()
        # 14:00 the event ends: back up to the surplus.
        hass.states.async_set(DR, "off")
        await wait_until(hass, lambda: lux.mining and ant.mining)
        # 15:00 price above break-even; a DR event comes and goes meanwhile.
        hass.states.async_set(PRICE, "0.31")
        await wait_until(hass, off)
        hass.states.async_set(DR, "on")
        await _hold(hass, 0.3)
        hass.states.async_set(DR, "off")
        await _hold(hass, 1.0)
        assert off(), "the end of a DR event restarted mining above break-even"
        assert site_limits(hass, site)["price"] == 0
        # 16:00 cheap again: mining resumes up to the surplus.
        hass.states.async_set(PRICE, "0.12")
        await wait_until(hass, mining)
        # 18:00 dusk: -0.9 kW surplus, the solar limit goes to 0.
        _surplus(hass, -0.9)
        await wait_until(hass, off)
        assert site_limits(hass, site)["solar"] == 0
        # 19:00 a DR event at night; its end keeps the miners off.
        hass.states.async_set(DR, "on")
        await _hold(hass, 0.3)
        hass.states.async_set(DR, "off")
        await _hold(hass, 1.0)
        assert off(), "the end of a DR event at night restarted mining"
        # 21:00 the battery under its floor: its own limit, still off.
        hass.states.async_set(SOC, "7", {"device_class": "battery"})
        await wait_until(hass, lambda: "battery" in site_limits(hass, site))
        # A person's "resume" cannot restart the miners at night either.
        answer = await _say(hass, "resume mining")
        log.said.append(answer)
        assert answer.startswith("Mining stays off at Garage: ")
        await _hold(hass, 0.5)
        assert off()
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)

    print(  # the figures the README quotes (pytest -s)
        f"\nsimulated day: {log.samples} samples, {log.mined_wh:.2f} Wh mined, "
        f"violation {log.violation_s:.2f} s (worst {log.worst_excess_w:.0f} W), "
        f"{log.budget_changes} budget enforcements"
    )
    assert log.samples > 100
    assert log.violation_s == 0, log
    assert not math.isnan(log.mined_wh)
    assert log.mined_wh > 0


def _surplus(hass: HomeAssistant, kw: float) -> None:
    hass.states.async_set(
        SURPLUS, str(kw * 1000), {"unit_of_measurement": "W", "device_class": "power"}
    )


async def _automations(hass: HomeAssistant, blueprints: dict[str, dict]) -> None:
    """One automation from each blueprint, as a user's configuration has them."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "id": name,
                    "alias": name,
                    "use_blueprint": {"path": f"hashgrid/{name}.yaml", "input": inputs},
                }
                for name, inputs in blueprints.items()
            ]
        },
    )
    await hass.async_block_till_done()
    for name in blueprints:
        assert hass.states.get(f"automation.{name}").state == "on"


async def _hold(hass: HomeAssistant, seconds: float) -> None:
    """Let real time pass with HA running (the sampler keeps checking)."""
    await asyncio.sleep(seconds)
    await hass.async_block_till_done()


async def _say(hass: HomeAssistant, text: str) -> str:
    result = await conversation.async_converse(
        hass, text, None, Context(), language="en"
    )
    await hass.async_block_till_done()
    return str(result.response.speech["plain"]["speech"])
