"""Blueprints instantiated through HA's automation engine (`use_blueprint`).

The blueprints are read from the repository's own folder (the config dir of
the test points at a temporary folder that links to it), exactly as a user's
Home Assistant reads an imported blueprint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from homeassistant.components.notify import NotifyEntity
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    mock_config_flow,
    mock_integration,
    mock_platform,
    setup_test_component_platform,
)

from custom_components.hashgrid.const import DOMAIN

# Fixtures of the parts the blueprints steer, backed by their simulators.
from tests.grid_signal.conftest import vtn  # noqa: F401
from tests.lightning.conftest import fast_listener, net  # noqa: F401
from tests.microgrid.conftest import fast_timeouts, grid  # noqa: F401
from tests.mining.conftest import fleet  # noqa: F401

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints" / "automation"


class Phone(NotifyEntity):
    """A notification entity that keeps what it is sent (a phone, say)."""

    _attr_name = "Phone"
    _attr_unique_id = "phone"

    def __init__(self) -> None:
        """Nothing received yet."""
        self.messages: list[tuple[str | None, str]] = []

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Keep the message."""
        self.messages.append((title, message))


class _TestFlow(ConfigFlow):
    """The config flow of the "test" integration that hosts the phone."""

    VERSION = 1


@pytest.fixture
async def phone(hass: HomeAssistant) -> AsyncIterator[Phone]:
    """notify.phone: the stand-in for the user's phone (no simulator plays one)."""
    entity = Phone()

    async def setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool | None:
        await hass.config_entries.async_forward_entry_setups(entry, ["notify"])
        # Home Assistant 2026.11 takes None for success and refuses a bool from
        # a built-in integration (this "test" one counts as built in); 2026.10
        # still wants True.
        return None if (MAJOR_VERSION, MINOR_VERSION) >= (2026, 11) else True

    mock_integration(hass, MockModule("test", async_setup_entry=setup_entry))
    mock_platform(hass, "test.config_flow", None)
    setup_test_component_platform(hass, "notify", [entity], from_config_entry=True)
    with mock_config_flow("test", _TestFlow):
        entry = MockConfigEntry(domain="test")
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert hass.states.get("notify.phone") is not None
        yield entity


@pytest.fixture
async def blueprints(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[None]:
    """Make the repository's blueprints HA's own (config dir → tmp_path).

    The automations are turned off at the end (their timers go with them).
    """
    hass.config.config_dir = str(tmp_path)
    folder = tmp_path / "blueprints" / "automation"
    folder.mkdir(parents=True)
    (folder / "hashgrid").symlink_to(BLUEPRINTS / "hashgrid")
    yield
    if hass.services.has_service("automation", "turn_off"):
        await hass.services.async_call(
            "automation", "turn_off", {"entity_id": "all"}, blocking=True
        )
        await hass.async_block_till_done()


async def use_blueprint(
    hass: HomeAssistant, name: str, inputs: dict[str, Any], alias: str = "Test"
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
                    "use_blueprint": {
                        "path": f"hashgrid/{name}.yaml",
                        "input": inputs,
                    },
                }
            ]
        },
    )
    await hass.async_block_till_done()
    entity_id = er.async_get(hass).async_get_entity_id("automation", "automation", name)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "on", state
    return entity_id


def device_of(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """Return the id of an entry's own device (a site, a node, a VEN)."""
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    )
    assert device is not None, entry.title
    return device.id


def entity_of(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """Return the entity id of a HashGrid entity by unique id."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


def site_limits(hass: HomeAssistant, entry: ConfigEntry) -> dict[str, float]:
    """Return what a site shows of its active limits: source -> kW."""
    state = hass.states.get(
        entity_of(hass, "sensor", f"{entry.entry_id}_binding_limit")
    )
    assert state is not None
    return {
        source: limit["power_kw"]
        for source, limit in state.attributes["limits"].items()
    }


def effective_kw(hass: HomeAssistant, entry: ConfigEntry) -> float | None:
    """Return the site's effective budget (kW) as its sensor shows it."""
    state = hass.states.get(
        entity_of(hass, "sensor", f"{entry.entry_id}_effective_budget")
    )
    assert state is not None
    try:
        return float(state.state)
    except ValueError:
        return None


async def wait_until(
    hass: HomeAssistant,
    predicate: Callable[[], bool],
    limit_s: float = 15,
    *,
    idle: bool = True,
) -> None:
    """Let HA run (real time) until predicate holds.

    With idle, each check first waits for HA to finish what it is doing; without,
    it does not (while an automation waits out a delay, HA is never idle).
    """
    async with asyncio.timeout(limit_s):
        while True:
            if idle:
                await hass.async_block_till_done()
            if predicate():
                return
            await asyncio.sleep(0.05)
