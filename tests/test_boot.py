"""The demo boots a real Home Assistant process that demo/demo can log in to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import json
from pathlib import Path
import re
import signal
import sys
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from demo import DASHBOARD_PATH, HomeAssistantAPI  # noqa: E402

from simulators.demo_site import (  # noqa: E402
    HEATER_CLIMATE,
    HEATER_TARGET_C,
    MINER_COUNT,
    ROOM_SENSOR,
    dashboard_entities,
    load_dashboard,
)
from tests.demo_process import free_port, start_demo, wait_for_line  # noqa: E402

pytestmark = pytest.mark.slow


# An IPv4 address, dotted (127.0.9.1) or as an entity id spells it (127_0_9_1).
ADDRESS = re.compile(r"\b\d{1,3}([._])\d{1,3}\1\d{1,3}\1\d{1,3}\b")


async def _no_address_in_names(api: HomeAssistantAPI, entries: list[dict]) -> None:
    """No HashGrid entry, device or entity is named (or id'd) by an IP address:
    addresses change with DHCP and nobody says them."""
    names = json.loads(
        await api.template(
            "{{ integration_entities('hashgrid') | map('device_id') | reject('none')"
            " | unique | map('device_attr', 'name') | list | tojson }}"
        )
    )
    assert len(names) >= 12, names  # 2 sites, 7 miners, 2 microgrid, node, 2, DR
    entities = json.loads(
        await api.template(
            "{{ integration_entities('hashgrid') | map('state_attr', "
            "'friendly_name') | list | tojson }}"
        )
    )
    ids = json.loads(
        await api.template("{{ integration_entities('hashgrid') | tojson }}")
    )
    kinds = {e.split(".")[0] for e in ids}
    assert {"sensor", "switch", "binary_sensor", "calendar", "number"} <= kinds
    for what, values in (
        ("entry title", [e["title"] for e in entries]),
        ("device name", names),
        ("entity name", entities),
        ("entity id", ids),
    ):
        named = [v for v in values if v and ADDRESS.search(v)]
        assert not named, f"{what}s with an IP address: {named}"


async def _views_set_up(api: HomeAssistantAPI, states: dict[str, Any]) -> None:
    """The HashGrid dashboard is the first page, its entities all there; the
    Energy dashboard has solar, battery, grid and each metered miner; the
    notifying automations are saved."""
    # The dashboard the README offers loads, and names the demo's entities.
    offered = load_dashboard()
    # (Its miners are named by serial or MAC, which follow the demo's addresses.)
    offered_miners = next(
        dashboard_entities(s)
        for s in offered["views"][0]["sections"]
        if s["cards"][0].get("heading") == "Miners"
    )
    missing = dashboard_entities(offered) - offered_miners - set(states)
    assert not missing, f"dashboards/hashgrid.yaml names unknown entities: {missing}"
    assert {c["type"] for s in offered["views"][0]["sections"] for c in s["cards"]} >= {
        "tile",
        "history-graph",
        "calendar",
        "entities",
    }
    saved = await api.ws_call({"type": "lovelace/config", "url_path": DASHBOARD_PATH})
    shown = dashboard_entities(saved)
    assert not shown - set(states)
    miners = [e for e in shown if e.startswith("switch.") and not _of_a_site(e)]
    assert len(miners) >= 4  # the miners that can stop; Bitaxes by hashrate
    for entity_id in (
        "sensor.demo_mining_site_total_power",
        "sensor.demo_mining_site_effective_budget",
        "sensor.hashgrid_sim_hg_hybrid_6k_surplus_power",
    ):
        assert entity_id in shown
        assert states[entity_id]["attributes"]["unit_of_measurement"] == "kW"
    for entity_id in (
        "switch.demo_mining_site_mining",
        "number.demo_mining_site_power_budget",
        "sensor.demo_mining_site_binding_limit",
        "calendar.demand_response_hashgrid_demo_dr_events",
        "binary_sensor.demand_response_hashgrid_demo_dr_event_active",
        "input_number.electricity_price",
        "sensor.alice_last_settlement",
    ):
        assert entity_id in shown, entity_id
    # The office heater's thermostat and its room.
    assert {HEATER_CLIMATE, ROOM_SENSOR} <= shown
    core = await api.ws_call({"type": "frontend/get_system_data", "key": "core"})
    assert core["value"]["default_panel"] == DASHBOARD_PATH

    prefs = await api.ws_call({"type": "energy/get_prefs"})
    kinds = {source["type"] for source in prefs["energy_sources"]}
    assert kinds == {"solar", "battery", "grid"}
    devices = {d["stat_consumption"] for d in prefs["device_consumption"]}
    assert len(devices) >= 4, devices
    assert all(d.endswith("_energy") and d in states for d in devices)

    notify = [e for e in states if e.startswith("automation.demo_notify")]
    assert len(notify) == 3


SITE = "demo_mining_site"
#: The office heater's own site (the Nano alone; DR and price, no solar limit).
OFFICE_SITE = "office_site"
INVERTER = "hashgrid_sim_hg_hybrid_6k"
DR_ACTIVE = "binary_sensor.demand_response_hashgrid_demo_dr_event_active"
#: The solar automation's minimum and maximum limit in the demo (kW).
SOLAR_MIN_KW, SOLAR_MAX_KW = 1.0, 15.0

States = dict[str, dict[str, Any]]


def _of_a_site(entity_id: str) -> bool:
    """Whether an entity is one of a site's own (not a miner's)."""
    return entity_id.split(".", 1)[-1].startswith((f"{SITE}_", f"{OFFICE_SITE}_"))


def _kw(states: States, entity_id: str) -> float:
    """A power sensor's state in kW (the demo shows some in kW, some in W)."""
    state = states[entity_id]
    unit = state["attributes"]["unit_of_measurement"]
    return float(state["state"]) / (1000 if unit == "W" else 1)


