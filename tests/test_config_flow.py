"""The config flow's menu, the entry kinds, duplicates and diagnostics."""

from __future__ import annotations

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.hashgrid.const import DOMAIN, EntryKind
from custom_components.hashgrid.kinds import KINDS
from tests.flows import open_form
from tests.net import addr


async def test_menu_lists_the_landed_kinds(hass: HomeAssistant) -> None:
    """The first step is a menu of every kind that exists."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == [kind.value for kind in EntryKind if kind in KINDS]
    assert "mining_site" in result["menu_options"]


def test_every_kind_has_its_handler() -> None:
    """The registry is static: each kind's handler, under its own kind."""
    assert set(KINDS) == set(EntryKind)
    assert all(handler.kind is kind for kind, handler in KINDS.items())


async def _start_site_flow(hass: HomeAssistant) -> str:
    return await open_form(hass, "mining_site")


async def test_create_mining_site_and_refuse_duplicate(hass: HomeAssistant) -> None:
    """A site is created once; the same name again is refused."""
    flow_id = await _start_site_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Garage", "subnet": addr("3.0/29")}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Garage mining site"
    assert result["data"] == {
        "kind": "mining_site",
        "name": "Garage",
        "subnet": addr("3.0/29"),
    }
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is config_entries.ConfigEntryState.LOADED

    flow_id = await _start_site_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {"name": "garage"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


@pytest.mark.parametrize("name", ["", "   ", "\t"])
async def test_blank_site_name_is_a_form_error(hass: HomeAssistant, name: str) -> None:
    """A blank name is refused (it would be the unique id `mining_site_`)."""
    flow_id = await _start_site_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": name, "subnet": "not-a-subnet"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"name": "empty_name", "subnet": "invalid_subnet"}
    result = await hass.config_entries.flow.async_configure(flow_id, {"name": name})
    assert result["errors"] == {"name": "empty_name"}
    assert hass.config_entries.async_entries(DOMAIN) == []
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "  Farm  "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Farm mining site"
    assert result["data"] == {"kind": "mining_site", "name": "Farm"}
    assert result["result"].unique_id == "mining_site_farm"


@pytest.mark.parametrize("subnet", ["not-a-subnet", "10.0.0.0/8", "300.1.1.0/24"])
async def test_invalid_subnet_is_a_form_error(hass: HomeAssistant, subnet: str) -> None:
    """A wrong subnet (or one too large to scan) is refused, nothing created."""
    flow_id = await _start_site_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Farm", "subnet": subnet}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"subnet": "invalid_subnet"}
    assert hass.config_entries.async_entries(DOMAIN) == []
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"name": "Farm", "subnet": "192.168.7.0/24"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reconfigure_site_subnet(hass: HomeAssistant) -> None:
    """Reconfigure changes the subnet and validates it."""
    flow_id = await _start_site_flow(hass)
    await hass.config_entries.flow.async_configure(flow_id, {"name": "Barn"})
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={
            "source": config_entries.SOURCE_RECONFIGURE,
            "entry_id": entry.entry_id,
        },
    )
    assert result["step_id"] == "reconfigure_mining_site"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"subnet": "nope"}
    )
    assert result["errors"] == {"subnet": "invalid_subnet"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"subnet": addr("4.0/30")}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["subnet"] == addr("4.0/30")
