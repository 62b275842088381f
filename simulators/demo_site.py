"""The demo's simulated site: every simulator, and the entries HA gets for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from simulators.microgrid import running_microgrid
from simulators.miner import running_fleet

MINER_COUNT = 6
MINER_FIRMWARES = ("luxos", "antminer", "bitaxe")
# A simulated day passes in 10 minutes.
DAY_TIME_SCALE = 144.0
# Fixed ports, so the entries stay valid from one run of the demo to the next.
# (the Victron GX listens on the next port).
SUNSPEC_PORT = 15020


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


def _created(result: dict[str, Any], what: str) -> None:
    if result.get("type") != "create_entry":
        raise RuntimeError(f"{what}: {result}")


def _mining_site(hosts: list[str]) -> EntrySetup:
    title = "Demo mining site"

    async def run(api: Any) -> None:
        _created(
            await api.flow([{"next_step_id": "mining_site"}, {"name": title}]), title
        )
        entry_id = next(
            e["entry_id"] for e in await api.entries() if e["title"] == title
        )
        for priority, host in enumerate(hosts, start=1):
            result = await api.subentry_flow(
                entry_id, "miner", [{"host": host}, {"priority": priority * 10}]
            )
            _created(result, f"miner {host}")

    return EntrySetup(title, run)


def _microgrid(title: str, port: int, unit_id: int) -> EntrySetup:
    async def run(api: Any) -> None:
        result = await api.flow(
            [
                {"next_step_id": "microgrid"},
                {"host": "127.0.0.1", "port": port, "unit_id": unit_id},
                {},
            ]
        )
        _created(result, title)

    return EntrySetup(title, run)


@asynccontextmanager
async def running_demo_site(
    base_address: str, modbus_port: int = SUNSPEC_PORT
) -> AsyncIterator[DemoSite]:
    """Run every simulator of the demo for as long as the context lasts."""
    async with AsyncExitStack() as stack:
        fleet = await stack.enter_async_context(
            running_fleet(MINER_COUNT, base_address, MINER_FIRMWARES)
        )
        await stack.enter_async_context(
            running_microgrid(
                "127.0.0.1",
                modbus_port,
                victron_port=modbus_port + 1,
                time_scale=DAY_TIME_SCALE,
            )
        )
        hosts = [miner.ip for miner in fleet.miners]
        site = DemoSite(
            summary=(
                f"{len(hosts)} miners ({', '.join(MINER_FIRMWARES)}) on "
                f"{hosts[0]}…{hosts[-1]}; SunSpec hybrid inverter on "
                f"127.0.0.1:{modbus_port}, Victron GX on 127.0.0.1:{modbus_port + 1} "
                "(a day every 10 minutes)"
            )
        )
        site.entry_setups += [
            _mining_site(hosts),
            _microgrid("SunSpec hybrid inverter", modbus_port, 1),
            _microgrid("Victron GX", modbus_port + 1, 100),
        ]
        site.watch_hints += [
            "Settings → Devices & services → HashGrid: the site, its miners, the microgrid",
            "Turn the site's Mining switch off: every miner stops at once",
            "Watch Surplus power follow the sun over the 10-minute day",
        ]
        yield site
