"""Blueprints instantiated through HA's automation engine (`use_blueprint`).

The blueprints are read from the repository's own folder (the config dir of
the test points at a temporary folder that links to it), exactly as a user's
Home Assistant reads an imported blueprint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hashgrid.const import DOMAIN

# Fixtures of the parts the blueprints steer, backed by their simulators.
from tests.grid_signal.conftest import vtn  # noqa: F401
from tests.microgrid.conftest import fast_timeouts, grid  # noqa: F401
from tests.mining.conftest import fleet  # noqa: F401

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints" / "automation"


@pytest.fixture
def blueprints(hass: HomeAssistant, tmp_path: Path) -> None:
    """Make the repository's blueprints HA's own (config dir → tmp_path)."""
    hass.config.config_dir = str(tmp_path)
    folder = tmp_path / "blueprints" / "automation"
    folder.mkdir(parents=True)
    (folder / "hashgrid").symlink_to(BLUEPRINTS / "hashgrid")


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


async def wait_until(
    hass: HomeAssistant, predicate: Callable[[], bool], limit_s: float = 15
) -> None:
    """Let HA run (real time) until predicate holds."""
    async with asyncio.timeout(limit_s):
        while True:
            await hass.async_block_till_done()
            if predicate():
                return
            await asyncio.sleep(0.05)