async def _until(
    api: HomeAssistantAPI,
    what: str,
    check: Callable[[States], str | None],
    limit_s: float = 60,
) -> States:
    """Poll HA's states until check finds nothing wrong (it says what is)."""
    wrong: list[str] = []
    try:
        async with asyncio.timeout(limit_s):
            while True:
                states = await api.states()
                try:
                    problem = check(states)
                except (KeyError, TypeError, ValueError) as err:
                    problem = f"not there yet: {err!r}"  # entities still coming
                if problem is None:
                    return states
                wrong.append(problem)
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(f"not {what} in {limit_s} s: {wrong[-5:]}") from None


@dataclass(frozen=True)
class _SiteView:
    """What a mining site shows: its binding limit, limits, budget, switch, power."""

    binding: str
    limits: dict[str, float]
    budget: float
    switch: str
    power: float


def _site_view(states: States, site: str) -> _SiteView:
    binding = states[f"sensor.{site}_binding_limit"]
    return _SiteView(
        binding=binding["state"],
        limits={
            source: limit["power_kw"]
            for source, limit in binding["attributes"]["limits"].items()
        },
        budget=_kw(states, f"sensor.{site}_effective_budget"),
        switch=states[f"switch.{site}_mining"]["state"],
        power=_kw(states, f"sensor.{site}_total_power"),
    )


def _site_consistent(states: States) -> str | None:
    """None when the site's limits, budget, switch and draw agree (else why not)."""
    view = _site_view(states, SITE)
    limits, budget, switch, mining = view.limits, view.budget, view.switch, view.power
    surplus = _kw(states, f"sensor.{INVERTER}_surplus_power")
    seen = f"limits {limits}, budget {budget}, {view.binding}, switch {switch}, mining {mining}, surplus {surplus}"
    if "solar" not in limits:
        return f"no solar limit yet: {seen}"
    if states[DR_ACTIVE]["state"] != "on":
        # The solar limit follows the surplus plus the miners' own draw, within
        # the automation's minimum and maximum (a shortfall: 0).
        target = min(surplus + mining, SOLAR_MAX_KW)
        solar = limits["solar"]
        if target < SOLAR_MIN_KW:
            if solar not in (0, SOLAR_MIN_KW):
                return f"solar limit not at 0 in a shortfall: {seen}"
        elif solar and abs(solar - target) > 0.5:
            return f"solar limit not following surplus + mining {target}: {seen}"
    smallest = min(limits.values())
    if abs(budget - smallest) > 0.01 and budget > smallest:
        return f"effective budget above a limit: {seen}"
    if view.binding not in {s for s, kw in limits.items() if kw == smallest}:
        return f"binding limit not the smallest: {seen}"
    if switch != ("on" if budget > 0 else "off"):
        return f"Mining switch disagrees with the budget: {seen}"
    if mining > budget + 0.3:
        return f"the miners draw more than the budget: {seen}"
    return None


