"""A simulated day: an Avalon Nano 3S heats a simulated room (simulators/room.py).

HA's clock and the miner's clock move together, a minute at a time (HA's by
`dt_util.utcnow` and `async_fire_time_changed`, not `freezer`: frozen
monotonic time stalls pyasic). Each minute the room takes the heat the miner
drew, its sensor shows the new temperature, and HA runs its timers (the
site's polls, the heater's minimum times).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
import time

from homeassistant.components.climate.const import HVACAction
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from simulators.miner import Fleet, running_fleet
from simulators.room import HeatedRoom, Room, daily_outside
from tests.conftest import ManualClock
from tests.net import addr

from .conftest import miner_subentry, setup_site
from .test_site import entity_id
from .test_site_limits import clear_limit, set_limit

BASE = addr("2.190")
ROOM = "sensor.office_temperature"
TARGET = 20.0
HYSTERESIS = 0.5
# The band may be left by this much: the room moves between two looks (a
# minute) and a start waits for the minimum off time.
TOLERANCE = 0.2
MINUTE = 60.0


def outside_c(t_s: float) -> float:
    """A cool autumn day: 2 °C at 05:00, 12 °C at 17:00."""
    return daily_outside(t_s, mean_c=7.0, swing_c=5.0)


@dataclass
class Sim:
    """The simulated day: the clocks, the miner, the room, the site."""

    hass: HomeAssistant
    clock: ManualClock
    start: float
    fleet: Fleet
    room: HeatedRoom
    site: ConfigEntry | None = None

    def now(self) -> datetime:
        """HA's time now: the start plus the simulated seconds."""
        return dt_util.utc_from_timestamp(self.start + self.clock.now)

    def show_room(self) -> None:
        """The room's sensor shows its temperature (as a real sensor would)."""
        self.hass.states.async_set(
            ROOM,
            f"{self.room.temperature_c:.2f}",
            {
                "unit_of_measurement": "°C",
                "device_class": "temperature",
                "state_class": "measurement",
            },
        )

    async def minute(self, *, room: bool = True) -> None:
        """One simulated minute passes: the room heats, HA runs its timers."""
        self.clock.now += MINUTE
        if room:
            self.room.advance()
            self.show_room()
        # All I/O done first: time jumping fires every timer, a request's
        # timeout too.
        await self.hass.async_block_till_done(wait_background_tasks=True)
        async_fire_time_changed(self.hass, self.now())
        await self.hass.async_block_till_done(wait_background_tasks=True)

    def heater(self) -> State:
        """The Nano's heater."""
        assert self.site is not None
        subentry = next(iter(self.site.subentries.values()))
        state = self.hass.states.get(
            entity_id(self.hass, "climate", f"{subentry.unique_id}_heater")
        )
        assert state is not None
        return state


@pytest.fixture
def sim_clock(monkeypatch: pytest.MonkeyPatch) -> tuple[ManualClock, float]:
    """The miners' clock; HA's wall clock follows it from now."""
    clock = ManualClock()
    start = time.time()
    monkeypatch.setattr(
        dt_util, "utcnow", lambda: dt_util.utc_from_timestamp(start + clock.now)
    )
    return clock, start


@pytest.fixture
async def sim(
    hass: HomeAssistant, loopback: None, sim_clock: tuple[ManualClock, float]
) -> AsyncIterator[Sim]:
    """A Nano 3S heating a 20 °C room at midnight; heat to 20 °C."""
    clock, start = sim_clock
    async with running_fleet(1, BASE, ("avalon_nano3s",), clock=clock) as fleet:
        nano = fleet.miners[0]
        room = HeatedRoom(
            Room(temperature_c=TARGET, outside_c=outside_c(0.0)),
            lambda: nano.energy_wh,
            clock,
            outside_c,
        )
        state = Sim(hass, clock, start, fleet, room)
        state.show_room()
        state.site = await setup_site(
            hass,
            [
                await miner_subentry(
                    nano.ip, room_temperature_entity=ROOM, heater_hysteresis=HYSTERESIS
                )
            ],
            "Office",
        )
        await hass.services.async_call(
            "climate",
            "set_temperature",
            {
                "entity_id": state.heater().entity_id,
                "temperature": TARGET,
                "hvac_mode": "heat",
            },
            blocking=True,
        )
        yield state
        if state.site.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(state.site.entry_id)
            await hass.async_block_till_done()


