"""Fixtures of the voice tests: Assist set up as in a default Home Assistant,
and HashGrid's entries on the simulators.

``blueprints`` / ``use_blueprint`` (from tests/blueprints) install the
repository's blueprints into the test's config dir.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er, intent
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.microgrid import MicrogridSite
from simulators.miner import Fleet

# The blueprints installed as a user's (tests/blueprints' own helpers).
from tests.blueprints.conftest import blueprints, use_blueprint  # noqa: F401

# Fixtures of the parts the voice commands reach, backed by their simulators.
from tests.lightning.conftest import fast_listener, net  # noqa: F401
from tests.microgrid.conftest import add_entry, fast_timeouts, grid  # noqa: F401
from tests.mining.conftest import setup_fleet_site, three_miners
from tests.net import addr


@pytest.fixture
async def assist(hass: HomeAssistant) -> None:
    """What a default HA runs for voice: exposure settings, Assist, intents, LLM."""
    for component in ("homeassistant", "conversation", "intent", "llm"):
        assert await async_setup_component(hass, component, {})
    await hass.async_block_till_done()


async def unload_all(hass: HomeAssistant) -> None:
    """Unload every loaded HashGrid entry (listeners, sockets, timers)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


# The voice tests' own loopback addresses (other suites may run at the same time).
BASE = addr("12.1")


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """The mining tests' three miners, on the voice tests' addresses."""
    async with three_miners(BASE) as running:
        yield running


@pytest.fixture
async def site(
    hass: HomeAssistant,
    assist: None,
    fleet: Fleet,
) -> AsyncIterator[ConfigEntry]:
    """The "Garage" site with the simulated fleet (LuxOS, Antminer, Bitaxe)."""
    yield await setup_fleet_site(hass, fleet)
    await unload_all(hass)


@pytest.fixture
async def microgrid(
    hass: HomeAssistant,
    assist: None,
    grid: MicrogridSite,  # noqa: F811
) -> AsyncIterator[ConfigEntry]:
    """The SunSpec hybrid inverter (entry "Hybrid") with its surplus sensor."""
    yield await add_entry(hass, grid)
    await unload_all(hass)


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """The entity id of a HashGrid entity by unique id."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


async def say(
    hass: HomeAssistant, text: str, context: Context | None = None
) -> conversation.ConversationResult:
    """Say a sentence to HA's built-in conversation agent."""
    result = await conversation.async_converse(
        hass, text, None, context or Context(), language="en"
    )
    await hass.async_block_till_done()
    return result


def speech(result: conversation.ConversationResult) -> str:
    """What the agent answered aloud."""
    return str(result.response.speech["plain"]["speech"])


def answered(result: conversation.ConversationResult) -> bool:
    """Did the agent understand and act (no error)?"""
    return result.response.response_type is not intent.IntentResponseType.ERROR
