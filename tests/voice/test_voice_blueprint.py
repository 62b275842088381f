"""The voice commands blueprint, instantiated through HA's automation engine
and driven by HA's built-in conversation agent."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
import pytest
import pytest_socket

from simulators.lightning import LightningSim
from simulators.miner import Fleet
from tests.lightning.conftest import add_node, call, neighbour_subentry, set_meter

from .conftest import answered, say, speech, use_blueprint

pytestmark = pytest.mark.usefixtures("blueprints")


async def test_stop_and_resume_mining(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """'stop mining' curtails the chosen site; 'resume mining' restores it."""
    lux, ant, axe = fleet.miners
    await use_blueprint(hass, "voice_commands", {"site": site.entry_id, "stagger": 0})

    result = await say(hass, "stop mining")
    assert answered(result), speech(result)
    assert speech(result) == (
        "Mining stopped at Garage: 2 of 2 miners stopped; "
        f"{list(site.subentries.values())[2].title} cannot stop and keeps mining."
    )
    assert not lux.mining
    assert not ant.mining
    assert axe.mining  # a Bitaxe cannot stop

    result = await say(hass, "Resume mining!")
    assert speech(result) == (
        "Mining resumed at Garage: 2 of 2 miners are mining again."
    )
    assert lux.mining
    assert ant.mining

    # During a demand-response event, "resume" leaves the miners off, says why.
    await hass.services.async_call(
        "hashgrid",
        "set_limit",
        {"config_entry_id": site.entry_id, "source": "demand_response", "power_kw": 0},
        blocking=True,
    )
    result = await say(hass, "resume mining")
    assert speech(result) == "Mining stays off at Garage: demand response."
    assert not lux.mining
    assert not ant.mining


async def test_sentences_of_your_own(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The sentences are inputs: the user's replace the defaults."""
    await use_blueprint(
        hass,
        "voice_commands",
        {"site": site.entry_id, "stop_sentences": ["heater off", "too hot"]},
    )
    result = await say(hass, "too hot")
    assert speech(result).startswith("Mining stopped at Garage: 2 of 2 miners stopped")
    assert not fleet.miners[0].mining
    result = await say(hass, "stop mining")
    assert not answered(result)


async def test_a_site_that_is_gone_is_said(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The action's error becomes a spoken apology; nothing else happens."""
    await use_blueprint(hass, "voice_commands", {"site": site.entry_id})
    await hass.config_entries.async_unload(site.entry_id)
    result = await say(hass, "stop mining")
    assert speech(result) == (
        "Sorry, I could not stop mining. Is the mining site set up?"
    )
    assert fleet.miners[0].mining


async def test_how_much_did_we_pay_a_neighbour_today(
    hass: HomeAssistant, net: LightningSim, site: ConfigEntry
) -> None:
    """The figure is the ledger's: settlements paid since midnight."""
    # The Lightning fixture allows 127.0.0.1 only; the miners live nearby.
    pytest_socket.socket_allow_hosts(["127.0.0.0/8"], allow_unix_socket=True)
    alice = net.neighbours[0]
    set_meter(hass, alice, "1000")
    node = await add_node(
        hass, net, subentries=[neighbour_subentry(alice, name="Alice", price=123.4)]
    )
    await use_blueprint(
        hass, "voice_commands", {"site": site.entry_id, "node": node.entry_id}
    )

    result = await say(hass, "how much did we pay alice today")
    assert answered(result), speech(result)
    assert speech(result) == "We have paid Alice nothing today."

    for kwh in ("1000", "1001.5", "1003.01"):  # baseline, 185 sat, 186 sat
        set_meter(hass, alice, kwh)
        await call(hass, "settle_neighbour", node, neighbour="Alice")
    paid = await call(hass, "get_neighbour_paid", node, neighbour="Alice")
    assert paid["paid_sat"] == 371

    result = await say(hass, "How much did we pay Alice today?")
    assert speech(result) == "We paid Alice 371 sats today."
    result = await say(hass, "what did we pay carol today")
    assert speech(result) == "I don't know a neighbour called carol."


async def test_without_a_node_the_paid_question_says_so(
    hass: HomeAssistant, site: ConfigEntry
) -> None:
    await use_blueprint(hass, "voice_commands", {"site": site.entry_id})
    result = await say(hass, "how much did we pay alice today")
    assert speech(result) == (
        "No Lightning node is chosen in the voice commands automation."
    )
