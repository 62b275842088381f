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
from simulators.microgrid import ModelParams, running_microgrid
from simulators.miner import running_fleet
from simulators.miner.antminer import WORK_MODE_SLEEP, Antminer
from simulators.miner.avalon import SOFT_OFF, Avalon
from simulators.miner.miner import SimulatedMiner
from simulators.room import HeatedRoom, Room, daily_outside

_LOGGER = logging.getLogger(__name__)

# Two miners of each firmware, then an Avalon Nano 3S that heats the office.
MINER_FIRMWARES = ("luxos", "antminer", "bitaxe")
HEATER_FIRMWARE = "avalon_nano3s"
FLEET_FIRMWARES = (*MINER_FIRMWARES, *MINER_FIRMWARES, HEATER_FIRMWARE)
MINER_COUNT = len(FLEET_FIRMWARES)
# A simulated day passes in 10 minutes.
DAY_TIME_SCALE = 144.0
# Fixed ports, so the entries stay valid from one run of the demo to the next.
# (the Victron GX listens on the next port).
# The GX's system: a workshop with a smaller roof and battery and its own load.
WORKSHOP = ModelParams(
    pv_peak_w=3_000.0,
    battery_capacity_wh=5_000.0,
    battery_max_charge_w=2_500.0,
    battery_max_discharge_w=2_500.0,
    house_base_w=150.0,
    house_peak_w=600.0,
    seed=2,
    initial_soc=0.7,
    weather_speed=1 / DAY_TIME_SCALE,
)
# The hybrid inverter's site: the model's defaults, its battery above the
# surplus' target state of charge (80 %) so that the miners follow the sun from
# the start (below it, the battery takes the surplus first).
# The sun runs 144 times faster than the clock; clouds and kettles at the
# clock's pace (as a person, and HashGrid reading every 5 s, would meet them).
HOME = ModelParams(initial_soc=0.85, weather_speed=1 / DAY_TIME_SCALE)
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
NEIGHBOUR_WE_PAY = "Alice"
NEIGHBOUR_THEY_PAY = "Bob"
NEIGHBOUR_PRICE = 150  # sats/kWh


@dataclass(frozen=True)
class EntrySetup:
    """One config entry of the demo, made through HA's config flow API."""

    title: str
    run: Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class DemoAutomation:
    """An automation the demo saves from one of HashGrid's blueprints.

    template_inputs are rendered by HA first (to find device and entity ids);
    a rendering that is a JSON list becomes a list.
    """

    id: str
    alias: str
    description: str
    blueprint: str
    template_inputs: dict[str, str]
    inputs: dict[str, Any] = field(default_factory=dict)


_HG = "integration_entities('hashgrid')"
# The main site's entities are demo_mining_site_…, the office's office_site_…:
# each selector finds one site.
_SITE_DEVICE = f"{{{{ {_HG} | select('search', 'demo_mining_site_power_budget') | map('device_id') | first }}}}"
_SITE_ENTRY = f"{{{{ {_HG} | select('search', 'demo_mining_site_power_budget') | map('config_entry_id') | first }}}}"
_OFFICE_DEVICE = f"{{{{ {_HG} | select('search', 'office_site_power_budget') | map('device_id') | first }}}}"
#: Both sites (the main one and the office's), for the automations that stop
#: every miner: a DR event and expensive power stop the heater too. (A config
#: folder from before the office had its own site has only the main one.)
_BOTH_SITES = (
    f"{{{{ [{_SITE_DEVICE[3:-3]}, {_OFFICE_DEVICE[3:-3]}] | select | list | tojson }}}}"
)
_DR_ACTIVE = f"{{{{ {_HG} | select('search', 'dr_event_active') | first }}}}"

