"""Adding miners to a site through the subentry flow (real pyasic, simulated miners)."""

from __future__ import annotations

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining import flow as mining_flow, scan
from custom_components.hashgrid.mining.client import MinerInfo, identify
from custom_components.hashgrid.mining.flow import MinerSubentryFlow
from simulators.miner import Fleet, running_fleet
from tests.conftest import WEB_ONLY
from tests.net import addr

from .conftest import setup_site

NOTHING = addr("2.250")  # nothing listens here


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("Garage", "Garage mining site"),
        ("  my   farm ", "my farm mining site"),
        ("Demo mining site", "Demo mining site"),
        ("Mining site", "Mining site"),
        ("barn site", "Barn site"),
    ],
)
def test_site_title_says_what_it_is(name: str, title: str) -> None:
    """A site's entry title says it is a mining site, in the user's words."""
    assert mining_flow.site_title(name) == title


@pytest.mark.parametrize(
    ("serial", "mac", "name"),
    [
        ("HTM3X12345abcd", "AA:BB:CC:DD:EE:FF", "AntMiner S19j Pro ABCD"),
        (None, "AA:BB:CC:DD:EE:0F", "AntMiner S19j Pro EE0F"),
        (None, None, "AntMiner S19j Pro"),
    ],
)
def test_miner_title_has_no_address(
    serial: str | None, mac: str | None, name: str
) -> None:
    """A miner is named by make, model and a serial (or MAC) suffix, never its IP."""
    info = MinerInfo(
        host="192.168.1.23",
        make="AntMiner",
        model="AntMiner S19j Pro",
        firmware="x",
        mac=mac,
        serial=serial,
        unique_id="u",
        can_stop=True,
        can_set_power=True,
    )
    assert mining_flow.miner_title(info) == name
    if serial:  # another miner of the site has that name: a longer suffix
        taken = ["antminer s19j pro abcd"]
        assert mining_flow.miner_title(info, taken) == "AntMiner S19j Pro 2345ABCD"
        taken.append("AntMiner S19j Pro 2345ABCD")
        assert mining_flow.miner_title(info, taken) == (
            "AntMiner S19j Pro HTM3X12345ABCD"
        )


async def start(hass: HomeAssistant, entry: ConfigEntry) -> dict:
    """Start the add-miner flow of a site."""
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, "miner"), context={"source": SOURCE_USER}
    )


async def configure(hass: HomeAssistant, flow_id: str, data: dict) -> dict:
    """Answer one step of a subentry flow."""
    return await hass.config_entries.subentries.async_configure(flow_id, data)


async def test_add_miner_by_host(hass: HomeAssistant, fleet: Fleet) -> None:
    """Host → identified → options → the miner is added with its device."""
    entry = await setup_site(hass, [])
    lux = fleet.miners[0]
    result = await start(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "host"
    result = await configure(hass, result["flow_id"], {"host": f" {lux.ip} "})
    assert result["step_id"] == "limits"
    assert "S19j Pro" in result["description_placeholders"]["model"]
    result = await configure(
        hass,
        result["flow_id"],
        {"priority": 70, "min_power_w": 2000, "max_power_w": 1000},
    )
    assert result["errors"] == {"base": "min_above_max"}
    result = await configure(
        hass,
        result["flow_id"],
        {"priority": 70, "min_power_w": 1600, "max_power_w": 3000},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    subentry = next(iter(entry.subentries.values()))
    assert subentry.unique_id == lux.serial
    assert subentry.data == {
        "host": lux.ip,
        "priority": 70,
        "min_power_w": 1600,
        "max_power_w": 3000,
    }
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, lux.serial), entry.entry_id
    )
    assert device is not None
    assert device.config_subentry_id == subentry.subentry_id
    # Named as a person would say it: make, model, the serial's last four.
    assert subentry.title == f"AntMiner S19j Pro {lux.serial[-4:].upper()}"
    assert device.name == subentry.title
    assert lux.ip not in (device.name or "")

    # The same miner again, even on another site, is refused.
    other = await setup_site(hass, [], title="Barn")
    result = await start(hass, other)
    result = await configure(hass, result["flow_id"], {"host": lux.ip})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("host", "error"),
    [(NOTHING, "cannot_connect"), (WEB_ONLY, "not_a_miner")],
    ids=["nothing", "web_only"],
)
async def test_host_errors(
    hass: HomeAssistant, fleet: Fleet, web_only: str, host: str, error: str
) -> None:
    """Nothing there, or not a miner: distinct form errors; then it recovers."""
    entry = await setup_site(hass, [])
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"host": host})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert entry.subentries == {}
    result = await configure(hass, result["flow_id"], {"host": fleet.miners[2].ip})
    assert result["step_id"] == "limits"


