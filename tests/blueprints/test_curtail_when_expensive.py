"""Blueprint "stop mining when electricity costs more than it earns", end to end.

The price and hashprice are plain sensors (a user's tariff and pool
integrations); the site and its simulated miners are real.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.miner import Fleet
from tests.mining.conftest import miner_subentry, setup_site

from .conftest import device_of, site_limits, use_blueprint, wait_until

pytestmark = pytest.mark.usefixtures("blueprints")

PRICE = "sensor.price"
HASHPRICE = "sensor.hashprice"


async def _site(hass: HomeAssistant, fleet: Fleet) -> ConfigEntry:
    return await setup_site(hass, [await miner_subentry(m.ip) for m in fleet.miners])


async def test_fixed_break_even_with_hysteresis(
    hass: HomeAssistant, fleet: Fleet
) -> None:
    """Above 0.20: curtailed; back at 0.195 (within hysteresis): still; 0.18: on."""
    lux, ant, _axe = fleet.miners
    site = await _site(hass, fleet)
    hass.states.async_set(PRICE, "0.15")
    await use_blueprint(
        hass,
        "curtail_when_expensive",
        {
            "price_sensor": PRICE,
            "sites": [device_of(hass, site)],
            "break_even": 0.2,
            "hysteresis": 0.01,
            "stagger": 0,
        },
    )
    hass.states.async_set(PRICE, "0.21")
    await wait_until(hass, lambda: not lux.mining and not ant.mining)
    assert site_limits(hass, site) == {"price": 0}
    # A person's "resume" clears only their own (manual) limit: still off.
    await hass.services.async_call(
        DOMAIN, "resume", {"config_entry_id": site.entry_id}, blocking=True
    )
    assert not lux.mining
    # Someone clears the price limit by hand: the next price reading sets it again.
    await hass.services.async_call(
        DOMAIN,
        "clear_limit",
        {"config_entry_id": site.entry_id, "source": "price", "stagger": 0},
        blocking=True,
    )
    hass.states.async_set(PRICE, "0.22")
    await wait_until(hass, lambda: site_limits(hass, site) == {"price": 0})
    await wait_until(hass, lambda: not lux.mining and not ant.mining)
    hass.states.async_set(PRICE, "0.195")
    await hass.async_block_till_done()
    assert not lux.mining
    assert not ant.mining
    hass.states.async_set(PRICE, "0.18")
    await wait_until(hass, lambda: lux.mining and ant.mining)
    assert site_limits(hass, site) == {}
    hass.states.async_set(PRICE, "unavailable")
    await hass.async_block_till_done()
    assert lux.mining  # an unknown price changes nothing


async def test_break_even_from_hashprice(hass: HomeAssistant, fleet: Fleet) -> None:
    """Hashprice 0.048/TH/day at 20 J/TH: break-even 0.10/kWh, and it moves."""
    lux, ant, _axe = fleet.miners
    site = await _site(hass, fleet)
    hass.states.async_set(PRICE, "0.12")
    hass.states.async_set(HASHPRICE, "0.072")  # break-even 0.15: mining pays
    await use_blueprint(
        hass,
        "curtail_when_expensive",
        {
            "price_sensor": PRICE,
            "sites": [device_of(hass, site)],
            "hashprice_sensor": HASHPRICE,
            "efficiency": 20,
            "hysteresis": 0.005,
            "stagger": 0,
        },
    )
    hass.states.async_set(HASHPRICE, "0.048")  # break-even 0.10 < 0.12
    await wait_until(hass, lambda: not lux.mining and not ant.mining)
    hass.states.async_set(PRICE, "0.09")
    await wait_until(hass, lambda: lux.mining and ant.mining)
