"""The demo boots a real Home Assistant process that demo/demo can log in to."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import re
import signal
import sys

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from demo import HomeAssistantAPI  # noqa: E402

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
            assert states["switch.demo_mining_site_mining"]["state"] == "on"
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
            automations = [e for e in states if e.startswith("automation.demo_")]
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

                def follows() -> bool:
                    solar = states[binding]["attributes"]["limits"].get("solar")
                    if solar is None:
                        return False
                    surplus_kw = float(states[surplus]["state"]) / 1000
                    if surplus_kw < 1:  # the demo's minimum: a shortfall
                        return solar["power_kw"] in (0, 1)
                    return abs(solar["power_kw"] - min(surplus_kw, 15)) <= 0.5

                while not follows():
                    await asyncio.sleep(0.5)
                    states = await api.states()
            await _no_address_in_names(api, entries)
            with pytest.raises(RuntimeError, match="login refused"):
                await HomeAssistantAPI(session, url).login("demo", "wrong")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0, rest.decode()
    assert "stopping" in rest.decode()
