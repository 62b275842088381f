"""The site benchmark's day (run by `scripts/bench site`, not by the test suite).

A demo-like site — six simulated miners (LuxOS, stock Antminer, Bitaxe, twice)
in a real Home Assistant with HashGrid's DR, solar (battery floor) and price
blueprints configured as the demo configures them — lives one day in 2-minute
steps. A plain physical model drives the entities the blueprints read: the sun
(9 kW peak, 06:00-20:00), the house (0.6 kW, 2.1 kW 18:00-21:00), a 10 kWh
battery (starts at 50 %, floor 20 %), DR events 14:00-15:00 and 19:00-19:30,
the price above break-even 16:00-17:00. Home Assistant's clock moves with the
day; its timers (the blueprints' once-a-minute checks, the site's polls) run
once a step, a minute after each reading. After each step has run (real time,
real commands and read-backs, the curtailment under way carried out: the
response time) the miners' own power is sampled:

- ``mined_kwh``: the miners' energy;
- ``surplus_used_pct``: energy mined from the surplus ÷ surplus available
  while every limit allowed mining;
- ``leak_kwh``: energy mined beyond what the limits allowed (0 during a DR
  event, a price above break-even or a battery under its floor; the surplus
  otherwise) — drawn from the battery or the grid; the Bitaxes, which cannot
  stop, count in it; stopped miners' standby draw is ``standby_kwh``;
- ``dr_violation_s``: simulated seconds a DR event had stoppable miners
  mining after the step's response time;
- ``budget_changes_per_min``: changes of the enforced budget per simulated
  minute; ``miner_commands``: the stops, resumes and power targets sent;
- ``surplus_lost_kwh``: the surplus not mined, by where it was lost: the
  budget below the surplus (a limit trailing it, or below the blueprint's
  minimum), the plan below the budget (no miner fits the rest), the miners
  below the plan (a LuxOS runs the profile at or below its target; a miner
  that reports no power draws less than its estimate). ``BENCH_LOSS=1``
  prints every step that lost more than 200 W.

``BENCH_NAIVE=1`` runs the same day the old way: every blueprint writes the one
budget (all limits are one) and a clear lifts it. ``BENCH_JSON`` names the file
the figures are written to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import json
import math
import os
from pathlib import Path
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.hashgrid.mining import curtailment
from custom_components.hashgrid.mining.const import EVENT_CURTAILMENT
from custom_components.hashgrid.mining.limits import SOURCE_MANUAL
from custom_components.hashgrid.mining.planner import plan_curtailment
from simulators.miner import Fleet, running_fleet
from tests.mining.conftest import miner_subentry, setup_site
from tests.net import addr

from .conftest import device_of

pytestmark = pytest.mark.usefixtures("blueprints")

SURPLUS = "sensor.bench_surplus"
SOC = "sensor.bench_battery"
PRICE = "sensor.bench_price"
DR = "binary_sensor.bench_dr"
STEP_MIN = 2
STEP_REAL_S = float(os.environ.get("BENCH_STEP_S", "0.05"))
NO_DELAY = {"hours": 0, "minutes": 0, "seconds": 0}
BATTERY_KWH = 10.0
SOC_FLOOR = 20.0
BREAK_EVEN = 0.2


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """Six miners as in the demo, on the bench's own addresses."""
    async with running_fleet(
        6, addr("16.1"), ("luxos", "antminer", "bitaxe"), time_scale=100.0
    ) as running:
        yield running


def _pv_w(minute: float) -> float:
    hour = minute / 60
    if not 6 <= hour <= 20:
        return 0.0
    return 9000.0 * math.sin(math.pi * (hour - 6) / 14)


def _house_w(minute: float) -> float:
    return 2100.0 if 18 <= minute / 60 < 21 else 600.0


def _dr(minute: float) -> bool:
    hour = minute / 60
    return 14 <= hour < 15 or 19 <= hour < 19.5


def _price(minute: float) -> float:
    return 0.31 if 16 <= minute / 60 < 17 else 0.10


