"""HashGrid's key entities are exposed to Assist and answer HA's built-in intents."""

from __future__ import annotations

from homeassistant.components.homeassistant.const import DATA_EXPOSED_ENTITIES
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
    async_should_expose,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from simulators.miner import Fleet
from tests.mining.conftest import miner_subentry, setup_site

from .conftest import answered, entity_id, say, speech


def _aliases(hass: HomeAssistant, entity: str) -> list[str]:
    entry = er.async_get(hass).async_get(entity)
    assert entry is not None
    return er.async_get_entity_aliases(hass, entry)


async def test_site_controls_are_exposed_with_short_names(
    hass: HomeAssistant, site: ConfigEntry
) -> None:
    """The Mining switch and the Power budget reach Assist; other entities do not."""
    switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    budget = entity_id(hass, "number", f"{site.entry_id}_power_budget")
    total = entity_id(hass, "sensor", f"{site.entry_id}_total_power")
    assert async_should_expose(hass, "conversation", switch)
    assert async_should_expose(hass, "conversation", budget)
    # The computed name stays; the short alias comes next.
    assert _aliases(hass, switch) == ["Garage Mining", "Mining"]
    assert _aliases(hass, budget) == ["Garage Power budget", "Power budget"]
    # HA's own defaults for the rest: a power sensor is not exposed.
    assert not async_should_expose(hass, "conversation", total)
    entry = er.async_get(hass).async_get(total)
    assert entry is not None
    assert entry.aliases == [er.COMPUTED_NAME]


async def test_turn_off_mining_stops_the_miners(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """'turn off mining' (HassTurnOff) curtails the site; 'turn on' resumes it."""
    lux, ant, axe = fleet.miners
    switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    assert lux.mining
    assert ant.mining

    result = await say(hass, "turn off mining")
    assert answered(result), speech(result)
    assert result.response.intent is not None
    assert result.response.intent.intent_type == "HassTurnOff"
    assert speech(result) == "Turned off the switch"
    assert [t.id for t in result.response.success_results] == [switch]
    assert not lux.mining
    assert not ant.mining
    assert axe.mining  # a Bitaxe cannot stop
    assert hass.states.get(switch).state == STATE_OFF  # type: ignore[union-attr]

    result = await say(hass, "turn on mining")
    assert answered(result), speech(result)
    assert lux.mining
    assert ant.mining
    assert hass.states.get(switch).state == STATE_ON  # type: ignore[union-attr]

    # Its full name works as well.
    result = await say(hass, "turn off Garage Mining")
    assert answered(result), speech(result)
    assert not lux.mining


async def test_what_is_the_surplus_power(
    hass: HomeAssistant, microgrid: ConfigEntry
) -> None:
    """'what is the surplus power' (HassGetState) answers with the sensor's value."""
    sensor = entity_id(hass, "sensor", "HGSIM-INV-0001_surplus_power")
    assert async_should_expose(hass, "conversation", sensor)
    # The device is named after the product (never its address).
    assert _aliases(hass, sensor) == [
        "HashGrid Sim HG-Hybrid-6K Surplus power",
        "Surplus power",
    ]
    state = hass.states.get(sensor)
    assert state is not None
    value = state.state  # a number at noon, not unknown

    result = await say(hass, "what is the surplus power")
    assert answered(result), speech(result)
    assert result.response.intent is not None
    assert result.response.intent.intent_type == "HassGetState"
    assert [s.entity_id for s in result.response.matched_states] == [sensor]
    # The sensor's display precision (whole watts) is what is said.
    assert speech(result) == f"Surplus power is {float(value):.0f} W"


async def test_a_users_choice_stands(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Unexposed or renamed by the user: a reload does not expose it again."""
    lux = fleet.miners[0]
    registry = er.async_get(hass)
    switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    async_expose_entity(hass, "conversation", switch, False)
    registry.async_update_entity(switch, aliases=[er.COMPUTED_NAME, "Heater"])

    assert await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done()
    assert not async_should_expose(hass, "conversation", switch)
    assert _aliases(hass, switch) == ["Garage Mining", "Heater"]

    result = await say(hass, "turn off mining")
    assert not answered(result)
    assert lux.mining


async def test_expose_new_entities_off_is_respected(
    hass: HomeAssistant, assist: None, fleet: Fleet
) -> None:
    """With Assist's "expose new entities" off, HashGrid exposes nothing either."""
    hass.data[DATA_EXPOSED_ENTITIES].async_set_expose_new_entities(
        "conversation", False
    )
    site = await setup_site(hass, [await miner_subentry(fleet.miners[0].ip)])
    switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    assert not async_should_expose(hass, "conversation", switch)
    await hass.config_entries.async_unload(site.entry_id)


async def test_a_second_site_keeps_its_full_name(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """Only one site answers to "mining": a second one is exposed under its
    full name, so "turn off mining" never becomes ambiguous."""
    barn = await setup_site(
        hass, [await miner_subentry(fleet.miners[2].ip)], title="Barn"
    )
    switch = entity_id(hass, "switch", f"{barn.entry_id}_site_mining")
    assert async_should_expose(hass, "conversation", switch)
    assert _aliases(hass, switch) == ["Barn Mining"]

    result = await say(hass, "turn off mining")
    assert answered(result), speech(result)
    assert [t.id for t in result.response.success_results] == [
        entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    ]
    result = await say(hass, "turn off barn mining")
    assert answered(result), speech(result)
    assert hass.states.get(switch).state == STATE_OFF  # type: ignore[union-attr]
