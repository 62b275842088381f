"""The demo's simulated site: every simulator, and the entries HA gets for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EntrySetup:
    """One config entry of the demo, made through HA's config flow API."""

    title: str
    run: Callable[[Any], Awaitable[None]]


@dataclass
class DemoSite:
    """What runs, what HA is given, and what a person should watch."""

    summary: str = ""
    entry_setups: list[EntrySetup] = field(default_factory=list)
    watch_hints: list[str] = field(default_factory=list)


async def _add_mining_site(api: Any) -> None:
    result = await api.flow(
        [{"next_step_id": "mining_site"}, {"name": "Demo mining site"}]
    )
    if result.get("type") != "create_entry":
        raise RuntimeError(f"mining site flow: {result}")


@asynccontextmanager
async def running_demo_site(base_address: str) -> AsyncIterator[DemoSite]:
    """Run every simulator of the demo for as long as the context lasts."""
    site = DemoSite(summary="mining site")
    site.entry_setups.append(EntrySetup("Demo mining site", _add_mining_site))
    site.watch_hints.append("Settings → Devices & services → HashGrid")
    yield site