DEMO_AUTOMATIONS = (
    DemoAutomation(
        "hashgrid_demo_dr",
        "Demo: curtail mining during DR events",
        "The grid signal's DR event stops every miner (both sites: the office "
        "heater too); its end restores them.",
        "curtail_on_dr_event",
        {"dr_source": _DR_ACTIVE, "sites": _BOTH_SITES},
        {"event_budget": 0, "stagger": 2},
    ),
    DemoAutomation(
        "hashgrid_demo_solar",
        "Demo: follow the solar surplus",
        "The site's budget follows the hybrid inverter's surplus; held during DR.",
        "follow_solar_surplus",
        {
            "surplus_sensor": f"{{{{ {_HG} | select('search', 'hybrid.*surplus_power') | first }}}}",
            "soc_sensor": f"{{{{ {_HG} | select('search', 'hybrid.*state_of_charge') | first }}}}",
            "site": _SITE_DEVICE,
            "hold_entity": _DR_ACTIVE,
            # The miners are part of the load the hybrid inverter's meter sees,
            # so its surplus already counts them: their own draw is added back.
            "mining_power_sensor": f"{{{{ {_HG} | select('search', 'mining_site_total_power') | first }}}}",
        },
        {
            "min_budget": 1,
            "max_budget": 15,
            "hysteresis": 0.3,
            # The microgrid reads the inverter every 5 s: the miners' draw is
            # added back as it was when the surplus was measured (no swing).
            "surplus_interval": 5,
            "shortfall_delay": {"hours": 0, "minutes": 0, "seconds": 30},
            "min_on_time": {"hours": 0, "minutes": 1, "seconds": 0},
            "min_off_time": {"hours": 0, "minutes": 1, "seconds": 0},
            "soc_floor": 30,
            "stagger": 2,
        },
    ),
    DemoAutomation(
        "hashgrid_demo_pay_alice",
        "Demo: pay Alice per 0.2 kWh",
        "Alice is paid over Lightning for every 0.2 kWh the miners use.",
        "pay_neighbour_per_kwh",
        {
            "neighbour": f"{{{{ {_HG} | select('search', 'alice.*unpaid') | map('device_id') | first }}}}",
        },
        {"step_kwh": 0.2, "interval": {"hours": 0, "minutes": 0, "seconds": 0}},
    ),
    DemoAutomation(
        "hashgrid_demo_expensive",
        "Demo: stop mining when power is expensive",
        "Move the Electricity price slider above 0.25 EUR/kWh to stop mining "
        "(both sites: the office heater too).",
        "curtail_when_expensive",
        {"sites": _BOTH_SITES},
        {
            "price_sensor": "input_number.electricity_price",
            "break_even": 0.25,
            "hysteresis": 0.02,
            "stagger": 2,
        },
    ),
    DemoAutomation(
        "hashgrid_demo_voice",
        "Demo: voice commands",
        "Say or type: stop mining, resume mining, how much did we pay Alice today.",
        "voice_commands",
        {
            "site": _SITE_ENTRY,
            "node": f"{{{{ {_HG} | select('search', 'node_id') | map('config_entry_id') | first }}}}",
        },
    ),
)


# --- what the demo shows: its dashboard, the Energy dashboard, notifications ----

DASHBOARD_YAML = Path(__file__).resolve().parent.parent / "dashboards" / "hashgrid.yaml"
SITE = "demo_mining_site"
#: The office's site (the Nano heater's alone: no solar limit).
OFFICE_SITE = "office_site"
#: Entity id prefixes of the sites' own entities (not a miner's).
SITE_PREFIXES = tuple(
    f"{domain}.{site}_"
    for site in (SITE, OFFICE_SITE)
    for domain in ("sensor", "switch")
)
INVERTER = "hashgrid_sim_hg_hybrid_6k"
# Shown in kW, so that the history graph puts them beside the effective budget.
KILOWATT_SENSORS = (f"sensor.{SITE}_total_power", f"sensor.{INVERTER}_surplus_power")


def load_dashboard() -> dict[str, Any]:
    """The HashGrid dashboard as the README offers it (dashboards/hashgrid.yaml)."""
    import yaml  # HA's own dependency; the simulators themselves need none

    config: dict[str, Any] = yaml.safe_load(DASHBOARD_YAML.read_text())
    return config