async def test_garbage_replies_are_not_a_miner(
    hass: HomeAssistant, fleet: Fleet
) -> None:
    """A device answering garbage on the miner ports is refused, nothing added."""
    entry = await setup_site(hass, [])
    fleet.miners[0].garbage = True
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"host": fleet.miners[0].ip})
    assert result["errors"] == {"base": "not_a_miner"}
    assert entry.subentries == {}


async def test_credentials_step(hass: HomeAssistant, loopback: None) -> None:
    """A firmware with a changed password asks for it; a wrong one is refused."""
    async with running_fleet(
        1, addr("2.20"), ("antminer",), web_password="s3cret"
    ) as f:
        entry = await setup_site(hass, [])
        result = await start(hass, entry)
        result = await configure(hass, result["flow_id"], {"host": f.miners[0].ip})
        assert result["step_id"] == "credentials"
        result = await configure(
            hass, result["flow_id"], {"username": "root", "password": "nope"}
        )
        assert result["errors"] == {"base": "invalid_auth"}
        result = await configure(
            hass, result["flow_id"], {"username": "root", "password": "s3cret"}
        )
        assert result["step_id"] == "limits"
        result = await configure(hass, result["flow_id"], {"priority": 50})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        subentry = next(iter(entry.subentries.values()))
        assert subentry.data["password"] == "s3cret"
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(entry.entry_id)


async def scanned_site(
    hass: HomeAssistant, subnet: str = addr("2.0/29")
) -> ConfigEntry:
    """A site (no miners yet) with a subnet to scan."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Scanned",
        data={"kind": "mining_site", "name": "Scanned", "subnet": subnet},
        unique_id="mining_site_scanned",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry


async def test_pick_from_scan(hass: HomeAssistant, fleet: Fleet) -> None:
    """A site with a subnet offers the miners a scan finds, minus those added."""
    entry = await scanned_site(hass)
    result = await start(hass, entry)
    assert result["type"] is FlowResultType.MENU
    result = await configure(hass, result["flow_id"], {"next_step_id": "scan"})
    assert result["step_id"] == "scan"
    options = result["data_schema"].schema["host"].config["options"]
    hosts = {option["value"] for option in options}
    assert hosts == {fleet.miners[0].ip, fleet.miners[1].ip, fleet.miners[2].ip}
    result = await configure(hass, result["flow_id"], {"host": fleet.miners[1].ip})
    assert result["step_id"] == "limits"
    result = await configure(hass, result["flow_id"], {"priority": 10})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"next_step_id": "scan"})
    options = result["data_schema"].schema["host"].config["options"]
    assert fleet.miners[1].ip not in {option["value"] for option in options}


async def test_scan_past_its_time_budget_aborts(
    hass: HomeAssistant,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A miner too slow to identify: the scan ends at its budget, a translated abort."""
    monkeypatch.setattr(MinerSubentryFlow, "scan_timeout_s", 0.5)
    fleet.miners[1].slow = 30.0
    entry = await scanned_site(hass)
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"next_step_id": "scan"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "scan_timeout"
    assert result["description_placeholders"] == {"seconds": "0.5"}
    assert entry.subentries == {}
    assert "Traceback" not in caplog.text


