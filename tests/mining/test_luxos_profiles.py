"""LuxOS runs a power target as the highest frequency profile at or below it.

The site plans with the profiles' powers (issue 13's day lost 2.1 kWh
between plan and miners: a LuxOS planned at 1725 W ran its 1525 W profile and
the 200 W between was given to no one). Now the plan is what the miners draw,
and what is left between two profiles goes to a miner that can use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.miner import Fleet, running_fleet
from tests.net import addr

from .conftest import TIME_SCALE, miner_subentry, setup_site

BASE = addr("2.121")


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """An S19j Pro on LuxOS (profiles 305 W apart) and one on Braiins OS
    (any target in its range)."""
    async with running_fleet(
        2, BASE, ("luxos", "braiins"), time_scale=TIME_SCALE
    ) as running:
        yield running


@pytest.fixture
async def site(hass: HomeAssistant, fleet: Fleet) -> ConfigEntry:
    """LuxOS first (priority 90), Braiins after it (10)."""
    lux, bos = fleet.miners
    return await setup_site(
        hass,
        [
            await miner_subentry(lux.ip, priority=90),
            await miner_subentry(bos.ip, priority=10),
        ],
    )


async def test_the_gap_between_two_profiles_goes_to_the_next_miner(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    lux, bos = fleet.miners
    profiles = site.runtime_data.coordinator.slots[
        next(iter(site.subentries))
    ].info.power_steps_w
    assert profiles[:2] == (1525.0, 1830.0), profiles
    budget_w = 1525 + 1525 + 200  # both at their lowest, 200 W to spare
    response = await hass.services.async_call(
        DOMAIN,
        "set_power_budget",
        {"config_entry_id": site.entry_id, "power_kw": budget_w / 1000},
        blocking=True,
        return_response=True,
    )
    assert all(m["success"] for m in response["miners"]), response
    assert lux.mining
    assert bos.mining
    # The LuxOS runs its lowest profile; the Braiins takes the 200 W between.
    assert lux.physics.power_target_w == pytest.approx(1525, abs=1)
    assert bos.physics.power_target_w == pytest.approx(1725, abs=1)
    assert response["planned_power_w"] == pytest.approx(budget_w, abs=1)