def miner_tiles(states: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(entity, name) of each miner's tile: its Mining switch, else (a miner that
    cannot stop) its hashrate; named as its device."""
    tiles: dict[str, tuple[str, str]] = {}
    for entity_id, state in sorted(states.items()):
        if entity_id.startswith(SITE_PREFIXES):
            continue
        for domain, suffix, label in (
            ("switch", "_mining", " Mining"),
            ("sensor", "_hashrate", " Hashrate"),
        ):
            if entity_id.startswith(f"{domain}.") and entity_id.endswith(suffix):
                device = entity_id.split(".", 1)[1].removesuffix(suffix)
                name = str(state["attributes"].get("friendly_name", device))
                if domain == "switch" or device not in tiles:
                    tiles[device] = (entity_id, name.removesuffix(label))
    return [tiles[d] for d in sorted(tiles)]


def dashboard_config(states: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The demo's Overview: dashboards/hashgrid.yaml, its miners those running."""
    config = load_dashboard()
    for section in config["views"][0]["sections"]:
        cards = section["cards"]
        if cards and cards[0].get("heading") == "Miners":
            section["cards"] = cards[:1] + [
                {
                    "type": "tile",
                    "entity": entity_id,
                    "name": name,
                    "grid_options": {"columns": "full"},
                }
                for entity_id, name in miner_tiles(states)
            ]
    return config


def dashboard_entities(config: dict[str, Any]) -> set[str]:
    """Every entity id a dashboard config names."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and key in ("entity", "entities") and "." in node:
            found.add(node)

    walk(config)
    return found


def energy_prefs(states: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Energy dashboard of the hybrid inverter's site: solar, battery, grid
    import/export, and each miner that meters its energy as an individual device."""
    inverter = f"sensor.{INVERTER}"
    devices = [
        {
            "stat_consumption": entity_id,
            "name": str(
                state["attributes"].get("friendly_name", entity_id)
            ).removesuffix(" Energy"),
            **(
                {"stat_rate": power}
                if (power := entity_id.removesuffix("_energy") + "_power") in states
                else {}
            ),
        }
        for entity_id, state in sorted(states.items())
        if entity_id.startswith("sensor.")
        and entity_id.endswith("_energy")
        and state["attributes"].get("device_class") == "energy"
        and not entity_id.startswith(SITE_PREFIXES)
        and entity_id.removesuffix("_energy") + "_hashrate" in states
    ]
    return {
        "energy_sources": [
            {
                "type": "solar",
                "stat_energy_from": f"{inverter}_pv_energy",
                "stat_rate": f"{inverter}_pv_power",
            },
            {
                "type": "battery",
                "stat_energy_from": f"{inverter}_battery_discharged_energy",
                "stat_energy_to": f"{inverter}_battery_charged_energy",
                "stat_soc": f"{inverter}_battery_state_of_charge",
            },
            {
                "type": "grid",
                "stat_energy_from": f"{inverter}_grid_import_energy",
                "stat_energy_to": f"{inverter}_grid_export_energy",
                "stat_rate": f"{inverter}_grid_power",
                "cost_adjustment_day": 0,
            },
        ],
        "device_consumption": devices,
    }


_DR_ON = "binary_sensor.demand_response_hashgrid_demo_dr_event_active"


def _notify(notification_id: str, title: str, message: str) -> dict[str, Any]:
    return {
        "action": "persistent_notification.create",
        "data": {
            "notification_id": notification_id,
            "title": title,
            "message": message,
        },
    }


#: Plain automations (not blueprints) that tell the person watching the demo
#: what happened, as notifications: DR start and end, payments, refusals.
DEMO_NOTIFICATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "hashgrid_demo_notify_dr",
        {
            "alias": "Demo: notify demand response start and end",
            "description": "A notification when a DR event starts and ends.",
            "triggers": [
                {"trigger": "state", "entity_id": _DR_ON, "from": "off", "to": "on"},
                {"trigger": "state", "entity_id": _DR_ON, "from": "on", "to": "off"},
            ],
            "actions": [
                _notify(
                    "hashgrid_demo_dr",
                    "Demand response",
                    "{{ 'A DR event started: mining is curtailed.' if "
                    "trigger.to_state.state == 'on' else 'The DR event ended: the "
                    "miners come back, staggered.' }}",
                )
            ],
        },
    ),
    (
        "hashgrid_demo_notify_payments",
        {
            "alias": "Demo: notify payments",
            "description": "A notification for each payment made or received.",
            "triggers": [
                {
                    "trigger": "event",
                    "event_type": "hashgrid_settlement",
                    "event_data": {"status": "paid"},
                    "id": "paid",
                },
                {
                    "trigger": "event",
                    "event_type": "hashgrid_payment_received",
                    "id": "received",
                },
            ],
            "actions": [
                _notify(
                    "hashgrid_demo_payment",
                    "Lightning payment",
                    "{% set d = trigger.event.data %}{% if trigger.id == 'paid' %}"
                    "Paid {{ d.neighbour }} {{ d.amount_sat }} sat for {{ d.kwh }} "
                    "kWh.{% else %}Received {{ d.amount_sat | default('?') }} sat"
                    "{{ ' from ' ~ d.payer_note if d.payer_note is defined }}."
                    "{% endif %}",
                )
            ],
        },
    ),
    (
        "hashgrid_demo_notify_refusals",
        {
            "alias": "Demo: notify refused settlements",
            "description": "A notification when a settlement is refused for a "
            "problem (a cap, the meter, the price).",
            "triggers": [
                {"trigger": "event", "event_type": "hashgrid_settlement_refused"}
            ],
            "actions": [
                _notify(
                    "hashgrid_demo_refusal",
                    "Settlement refused",
                    "{% set d = trigger.event.data %}{{ d.neighbour }}: not paid, "
                    "{{ d.reason | replace('_', ' ') }}"
                    "{{ ' (' ~ d.detail ~ ')' if d.detail }}.",
                )
            ],
        },
    ),
)