def _balance_adds_up(states: States) -> str | None:
    """None when the hybrid inverter's site balances with the miners in its load."""
    pv, load, battery, grid = (
        _kw(states, f"sensor.{INVERTER}_{name}_power")
        for name in ("pv", "load", "battery", "grid")
    )
    # Both sites' miners are loads of the hybrid inverter (the same house).
    mining = _kw(states, f"sensor.{SITE}_total_power")
    office = _kw(states, f"sensor.{OFFICE_SITE}_total_power")
    seen = f"PV {pv}, grid {grid}, battery {battery} (> 0 charging), load {load}, miners {mining} + office {office} kW"
    # One poll of the inverter: exact up to the registers' rounding.
    if abs(pv + grid - battery - load) > 0.005:
        return f"PV + grid != load + battery: {seen}"
    if mining < 1:
        return f"too little mining to tell whether the load counts it: {seen}"
    # The load is the house plus the miners (read in another poll: a little
    # slack). In the demo's first minutes (early afternoon) the house draws
    # 0.35 kW, and an appliance at most 2 kW more.
    house = load - mining - office
    if not 0.1 <= house <= 2.6:
        return f"load - miners is no house load: {seen}"
    return None


def _office_heated(states: States) -> str | None:
    """None when the Nano's thermostat heats the office as a user would see it:
    in heat mode, at its target, showing the room sensor's temperature."""
    room = states[ROOM_SENSOR]
    heater = states[HEATER_CLIMATE]
    attributes = heater["attributes"]
    seen = f"room {room}, heater {heater}"
    assert room["attributes"]["device_class"] == "temperature", seen
    assert room["attributes"]["unit_of_measurement"] == "°C", seen
    assert room["attributes"]["state_class"] == "measurement", seen
    # The room starts at 18 °C, with the Nano's 140 W at most it settles 20 K
    # above an outside of 2-10 °C; without heat it cools toward that outside.
    assert 0 < float(room["state"]) < 35, seen
    assert attributes["room_temperature_entity"] == ROOM_SENSOR, seen
    if heater["state"] != "heat" or attributes["temperature"] != HEATER_TARGET_C:
        return f"not heating to {HEATER_TARGET_C}: {seen}"
    if abs(attributes["current_temperature"] - float(room["state"])) > 0.01:
        return f"the heater does not show the room's temperature: {seen}"
    return None


#: What HA shows of the office's site: its device, its entry and the main
#: site's, the heater's entry and device, the miners (hashrate sensors) of it.
_OFFICE_TEMPLATE = (
    f"{{% set office = config_entry_id('sensor.{OFFICE_SITE}_total_power') %}}"
    "{% set ns = namespace(miners=[]) %}"
    "{% for e in integration_entities('hashgrid') if e.endswith('_hashrate') "
    f"and not e.startswith('sensor.{OFFICE_SITE}_') and config_entry_id(e) == office %}}"
    "{% set ns.miners = ns.miners + [e] %}{% endfor %}"
    "{{ {"
    f"'device': device_attr(device_id('sensor.{OFFICE_SITE}_total_power'), 'name'), "
    "'entry': office, "
    f"'main': config_entry_id('sensor.{SITE}_total_power'), "
    f"'heater_entry': config_entry_id('{HEATER_CLIMATE}'), "
    f"'heater_device': device_id('{HEATER_CLIMATE}'), "
    "'miners': ns.miners, 'miner_devices': ns.miners | map('device_id') | list"
    "} | tojson }}"
)


async def _office_site(api: HomeAssistantAPI) -> None:
    """The office heater has a site of its own, as a user sees it: a device
    "Office site" (not the main site's entry), the Nano its only miner (the
    heater's device), no solar limit (it may heat at night from the battery or
    the grid), its Total power what the Nano draws, within its budget."""
    found = json.loads(await api.template(_OFFICE_TEMPLATE))
    assert found["device"] == "Office site", found
    assert found["entry"], found
    assert found["entry"] != found["main"], found
    assert found["heater_entry"] == found["entry"], found
    assert len(found["miners"]) == 1, found
    assert found["miner_devices"] == [found["heater_device"]], found

    def agrees(states: States) -> str | None:
        view = _site_view(states, OFFICE_SITE)
        limits, budget, switch, power = (
            view.limits,
            view.budget,
            view.switch,
            view.power,
        )
        nano = found["miners"][0].removesuffix("_hashrate") + "_power"
        drawn = _kw(states, nano)
        seen = f"limits {limits}, budget {budget}, {view.binding}, switch {switch}, total {power}, Nano {drawn} kW"
        assert "solar" not in limits, seen
        if switch != ("on" if budget > 0 else "off"):
            return f"Mining switch disagrees with the budget: {seen}"
        # One miner of at most 140 W: the site's total is its draw (another poll).
        if not 0 <= power <= 0.2 or abs(power - drawn) > 0.05:
            return f"Total power is not the Nano's: {seen}"
        if power > budget + 0.05:
            return f"the Nano draws more than the budget: {seen}"
        return None

    await _until(api, "the office site consistent", agrees)


