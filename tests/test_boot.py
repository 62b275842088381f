"""The demo boots a real Home Assistant process that demo/demo can log in to."""

from __future__ import annotations

import asyncio
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

from simulators.demo_site import dashboard_entities, load_dashboard  # noqa: E402
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
    assert len(names) >= 10, names  # site, 6 miners, 2 microgrid, node, 2, DR
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
    miners = [e for e in shown if e.startswith("switch.") and "mining_site" not in e]
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


async def test_develop_boots_home_assistant(
    tmp_path: Path, socket_enabled: None
) -> None:
    """scripts/develop: HA up, demo/demo logs in, hashgrid loaded, clean stop."""
    port = free_port()
    proc = await start_demo(tmp_path / "config", port, "127.0.9.1")
    assert proc.stdout is not None
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
            # The mining site, two microgrid devices, the Lightning node and the
            # grid signal.
            assert len(entries) >= 5
            by_title = {e["title"]: e for e in entries}
            assert (
                by_title["Lightning node HASHGRID"]["num_subentries"] == 2
            )  # neighbours
            assert "Demand response hashgrid-demo" in by_title
            assert "Demo mining site" in by_title
            # The site reloads as each miner is added; give the last one a moment.
            async with asyncio.timeout(30):
                while True:
                    states = await api.states()
                    miners = [
                        e
                        for e in states
                        if e.startswith("sensor.")
                        and e.endswith("_hashrate")
                        and "mining_site" not in e
                    ]
                    if len(miners) == 6:
                        break
                    await asyncio.sleep(0.5)
            assert states["switch.demo_mining_site_mining"]["state"] == "on", (
                states["sensor.demo_mining_site_binding_limit"]["attributes"],
                states["sensor.hashgrid_sim_hg_hybrid_6k_surplus_power"],
                states["sensor.hashgrid_sim_hg_hybrid_6k_battery_state_of_charge"],
            )
            assert float(states["sensor.demo_mining_site_total_hashrate"]["state"]) > 0
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
            # One automation from each blueprint, on; the solar one follows the
            # surplus (it changes with every 5 s poll) and sets its limit.
            automations = [
                e
                for e in states
                if e.startswith("automation.demo_")
                and not e.startswith("automation.demo_notify")
            ]
            assert len(automations) == 5
            assert {states[e]["state"] for e in automations} == {"on"}
            solar = "automation.demo_follow_the_solar_surplus"
            async with asyncio.timeout(30):
                while not states[solar]["attributes"].get("last_triggered"):
                    await asyncio.sleep(0.5)
                    states = await api.states()
                # The solar automation sets the site's solar limit (shown with
                # every active limit on the Binding limit sensor).
                binding = "sensor.demo_mining_site_binding_limit"
                surplus = "sensor.hashgrid_sim_hg_hybrid_6k_surplus_power"

                mining = "sensor.demo_mining_site_total_power"

                def kw(entity_id: str) -> float:
                    state = states[entity_id]
                    unit = state["attributes"]["unit_of_measurement"]
                    return float(state["state"]) / (1000 if unit == "W" else 1)

                def follows() -> bool:
                    solar = states[binding]["attributes"]["limits"].get("solar")
                    if solar is None:
                        return False
                    # The demo's surplus does not count the miners: it is the
                    # solar limit's target as it is.
                    target_kw = kw(surplus)
                    if target_kw < 1:  # the demo's minimum: a shortfall
                        return solar["power_kw"] in (0, 1)
                    return abs(solar["power_kw"] - min(target_kw, 15)) <= 0.5

                seen = []
                try:
                    while not follows():
                        seen.append(
                            (
                                states[binding]["attributes"]["limits"],
                                kw(surplus),
                                kw(mining),
                            )
                        )
                        await asyncio.sleep(0.5)
                        states = await api.states()
                except BaseException:
                    print("the solar limit, surplus and mining kW seen:", seen[-8:])
                    raise
            await _no_address_in_names(api, entries)
            await _views_set_up(api, states)
            with pytest.raises(RuntimeError, match="login refused"):
                await HomeAssistantAPI(session, url).login("demo", "wrong")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0, rest.decode()
    assert "stopping" in rest.decode()