@dataclass
class DemoSite:
    """What runs, what HA is given, and what a person should watch."""

    summary: str = ""
    entry_setups: list[EntrySetup] = field(default_factory=list)
    watch_hints: list[str] = field(default_factory=list)
    automations: tuple[DemoAutomation, ...] = DEMO_AUTOMATIONS
    notifications: tuple[tuple[str, dict[str, Any]], ...] = DEMO_NOTIFICATIONS
    #: Called when the demo starts to stop, before Home Assistant is stopped.
    stop_hooks: list[Callable[[], None]] = field(default_factory=list)
    #: The rooms whose temperature the demo posts to HA (the office).
    rooms: list[DemoRoom] = field(default_factory=list)


def _created(result: dict[str, Any], what: str) -> None:
    if result.get("type") != "create_entry":
        raise RuntimeError(f"{what}: {result}")


SITE_TITLE = "Demo mining site"
#: The office heater's own site: its entities are office_site_… (the flow
#: keeps a name that ends in "site" as it is).
OFFICE_SITE_TITLE = "Office site"


def _mining_site(hosts: list[str], title: str = SITE_TITLE) -> EntrySetup:
    """A mining site entry named `title`, the miners at `hosts` its subentries
    (priorities 10, 20, …)."""

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
    title = f"Demand response {VEN_NAME}"

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


# --- the office: a room the Avalon Nano 3S heats -------------------------------

ROOM_NAME = "Office"
ROOM_SENSOR = "sensor.office_room_temperature"
#: The Nano's thermostat (HashGrid's climate entity, given this id by the demo).
HEATER_CLIMATE = "climate.office_heater"
ROOM_START_C = 18.0
HEATER_TARGET_C = 20.0
HEATER_HYSTERESIS_C = 0.5
#: No minimum on/off time: the room's hours pass in seconds (a 10-minute day).
HEATER_MIN_CYCLE_MIN = 0
#: How often (real seconds) the demo posts the room's temperature to HA.
ROOM_POST_EVERY_S = 10.0


@dataclass
class DemoRoom:
    """A simulated room a miner heats, and the sensor that shows it in HA.

    The room is `simulators/room.py`'s one-node model (its default small room:
    loss 7 W/K, heat capacity 250 kJ/K, so a 10-hour time constant), heated
    by all the miner draws, losing heat to an outside that follows
    `daily_outside`. It lives on the hybrid inverter's day (the sun's clock,
    `DAY_TIME_SCALE` times real time), so its nights are the site's.
    """

    heated: HeatedRoom
    miner: SimulatedMiner
    sensor: str = ROOM_SENSOR
    name: str = ROOM_NAME

    def state(self) -> dict[str, Any]:
        """The room sensor's state now (the room stepped to its clock's now)."""
        return {
            "state": f"{self.heated.advance():.1f}",
            "attributes": {
                "friendly_name": f"{self.name} room temperature",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state_class": "measurement",
            },
        }