def _no_negative_zero(states: States) -> None:
    """No HashGrid power shows as "-0 W" (a reading of -0.0, or -0.4 at no decimals)."""
    for entity_id, state in states.items():
        attributes = state["attributes"]
        if (
            not entity_id.startswith("sensor.")
            or attributes.get("device_class") != "power"
        ):
            continue
        try:
            value = float(state["state"])
        except ValueError:
            continue
        assert not (value == 0 and str(state["state"]).startswith("-")), entity_id
        if attributes.get("unit_of_measurement") == "W":
            assert not -0.5 < value < 0, (entity_id, state["state"])


async def test_develop_boots_home_assistant(
    tmp_path: Path, socket_enabled: None
) -> None:
    """scripts/develop: HA up, demo/demo logs in, hashgrid loaded, clean stop."""
    port = free_port()
    proc = await start_demo(tmp_path / "config", port, "127.0.9.1")
    assert proc.stdout is not None
    balance: asyncio.Task[States] | None = None
    try:
        async with asyncio.timeout(180):
            output = await wait_for_line(proc.stdout, "Ctrl-C stops everything")
        assert "log in as demo / demo" in output

        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}"
            async with session.get(f"{url}/") as resp:
                # The frontend serves the login page.
                assert resp.status == 200
                assert "<html" in (await resp.text()).lower()
            api = HomeAssistantAPI(session, url)
            await api.login("demo", "demo")
            assert "hashgrid" in await api.components()
            entries = await api.entries()
            assert {e["state"] for e in entries} == {"loaded"}
            # The two mining sites, two microgrid devices, the Lightning node
            # and the grid signal.
            assert len(entries) >= 6
            by_title = {e["title"]: e for e in entries}
            assert (
                by_title["Lightning node HASHGRID"]["num_subentries"] == 2
            )  # neighbours
            assert "Demand response hashgrid-demo" in by_title
            assert "Demo mining site" in by_title
            # The office heater's own site: the Nano its only miner.
            assert by_title["Office site"]["num_subentries"] == 1
            assert by_title["Demo mining site"]["num_subentries"] == MINER_COUNT - 1
            # What HA shows of the hybrid inverter's site adds up: PV + grid =
            # load + battery, and the load counts the miners (seen while they
            # mine, before the first DR event or after it).
            balance = asyncio.create_task(
                _until(api, "the energy balance", _balance_adds_up, limit_s=60)
            )
            # The site reloads as each miner is added; give the last one a moment.
            async with asyncio.timeout(30):
                while True:
                    states = await api.states()
                    miners = [
                        e
                        for e in states
                        if e.startswith("sensor.")
                        and e.endswith("_hashrate")
                        and not _of_a_site(e)
                    ]
                    if len(miners) == MINER_COUNT:  # six, and the Nano (the office's)
                        break
                    await asyncio.sleep(0.5)
            # The Lightning node and its neighbours; the VEN registered with the VTN.
            assert states["sensor.lightning_node_hashgrid_alias"]["state"] == "HASHGRID"
            assert (
                states["sensor.lightning_node_hashgrid_lightning_spendable"]["state"]
                != "unavailable"
            )
            assert "sensor.alice_unpaid_energy" in states
            assert "sensor.bob_arrears" in states
            vtn = "binary_sensor.demand_response_hashgrid_demo_vtn_connection"
            assert states[vtn]["state"] == "on"
            # One automation from each blueprint, on.
            automations = [
                e
                for e in states
                if e.startswith("automation.demo_")
                and not e.startswith("automation.demo_notify")
            ]
            assert len(automations) == 5
            assert {states[e]["state"] for e in automations} == {"on"}
            # The site settles into a state that agrees with itself: the solar
            # automation sets its limit to the surplus plus what the miners draw
            # (the surplus counts them), the Mining switch, Effective budget and
            # Binding limit agree with the limits, and the miners keep within
            # the budget. (Whether mining is on at boot depends on the
            # simulated sun, clouds and battery: not asserted.)
            states = await _until(api, "the site consistent", _site_consistent)
            # The office heater: its thermostat heats to the target and shows
            # the room's temperature (posted by the demo every 10 s).
            states = await _until(api, "the office heated", _office_heated)
            # ... in a site of its own (DR and price limits, no solar limit).
            await _office_site(api)
            # (Mining may be off for a DR event by now: the balance is watched
            # from the start.)
            states = await balance
            _no_negative_zero(states)
            await _no_address_in_names(api, entries)
            await _views_set_up(api, states)
            with pytest.raises(RuntimeError, match="login refused"):
                await HomeAssistantAPI(session, url).login("demo", "wrong")
    finally:
        if balance is not None:
            balance.cancel()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0, rest.decode()
    assert "stopping" in rest.decode()
