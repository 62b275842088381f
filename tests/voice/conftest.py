"""Fixtures of the voice tests: Assist set up as in a default Home Assistant,
and HashGrid's entries on the simulators.

``blueprints`` / ``use_blueprint`` install the repository's blueprints into the
test's config dir (a helper for the voice tests; tests/blueprints has its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er, intent
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.microgrid import MicrogridSite
from simulators.miner import Fleet, running_fleet

# Fixtures of the parts the voice commands reach, backed by their simulators.
from tests.lightning.conftest import fast_listener, net  # noqa: F401
from tests.microgrid.conftest import add_entry, fast_timeouts, grid  # noqa: F401
from tests.mining.conftest import TIME_SCALE, miner_subentry, setup_site

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints" / "automation"


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
BASE = "127.0.12.1"


@pytest.fixture
async def fleet(loopback: None) -> AsyncIterator[Fleet]:
    """Three miners: LuxOS (stop + power target), Antminer stock (stop), Bitaxe."""
    async with running_fleet(
        3, BASE, ("luxos", "antminer", "bitaxe"), time_scale=TIME_SCALE
    ) as running:
        yield running


@pytest.fixture
async def site(
    hass: HomeAssistant,
    assist: None,
    fleet: Fleet,
) -> AsyncIterator[ConfigEntry]:
    """The "Garage" site with the simulated fleet (LuxOS, Antminer, Bitaxe)."""
    subentries = [
        await miner_subentry(miner.ip, priority=priority)
        for miner, priority in zip(fleet.miners, (10, 50, 90), strict=True)
    ]
    yield await setup_site(hass, subentries)
    await unload_all(hass)


@pytest.fixture
async def microgrid(
    hass: HomeAssistant,
    assist: None,
    grid: MicrogridSite,  # noqa: F811
) -> AsyncIterator[ConfigEntry]:
    """The SunSpec hybrid inverter ("Hybrid") with its surplus sensor."""
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


@pytest.fixture
def blueprints(hass: HomeAssistant, tmp_path: Path) -> None:
    """Make the repository's blueprints HA's own (config dir → tmp_path)."""
    hass.config.config_dir = str(tmp_path)
    folder = tmp_path / "blueprints" / "automation"
    folder.mkdir(parents=True)
    (folder / "hashgrid").symlink_to(BLUEPRINTS / "hashgrid")


async def use_blueprint(
    hass: HomeAssistant, name: str, inputs: dict[str, Any], alias: str = "Voice"
) -> str:
    """Add one automation from a HashGrid blueprint; return its entity id."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "id": name,
                    "alias": alias,
                    "use_blueprint": {"path": f"hashgrid/{name}.yaml", "input": inputs},
                }
            ]
        },
    )
    await hass.async_block_till_done()
    found = er.async_get(hass).async_get_entity_id("automation", "automation", name)
    assert found is not None
    state = hass.states.get(found)
    assert state is not None
    assert state.state == "on", state
    return found