def _office(miner: SimulatedMiner, day_clock: Callable[[], float]) -> DemoRoom:
    """The office, heated by `miner`, on the site's day clock (simulated s)."""
    return DemoRoom(
        HeatedRoom(
            Room(ROOM_START_C, outside_c=daily_outside(day_clock())),
            # The miner meters real time; the room's seconds are simulated,
            # DAY_TIME_SCALE to a real one: scaled so, the mean power the room
            # takes is what the miner draws.
            lambda: miner.energy_wh * DAY_TIME_SCALE,
            day_clock,
            daily_outside,
        ),
        miner,
    )


def _heater(room: DemoRoom, site_title: str, priority: int) -> EntrySetup:
    """The miner's options name the room's sensor (its reconfigure step); its
    heater gets a plain id and heats to the target."""
    title = f"{room.name} heater"
    miner = room.miner

    async def run(api: Any) -> None:
        # A reading first, so the heater has one when it starts.
        await api.set_state(room.sensor, room.state())
        entry_id = next(
            e["entry_id"] for e in await api.entries() if e["title"] == site_title
        )
        subentries = await api.ws_call(
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )
        ids = {str(miner.serial).upper(), miner.mac}
        subentry_id = next(
            (s["subentry_id"] for s in subentries if s["unique_id"] in ids), None
        )
        if subentry_id is None:
            raise RuntimeError(f"{title}: no miner {ids} in {subentries}")
        result = await api.subentry_flow(
            entry_id,
            "miner",
            [
                {
                    "priority": priority,
                    "room_temperature_entity": room.sensor,
                    "heater_hysteresis": HEATER_HYSTERESIS_C,
                    "heater_min_cycle_min": HEATER_MIN_CYCLE_MIN,
                }
            ],
            subentry_id=subentry_id,
        )
        if result.get("reason") != "reconfigure_successful":
            raise RuntimeError(f"{title}: {result}")
        # The site reloads with the new options: its heater names the room.
        heater = await api.wait_for_entity(
            lambda s: (
                s["entity_id"].startswith("climate.")
                and s["attributes"].get("room_temperature_entity") == room.sensor
            ),
            60,
        )
        if heater != HEATER_CLIMATE:
            await api.ws_call(
                {
                    "type": "config/entity_registry/update",
                    "entity_id": heater,
                    "new_entity_id": HEATER_CLIMATE,
                }
            )
            await api.wait_for_entity(lambda s: s["entity_id"] == HEATER_CLIMATE, 30)
        await api.call_service(
            "climate",
            "set_temperature",
            {
                "entity_id": HEATER_CLIMATE,
                "temperature": HEATER_TARGET_C,
                "hvac_mode": "heat",
            },
        )

    return EntrySetup(title, run)