async def test_scan_leaves_out_a_miner_that_breaks(
    hass: HomeAssistant,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any error identifying one miner (not only a MinerError) leaves out only it."""
    broken = fleet.miners[0].ip

    async def identify_or_break(host: str) -> MinerInfo:
        if host == broken:
            raise AttributeError("'int' object has no attribute 'strip'")
        return await identify(host)

    monkeypatch.setattr(scan, "identify", identify_or_break)
    entry = await scanned_site(hass)
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"next_step_id": "scan"})
    assert result["step_id"] == "scan"
    options = result["data_schema"].schema["host"].config["options"]
    assert {option["value"] for option in options} == {
        fleet.miners[1].ip,
        fleet.miners[2].ip,
    }
    assert f"{broken} left out: AttributeError" in caplog.text
    assert "Traceback" not in caplog.text


async def test_scan_of_a_bad_stored_subnet_aborts(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored subnet that cannot be scanned (too large): a translated abort."""
    entry = await scanned_site(hass, "10.0.0.0/8")
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"next_step_id": "scan"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "scan_failed"
    assert entry.subentries == {}
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "host", ["", "   ", "http://127.0.2.1", "127.0.2.1:4028", "127.0.2 .1"]
)
async def test_host_that_is_no_address(hass: HomeAssistant, host: str) -> None:
    """Not an address or host name: invalid_host, nothing is contacted or added."""
    entry = await setup_site(hass, [])
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"host": host})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_host"}
    assert entry.subentries == {}


async def test_unexpected_identify_error_is_unknown(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that is not a MinerError ends as "unknown" on the form, not a crash."""

    async def broken(host: str, **_: object) -> MinerInfo:
        raise KeyError("serial")

    monkeypatch.setattr(mining_flow, "identify", broken)
    entry = await setup_site(hass, [])
    result = await start(hass, entry)
    result = await configure(hass, result["flow_id"], {"host": addr("2.9")})
    assert result["errors"] == {"base": "unknown"}
    assert entry.subentries == {}


async def test_reconfigure_miner_options(
    hass: HomeAssistant, site: ConfigEntry
) -> None:
    """A miner's priority and limits change; its host and credentials stay."""
    subentry = next(iter(site.subentries.values()))
    result = await hass.config_entries.subentries.async_init(
        (site.entry_id, "miner"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    result = await configure(
        hass, result["flow_id"], {"priority": 99, "max_power_w": 2500}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = site.subentries[subentry.subentry_id]
    assert subentry.data["priority"] == 99
    assert subentry.data["max_power_w"] == 2500
    assert subentry.data["host"]
    states = {s.miner_id: s for s in site.runtime_data.coordinator.miner_states()}
    assert states[subentry.subentry_id].priority == 99
    assert states[subentry.subentry_id].max_power_w == 2500


async def test_changed_credentials_are_fixed_through_a_repair(
    hass: HomeAssistant, hass_client, loopback: None
) -> None:
    """Credentials that stop working: a fixable repair asks for new ones."""
    from homeassistant.helpers import issue_registry as ir
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, "repairs", {})
    async with running_fleet(1, addr("2.30"), ("antminer",), web_password="new") as f:
        miner = f.miners[0]
        info = await identify(miner.ip, username="root", password="new")
        sub = ConfigSubentryData(
            # The password was changed on the miner since.
            data={
                "host": miner.ip,
                "priority": 50,
                "username": "root",
                "password": "old",
            },
            subentry_type="miner",
            title=miner.ip,
            unique_id=info.unique_id,
        )
        entry = await setup_site(hass, [sub], title="Changed")
        subentry_id = next(iter(entry.subentries))
        issue_id = f"miner_credentials_{subentry_id}"
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
        assert entry.runtime_data.coordinator.slots[subentry_id].reading is None

        client = await hass_client()
        resp = await client.post(
            "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
        )
        flow = await resp.json()
        assert flow["step_id"] == "init"
        url = f"/api/repairs/issues/fix/{flow['flow_id']}"
        resp = await client.post(url, json={"username": "root", "password": "wrong"})
        flow = await resp.json()
        assert flow["errors"] == {"base": "invalid_auth"}
        assert entry.subentries[subentry_id].data["password"] == "old"
        resp = await client.post(url, json={"username": "root", "password": "new"})
        assert (await resp.json())["type"] == "create_entry"
        await hass.async_block_till_done()

        assert entry.subentries[subentry_id].data["password"] == "new"
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        slot = entry.runtime_data.coordinator.slots[subentry_id]
        assert slot.reading is not None
        assert await hass.config_entries.async_unload(entry.entry_id)
