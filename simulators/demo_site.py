"""The demo's simulated site: every simulator, and the entries HA gets for them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import logging
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any

from simulators.grid_signal import SimulatedVtn, running_vtn
from simulators.lightning import running_lightning
from simulators.microgrid import running_microgrid
from simulators.miner import running_fleet

_LOGGER = logging.getLogger(__name__)

MINER_COUNT = 6
MINER_FIRMWARES = ("luxos", "antminer", "bitaxe")
# A simulated day passes in 10 minutes.
DAY_TIME_SCALE = 144.0
# Fixed ports, so the entries stay valid from one run of the demo to the next.
# (the Victron GX listens on the next port).
SUNSPEC_PORT = 15020
VTN_PORT = 15080
VEN_NAME = "hashgrid-demo"
# The VTN's demand-response events: a SIMPLE level-2 event every 4 minutes (the
# first soon after the VEN registers), 90 s long, starting 60 s after it is issued.
EVENT_EVERY = timedelta(minutes=4)
EVENT_LEAD = timedelta(seconds=60)
EVENT_DURATION = timedelta(seconds=90)
EVENT_LEVEL = 2
# The neighbours' meters: we pay Alice for the energy our miners use (the mining
# site's total, always growing); Bob pays us for the SunSpec inverter's grid export.
ALICE_METER = "sensor.demo_mining_site_total_energy"
BOB_METER = "sensor.hashgrid_sim_hg_hybrid_6k_grid_export_energy"
NEIGHBOUR_WE_PAY = "Neighbour Alice (we pay)"
NEIGHBOUR_THEY_PAY = "Neighbour Bob (pays us)"
NEIGHBOUR_PRICE = 150  # sats/kWh


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
    #: Called when the demo starts to stop, before Home Assistant is stopped.
    stop_hooks: list[Callable[[], None]] = field(default_factory=list)


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


def _lightning_node(socket_path: str, we_pay_offer: str) -> EntrySetup:
    title = "Lightning node (HASHGRID) and two neighbours"

    async def run(api: Any) -> None:
        result = await api.flow(
            [
                {"next_step_id": "lightning_node"},
                {"next_step_id": "lightning_socket"},
                {"socket_path": socket_path},
            ]
        )
        _created(result, title)
        entry_id = result["result"]["entry_id"]
        for name, fields in (
            (
                NEIGHBOUR_WE_PAY,
                {
                    "direction": "we_pay",
                    "offer": we_pay_offer,
                    "meter_entity": ALICE_METER,
                },
            ),
            (
                NEIGHBOUR_THEY_PAY,
                {
                    "direction": "they_pay",
                    "meter_entity": BOB_METER,
                },
            ),
        ):
            result = await api.subentry_flow(
                entry_id,
                "neighbour",
                [
                    {
                        "name": name,
                        "price_sats_per_kwh": NEIGHBOUR_PRICE,
                        "min_settlement_sats": 1,
                        **fields,
                    }
                ],
            )
            _created(result, name)

    return EntrySetup(title, run)


def _grid_signal(vtn_url: str) -> EntrySetup:
    title = f"Grid signal (OpenADR VEN {VEN_NAME})"

    async def run(api: Any) -> None:
        result = await api.flow(
            [
                {"next_step_id": "grid_signal"},
                {"vtn_url": vtn_url, "ven_name": VEN_NAME},
            ]
        )
        _created(result, title)

    return EntrySetup(title, run)


async def _issue_events(vtn: SimulatedVtn) -> None:
    """Every few minutes, a short SIMPLE event to every VEN registered so far
    (the first as soon as one is)."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        if vtn.ven_ids and loop.time() >= next_at:
            next_at = loop.time() + EVENT_EVERY.total_seconds()
            start = datetime.now(UTC) + EVENT_LEAD
            for ven in list(vtn.ven_ids):
                event_id = vtn.add_event(
                    ven, start=start, duration=EVENT_DURATION, level=EVENT_LEVEL
                )
                _LOGGER.info("DR event %s for %s at %s", event_id, ven, start)
        await asyncio.sleep(1)