async def test_a_day_in_the_band_and_a_dr_event(sim: Sim) -> None:
    """The room holds within the band all day but for a DR hour, which wins."""
    nano = sim.fleet.miners[0]
    assert sim.site is not None
    band = (TARGET - HYSTERESIS - TOLERANCE, TARGET + HYSTERESIS + TOLERANCE)
    outside: list[float] = []
    steps_seen: set[str] = set()
    starts = 0
    was_mining = nano.mining

    def look() -> None:
        nonlocal starts, was_mining
        if nano.mining and not was_mining:
            starts += 1
        was_mining = nano.mining
        if nano.mining:
            steps_seen.add(sim.heater().attributes["heat_step"])

    # 00:00 - 09:00: held within the band.
    for _ in range(9 * 60):
        await sim.minute()
        look()
        assert band[0] <= sim.room.temperature_c <= band[1], sim.clock.now / 3600
        outside.append(sim.room.room.outside_c)

    # 09:00 - 10:00: a demand-response event: the miner stops, the heater says
    # why and does not start it however cold the room gets.
    await set_limit(sim.hass, sim.site, "demand_response", 0)
    assert not nano.mining
    for _ in range(60):
        await sim.minute()
        assert not nano.mining
        heater = sim.heater()
        assert heater.attributes["hvac_action"] == HVACAction.IDLE
        # Once the room asks for heat, the heater says what holds it off.
        if heater.attributes["current_temperature"] < TARGET - HYSTERESIS:
            assert heater.attributes["blocked_by"] == "demand_response"
    cold = sim.room.temperature_c
    assert cold < band[0]  # it would have heated

    # 10:00 - 24:00: cleared, it heats again, back into the band and held there.
    await clear_limit(sim.hass, sim.site, "demand_response")
    await sim.minute()
    assert nano.mining
    assert sim.heater().attributes["blocked_by"] is None
    assert sim.heater().attributes["hvac_action"] == HVACAction.HEATING
    back = None
    for minute in range(14 * 60):
        await sim.minute()
        look()
        outside.append(sim.room.room.outside_c)
        inside = band[0] <= sim.room.temperature_c <= band[1]
        if back is None and sim.room.temperature_c >= TARGET - HYSTERESIS:
            back = minute
        elif back is not None:
            assert inside, sim.clock.now / 3600
    assert back is not None
    assert back < 4 * 60
    # It stepped (not only on and off); in the warm afternoon it stopped and
    # started the miner itself, without short-cycling.
    assert len(steps_seen) >= 2, steps_seen
    assert 1 <= starts <= 24
    # A cool day: the night's outside needs more heat than the afternoon's.
    assert min(outside) < 2.5
    assert max(outside) > 11.5


async def test_minimum_on_and_off_times(sim: Sim) -> None:
    """A stop is not followed by a start within 5 minutes, nor a start by a
    stop: the heater waits, then acts by itself (its room unchanged)."""
    nano = sim.fleet.miners[0]

    def room(celsius: float) -> None:
        sim.hass.states.async_set(
            ROOM,
            str(celsius),
            {"unit_of_measurement": "°C", "device_class": "temperature"},
        )

    room(21.0)
    await sim.hass.async_block_till_done(wait_background_tasks=True)
    assert not nano.mining  # on long enough (never started by it): stops now
    room(19.0)
    for _ in range(4):
        await sim.minute(room=False)
        assert not nano.mining
        assert sim.heater().attributes["blocked_by"] is None  # no limit: a wait
    await sim.minute(room=False)
    assert nano.mining
    room(21.0)
    for _ in range(4):
        await sim.minute(room=False)
        assert nano.mining
    await sim.minute(room=False)
    assert not nano.mining