def _asleep(miner: SimulatedMiner) -> None:
    """Put a miner to sleep as its firmware's own sleep command does.

    The demo's miners start asleep (as a curtailment left them), so the site
    draws nothing HashGrid has not allowed: the solar automation starts them
    once it knows the surplus. (Bitaxes cannot sleep: they mine at 15 W.)
    """
    if isinstance(miner.personality, Antminer):
        miner.personality._apply_work_mode(WORK_MODE_SLEEP)
    elif isinstance(miner.personality, Avalon):
        miner.personality._apply_soft(SOFT_OFF)  # its estats say SoftOFF too
    elif miner.firmware != "bitaxe":
        miner.physics.set_mining(False)


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
            running_fleet(MINER_COUNT, base_address, FLEET_FIRMWARES)
        )
        for miner in fleet.miners:
            _asleep(miner)
        # The miners are loads of the hybrid inverter's site: what they draw is
        # in its load and its meter, so PV + battery + grid = house + miners.
        home = await stack.enter_async_context(
            running_microgrid(
                "127.0.0.1",
                modbus_port,
                time_scale=DAY_TIME_SCALE,
                params=HOME,
                external_load=lambda: sum(m.power_w for m in fleet.miners),
            )
        )
        # The Victron GX is a system of its own (the workshop's), not a second
        # view of the hybrid inverter's site: one site seen twice would count
        # the same sun, battery and grid twice.
        await stack.enter_async_context(
            running_microgrid(
                "127.0.0.1",
                0,
                gx_port=modbus_port + 1,
                time_scale=DAY_TIME_SCALE,
                params=WORKSHOP,
                with_generator=False,
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
        # The Nano (the last miner) heats the office, whose day is the
        # hybrid inverter's (its outside coldest at the site's 05:00). It is
        # the office site's only miner: that site has the DR and price limits
        # but no solar limit, so it heats from the battery or the grid at
        # night too (in the main site the solar limit would stop it from dusk).
        # Its draw is still in the hybrid inverter's load (the same house).
        model = home.model
        office = _office(
            fleet.miners[-1],
            lambda: model.params.start_time_of_day_s + model.sim_time_s,
        )
        alice, bob = net.neighbours
        site = DemoSite(
            summary=(
                f"{len(hosts)} miners ({', '.join(MINER_FIRMWARES)}, and an "
                f"Avalon Nano 3S heating the {office.name.lower()}) on "
                f"{hosts[0]}…{hosts[-1]}; SunSpec hybrid inverter on "
                f"127.0.0.1:{modbus_port}, the workshop's Victron GX on "
                f"127.0.0.1:{modbus_port + 1} (a day every 10 minutes); Lightning node HASHGRID on "
                f"{net.rpc_socket} with two neighbours; OpenADR VTN at {vtn.url}"
            ),
            rooms=[office],
        )

        def node_away() -> None:
            # Our node goes away first: HA's long polls on its socket
            # (waitanyinvoice, 60 s, in executor threads) end at once instead of
            # holding up HA's shutdown.
            tasks.add(asyncio.create_task(net.ours.simulate_restart(3600)))

        site.stop_hooks.append(node_away)
        site.entry_setups += [
            _mining_site(hosts[:-1]),
            _mining_site(hosts[-1:], OFFICE_SITE_TITLE),
            # The office site's only miner (priority 10).
            _heater(office, OFFICE_SITE_TITLE, 10),
            _microgrid("SunSpec hybrid inverter", modbus_port, 1),
            _microgrid("Victron GX", modbus_port + 1, 100),
            _lightning_node(net.rpc_socket, alice.offer),
            _grid_signal(vtn.url),
        ]
        minutes = int(EVENT_EVERY.total_seconds() // 60)
        site.watch_hints += [
            "The Overview is the HashGrid dashboard: the site's Mining switch, "
            "Power budget, Effective budget and Binding limit, one graph of site "
            "power, effective budget and surplus in kW, the DR calendar, the "
            "miners, the neighbours and their settlements, the Electricity price "
            "slider; Energy (sidebar): solar, battery, grid and each miner",
            "Solar: Effective budget follows Surplus power as the sun moves over "
            "the 10-minute day (Binding limit: solar); at dusk the shortfall "
            "stops the miners, at dawn they start again",
            f"Demand response: the VTN sends a SIMPLE level-{EVENT_LEVEL} event every "
            f"{minutes} minutes ({int(EVENT_DURATION.total_seconds())} s long, "
            f"starting {int(EVENT_LEAD.total_seconds())} s after it is issued; on the "
            "DR events calendar): every miner stops when DR event active turns on "
            "(a notification says so), and they come back, staggered, when it ends",
            f"Lightning: {NEIGHBOUR_WE_PAY} is paid for every 0.2 kWh the miners "
            "use (Neighbours: Last settlement, Paid; the logbook; a "
            f"notification per payment); {NEIGHBOUR_THEY_PAY} owes us for the grid "
            f"export (Arrears; its node: {bob.rpc_socket})",
            "Price: drag the Electricity price slider above 0.25 EUR/kWh and "
            "mining stops (Binding limit: price)",
            "Assist (the chat icon): 'turn off mining', 'what is the surplus power', "
            "'resume mining', 'how much did we pay Alice today'",
            f"Heating: the Avalon Nano 3S heats the {office.name.lower()} (its "
            f"thermostat, {HEATER_CLIMATE}: heat to {HEATER_TARGET_C:g} °C; "
            f"{office.sensor}, a simulated room warmed by what the Nano draws and "
            "cooled by the outside) within its own site's limits (Office site: "
            "DR and price, no solar limit, so it heats from the battery or the "
            "grid at night): Held off by says what stops it (DR events, an "
            "expensive price)",
            "Settings → Automations: five automations from HashGrid's blueprints "
            "and three that notify; the log: INFO (a line per payment; "
            "--debug for every poll)",
        ]
        yield site