def _lightning_dir(modbus_port: int) -> Path:
    """A fresh temporary folder for the nodes' sockets, the same on every run
    (so the entry's socket path stays valid); one per demo (by its ports)."""
    path = Path(tempfile.gettempdir()) / f"hashgrid-demo-{os.getuid()}-{modbus_port}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


@asynccontextmanager
async def running_demo_site(
    base_address: str, modbus_port: int = SUNSPEC_PORT, vtn_port: int = VTN_PORT
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
        lightning_dir = _lightning_dir(modbus_port)
        stack.callback(shutil.rmtree, lightning_dir, ignore_errors=True)
        net = await stack.enter_async_context(
            running_lightning(
                lightning_dir,
                neighbours=2,
                rest_port=None,
                rpc_socket=lightning_dir / "lightning-rpc",
            )
        )
        vtn = await stack.enter_async_context(
            running_vtn("127.0.0.1", vtn_port, poll_interval=timedelta(seconds=10))
        )
        # openleadr warns about what it corrects in every event it sends.
        logging.getLogger("openleadr").setLevel(logging.ERROR)
        tasks = {asyncio.create_task(_issue_events(vtn), name="demo DR events")}

        def cancel_tasks() -> None:
            for task in tasks:
                task.cancel()

        stack.callback(cancel_tasks)
        hosts = [miner.ip for miner in fleet.miners]
        alice, bob = net.neighbours
        site = DemoSite(
            summary=(
                f"{len(hosts)} miners ({', '.join(MINER_FIRMWARES)}) on "
                f"{hosts[0]}…{hosts[-1]}; SunSpec hybrid inverter on "
                f"127.0.0.1:{modbus_port}, Victron GX on 127.0.0.1:{modbus_port + 1} "
                "(a day every 10 minutes); Lightning node HASHGRID on "
                f"{net.rpc_socket} with two neighbours; OpenADR VTN at {vtn.url}"
            )
        )

        def node_away() -> None:
            # Our node goes away first: HA's long polls on its socket
            # (waitanyinvoice, 60 s, in executor threads) end at once instead of
            # holding up HA's shutdown.
            tasks.add(asyncio.create_task(net.ours.simulate_restart(3600)))

        site.stop_hooks.append(node_away)
        site.entry_setups += [
            _mining_site(hosts),
            _microgrid("SunSpec hybrid inverter", modbus_port, 1),
            _microgrid("Victron GX", modbus_port + 1, 100),
            _lightning_node(net.rpc_socket, alice.offer),
            _grid_signal(vtn.url),
        ]
        minutes = int(EVENT_EVERY.total_seconds() // 60)
        site.watch_hints += [
            "Settings → Devices & services → HashGrid: the site, its miners, the "
            "microgrid, the Lightning node and the grid signal",
            "Turn the site's Mining switch off: every miner stops at once",
            "Watch Surplus power follow the sun over the 10-minute day",
            f"Lightning: pay {NEIGHBOUR_WE_PAY} for the energy the miners used since "
            "the last settlement (Developer tools → Actions → "
            "hashgrid.settle_neighbour); its Unpaid energy sensor grows meanwhile",
            f"Lightning: {NEIGHBOUR_THEY_PAY} owes us for the grid export (its "
            "Arrears sensor); what it pays to the offer HashGrid made for it shows "
            f"as Sats received (its node: {bob.rpc_socket})",
            f"Grid signal: the VTN sends a SIMPLE level-{EVENT_LEVEL} event every "
            f"{minutes} minutes ({int(EVENT_DURATION.total_seconds())} s long, "
            f"starting {int(EVENT_LEAD.total_seconds())} s after it is issued); "
            "watch the grid signal's sensors",
        ]
        yield site
