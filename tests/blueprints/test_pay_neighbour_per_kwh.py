"""Blueprint "pay a neighbour per kWh over Lightning", end to end.

Our simulated Core Lightning node pays a simulated neighbour's node through
HashGrid's settlement (the ledger, the caps); the neighbour's meter is a plain
sensor (any energy sensor a user has), and the phone is a test notify entity.
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from simulators.lightning import LightningSim
from tests.lightning.conftest import add_node, neighbour_subentry, set_meter

from .conftest import Phone, use_blueprint, wait_until

pytestmark = pytest.mark.usefixtures("blueprints")


def _neighbour_device(hass: HomeAssistant, entry: ConfigEntry) -> str:
    devices = [
        d
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if d.model == "Neighbour"
    ]
    assert len(devices) == 1
    return devices[0].id


def _received_sat(net: LightningSim) -> int:
    return net.received_msat(net.neighbours[0]) // 1000


async def test_pays_at_every_step(
    hass: HomeAssistant, net: LightningSim, phone: Phone
) -> None:
    """Each kWh step is settled at once, exactly; small amounts wait."""
    alice = net.neighbours[0]
    set_meter(hass, alice, "100")
    entry = await add_node(
        hass, net, subentries=[neighbour_subentry(alice, name="Alice", price=150)]
    )
    await use_blueprint(
        hass,
        "pay_neighbour_per_kwh",
        {
            "neighbour": _neighbour_device(hass, entry),
            "step_kwh": 1,
            "interval": {"hours": 0, "minutes": 0, "seconds": 0},
            "notify_target": ["notify.phone"],
        },
    )
    unpaid = "sensor.alice_unpaid_energy"
    # Nothing settled yet: the first settlement (the 5-minute check) sets the
    # meter's baseline.
    assert hass.states.get(unpaid).state == "unknown"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    await wait_until(hass, lambda: hass.states.get(unpaid).state == "0")
    assert _received_sat(net) == 0

    set_meter(hass, alice, "100.6")
    await hass.async_block_till_done()
    assert _received_sat(net) == 0  # below the step

    set_meter(hass, alice, "101.25")  # 1.25 kWh x 150 = 187.5 sat
    await wait_until(hass, lambda: _received_sat(net) == 187)
    set_meter(hass, alice, "102.25")  # 1.5 sat carried: 150 + 0.5 -> 150
    await wait_until(hass, lambda: _received_sat(net) == 337)
    await hass.async_block_till_done()
    assert _received_sat(net) == 337  # each step paid once
    assert sorted(net.paid_labels()) == sorted(set(net.paid_labels()))
    assert phone.messages == []


async def test_a_cap_pays_nothing_and_notifies(
    hass: HomeAssistant, net: LightningSim, phone: Phone
) -> None:
    """A settlement above the neighbour's cap is refused and the user is told."""
    alice = net.neighbours[0]
    set_meter(hass, alice, "10")
    entry = await add_node(
        hass,
        net,
        subentries=[
            neighbour_subentry(alice, name="Alice", price=100, cap_per_payment_sats=500)
        ],
    )
    await use_blueprint(
        hass,
        "pay_neighbour_per_kwh",
        {
            "neighbour": _neighbour_device(hass, entry),
            "step_kwh": 2,
            "notify_target": ["notify.phone"],
        },
    )
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    await wait_until(
        hass, lambda: hass.states.get("sensor.alice_unpaid_energy").state == "0"
    )
    set_meter(hass, alice, "16")  # 600 sat > 500
    await wait_until(hass, lambda: len(phone.messages) == 1)
    title, message = phone.messages[0]
    assert title == "Paying Alice"
    assert "cap per payment" in message
    assert "600 sats" in message
    assert _received_sat(net) == 0
    assert net.ours.sendpays == []