def _naive(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old way: one budget every automation writes; a clear lifts it."""
    set_limit = curtailment.Curtailer.async_set_limit
    clear_limit = curtailment.Curtailer.async_clear_limit

    async def one_budget(self: Any, source: str, power_w: float, **kw: Any) -> Any:
        return await set_limit(self, SOURCE_MANUAL, power_w, **kw)

    async def lift(self: Any, source: str, **kw: Any) -> Any:
        return await clear_limit(self, SOURCE_MANUAL, **kw)

    monkeypatch.setattr(curtailment.Curtailer, "async_set_limit", one_budget)
    monkeypatch.setattr(curtailment.Curtailer, "async_clear_limit", lift)


async def test_site_day(
    hass: HomeAssistant, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One day of the demo-like site; the figures go to BENCH_JSON."""
    naive = os.environ.get("BENCH_NAIVE") == "1"
    if naive:
        _naive(monkeypatch)
    # The miners live at 100x: so does the site's read-back once settled.
    monkeypatch.setattr(curtailment, "SETTLE_READ_S", curtailment.SETTLE_READ_S / 100)
    # Home Assistant's clock follows the day (its timers, the blueprints'
    # once-a-minute checks, the site's polls), a minute at a time.
    start = dt_util.utcnow().replace(second=0, microsecond=0)
    clock = {"minute": 0}
    monkeypatch.setattr(
        dt_util, "utcnow", lambda: start + timedelta(minutes=clock["minute"])
    )
    stoppable = [m for m in fleet.miners if m.personality.name != "bitaxe"]
    site = await setup_site(
        hass,
        [
            await miner_subentry(m.ip, priority=p)
            for m, p in zip(fleet.miners, (10, 50, 90, 20, 60, 95), strict=True)
        ],
    )
    device = device_of(hass, site)
    soc = 50.0
    _set(hass, 0, soc)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                _use("curtail_on_dr_event", {"dr_source": DR, "sites": [device]}),
                _use(
                    "follow_solar_surplus",
                    {
                        "surplus_sensor": SURPLUS,
                        "site": device,
                        "soc_sensor": SOC,
                        "soc_floor": SOC_FLOOR,
                        "min_budget": 1,
                        "max_budget": 15,
                        "hysteresis": 0.3,
                        "shortfall_delay": NO_DELAY,
                        "min_on_time": NO_DELAY,
                        "min_off_time": NO_DELAY,
                        "stagger": 0,
                    },
                ),
                _use(
                    "curtail_when_expensive",
                    {
                        "price_sensor": PRICE,
                        "sites": [device],
                        "break_even": BREAK_EVEN,
                        "stagger": 0,
                    },
                ),
            ]
        },
    )
    await hass.async_block_till_done()
    # As saving an automation in the UI does: it starts by reading the site.
    hass.bus.async_fire("automation_reloaded")
    await hass.async_block_till_done()
    budgets: list[float | None] = []
    # The commands the miners got (stops and resumes are what wears them).
    commands = {"stop": 0, "resume": 0, "set_power": 0}

    @callback
    def _enforced(event: Event) -> None:
        budget = event.data.get("budget_w")
        if not budgets or budgets[-1] != budget:
            budgets.append(budget)
        for outcome in event.data.get("miners", ()):
            if outcome.get("action") in commands:
                commands[outcome["action"]] += 1

    hass.bus.async_listen(EVENT_CURTAILMENT, _enforced)
    mined = from_surplus = available = leak = standby = 0.0
    dr_violation_s = 0.0
    grid_kwh = 0.0
    # Where the surplus not mined went (kWh): the budget below the surplus
    # (a limit trailing it), the plan below the budget (no miner fits the
    # rest), the miners below the plan (not yet carried out).
    lost = {"budget": 0.0, "plan": 0.0, "miners": 0.0}
    hours = STEP_MIN / 60
    for step in range(24 * 60 // STEP_MIN):
        minute = step * STEP_MIN
        # Home Assistant's timers run once between two readings (the
        # automations' once-a-minute checks see the last reading; a timer
        # due at the reading runs with the next), then the new one comes.
        if minute:
            clock["minute"] = minute - 1
            async_fire_time_changed(hass, dt_util.utcnow())
            # What the timers started (a poll, a check) ends before the
            # clock moves on (a timer fired early is a timeout).
            await hass.async_block_till_done(wait_background_tasks=True)
        clock["minute"] = minute
        _set(hass, minute, soc)
        await asyncio.sleep(STEP_REAL_S)
        await hass.async_block_till_done()
        # The response time: the curtailment under way is carried out first.
        enforcing = site.runtime_data.curtailer._enforcing
        if enforcing is not None and not enforcing.done():
            await asyncio.wait([enforcing], timeout=5)
        await asyncio.sleep(0.02)  # the simulated miners' ramp (1.5 s / 100)
        miners_w = sum(m.power_w for m in fleet.miners)
        mining_w = sum(m.power_w for m in fleet.miners if m.mining)
        standby += (miners_w - mining_w) * hours / 1000
        surplus_w = _pv_w(minute) - _house_w(minute)
        allowed = not _dr(minute) and _price(minute) <= BREAK_EVEN and soc >= SOC_FLOOR
        allowed_w = max(surplus_w, 0.0) if allowed else 0.0
        mined += mining_w * hours / 1000
        if allowed:
            available += max(surplus_w, 0.0) * hours / 1000
            from_surplus += min(mining_w, max(surplus_w, 0.0)) * hours / 1000
            _lose(lost, site, max(surplus_w, 0.0), mining_w, hours, minute)
        leak += max(0.0, mining_w - allowed_w) * hours / 1000
        if os.environ.get("BENCH_TRACE") and mining_w - allowed_w > 100:
            print(
                f"{minute // 60:02d}:{minute % 60:02d} miners {miners_w:.0f} W "
                f"allowed {allowed_w:.0f} W surplus {surplus_w:.0f} W soc {soc:.0f} "
                f"limits {site.runtime_data.coordinator.limits.as_dict()}"
            )
        if _dr(minute) and any(m.mining for m in stoppable):
            dr_violation_s += STEP_MIN * 60
        # The battery takes what is left (or gives what is missing).
        net_kwh = (surplus_w - miners_w) * hours / 1000
        soc_kwh = soc / 100 * BATTERY_KWH + net_kwh
        if soc_kwh < 0:
            grid_kwh += -soc_kwh
        soc = min(100.0, max(0.0, soc_kwh / BATTERY_KWH * 100))
    figures = {
        "arrangement": "naive" if naive else "limits",
        "mined_kwh": round(mined, 2),
        "surplus_used_pct": round(100 * from_surplus / available, 1)
        if available
        else None,
        "leak_kwh": round(leak, 3),
        "leak_pct": round(100 * leak / mined, 2) if mined else 0.0,
        "dr_violation_s": dr_violation_s,
        "budget_changes": len(budgets),
        "budget_changes_per_min": round(len(budgets) / (24 * 60), 3),
        "miner_commands": commands,
        "standby_kwh": round(standby, 3),
        "grid_import_kwh": round(grid_kwh, 2),
        "end_soc_pct": round(soc, 1),
        "surplus_lost_kwh": {k: round(v, 2) for k, v in lost.items()},
    }
    if path := os.environ.get("BENCH_JSON"):
        await hass.async_add_executor_job(Path(path).write_text, json.dumps(figures))
    print(json.dumps(figures))


def _lose(
    lost: dict[str, float],
    site: Any,
    surplus_w: float,
    mining_w: float,
    hours: float,
    minute: int,
) -> None:
    """Count a step's surplus not mined by where it was lost."""
    runtime = site.runtime_data
    budget_w = min(runtime.curtailer.budget().power_w, surplus_w)
    plan = plan_curtailment(runtime.coordinator.miner_states(), budget_w)
    planned_w = min(plan.total_power_w, budget_w)
    parts = {
        "budget": surplus_w - budget_w,
        "plan": budget_w - planned_w,
        "miners": max(0.0, planned_w - mining_w),
    }
    for key, watts in parts.items():
        lost[key] += watts * hours / 1000
    if os.environ.get("BENCH_LOSS") and surplus_w - mining_w > 200:
        print(
            f"{minute // 60:02d}:{minute % 60:02d} surplus {surplus_w:.0f} "
            f"budget {budget_w:.0f} planned {plan.total_power_w:.0f} "
            f"mining {mining_w:.0f} per miner "
            f"{ {k[-4:]: round(v) for k, v in plan.per_miner.items()} }"
        )


def _set(hass: HomeAssistant, minute: float, soc: float) -> None:
    hass.states.async_set(
        SURPLUS,
        str(round(_pv_w(minute) - _house_w(minute))),
        {"unit_of_measurement": "W", "device_class": "power"},
    )
    hass.states.async_set(SOC, str(round(soc, 1)), {"device_class": "battery"})
    hass.states.async_set(PRICE, str(_price(minute)))
    hass.states.async_set(DR, "on" if _dr(minute) else "off")


def _use(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "alias": name,
        "use_blueprint": {"path": f"hashgrid/{name}.yaml", "input": inputs},
    }
