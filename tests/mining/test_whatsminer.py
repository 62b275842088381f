"""Whatsminer (btminer API 2.0.5): its API password and its power modes.

The password is asked for when the default (admin) is refused, checked by a
harmless signed read, kept in the miner's subentry and used for every
token-signed write; one changed on the miner after setup ends in a fixable
repair that asks for the new one (the password only), after which commands
work again; the power modes (low, normal, high) are a select whose choice
goes through the site's curtailer like any command to a miner.
"""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_USER, ConfigEntry
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining.client import connect, identify
from custom_components.hashgrid.mining.errors import AuthRequired, InvalidAuth
from simulators.miner import running_fleet
from tests.conftest import ManualClock
from tests.net import addr

from .conftest import TIME_SCALE, miner_subentry, open_credentials_repair, setup_site

BASE = addr("2.161")
CLIENT_BASE = addr("7.161")
REPAIR_BASE = addr("2.162")


async def test_password_is_checked_without_a_write(
    loopback: None, clock: ManualClock
) -> None:
    async with running_fleet(1, CLIENT_BASE, ("whatsminer",), clock=clock) as f:
        sim = f.miners[0]
        sim.personality.password = "s3cret"
        with pytest.raises(AuthRequired) as required:
            await identify(sim.ip)  # the default, admin, is refused
        assert required.value.password_only is True
        with pytest.raises(InvalidAuth):
            await identify(sim.ip, password="nope")
        mode, mining = sim.personality.power_mode, sim.mining
        info = await identify(sim.ip, password="s3cret")
        assert info.unique_id == sim.serial
        # The check changed nothing on the miner.
        assert (sim.personality.power_mode, sim.mining) == (mode, mining)


async def test_power_modes_are_read_and_set(loopback: None, clock: ManualClock) -> None:
    async with running_fleet(1, CLIENT_BASE, ("whatsminer",), clock=clock) as f:
        sim = f.miners[0]
        client = await connect(sim.ip)
        try:
            info = client.info
            assert [(m.name, m.power_w) for m in info.work_modes] == [
                ("low", 2720),
                ("normal", 3400),
                ("high", 3740),
            ]
            assert info.power_by_mode is False  # it takes a power limit too
            reading = await client.poll()
            assert (reading.work_mode, reading.power_target_w) == ("normal", 3400)
            assert await client.set_work_mode("low") is True
            assert sim.personality.power_mode == "Low"
            clock.now += 20
            reading = await client.poll()
            # The miner holds to the lower of its mode's power and its limit.
            assert (reading.work_mode, reading.power_target_w) == ("low", 2720)
            assert reading.power_w == 2720
            # A power limit stays a limit: the mode is kept.
            assert await client.set_power_target(2500) is True
            assert sim.personality.power_mode == "Low"
            assert (await client.poll()).power_target_w == 2500
            # Another password than ours: the signed write is refused, and
            # every poll says so (reads need no password: it checks it) until
            # ours works again.
            sim.personality.password = "other"
            with pytest.raises(InvalidAuth) as refused:
                await client.set_work_mode("high")
            assert refused.value.password_only is True
            assert sim.personality.power_mode == "Low"
            with pytest.raises(InvalidAuth):
                await client.stop()
            assert sim.mining is True
            with pytest.raises(InvalidAuth):
                await client.poll()
            with pytest.raises(InvalidAuth):
                await client.poll(state_only=True)
            sim.personality.password = "admin"
            assert (await client.poll()).work_mode == "low"
            assert await client.set_work_mode("high") is True
            assert sim.personality.power_mode == "High"
            # A reboot forgets the token pyasic keeps (30 min): a new one is
            # taken, the password is not in doubt.
            sim.reboot()
            assert await client.set_work_mode("normal") is True
            assert sim.personality.power_mode == "Normal"
        finally:
            await client.aclose()


def _entity(hass: HomeAssistant, entry: ConfigEntry, platform: str, key: str) -> str:
    subentry = next(iter(entry.subentries.values()))
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{subentry.unique_id}_{key}"
    )
    assert found is not None, key
    return found


async def test_add_whatsminer_with_its_password_and_use_it(
    hass: HomeAssistant, loopback: None
) -> None:
    """The flow asks for the API password only; writes are signed with it."""
    async with running_fleet(1, BASE, ("whatsminer",), time_scale=TIME_SCALE) as f:
        sim = f.miners[0]
        sim.personality.password = "s3cret"
        entry = await setup_site(hass, [], "Home")
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "miner"), context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"host": sim.ip}
        )
        assert result["step_id"] == "credentials"
        assert list(result["data_schema"].schema) == ["password"]
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"password": "nope"}
        )
        assert result["errors"] == {"base": "invalid_auth"}
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"password": "s3cret"}
        )
        assert result["step_id"] == "limits"
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"priority": 50}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        subentry = next(iter(entry.subentries.values()))
        assert subentry.data["password"] == "s3cret"
        await hass.async_block_till_done()

        select_id = _entity(hass, entry, "select", "work_mode")
        state = hass.states.get(select_id)
        assert state.attributes["options"] == ["low", "normal", "high"]
        assert state.state == "normal"
        await hass.services.async_call(
            "select",
            "select_option",
            {ATTR_ENTITY_ID: select_id, "option": "low"},
            blocking=True,
        )
        assert sim.personality.power_mode == "Low"  # signed with s3cret
        assert hass.states.get(select_id).state == "low"

        # A mode above what the site's limits allow is refused, not sent.
        await hass.services.async_call(
            DOMAIN,
            "set_limit",
            {"config_entry_id": entry.entry_id, "source": "manual", "power_kw": 3.0},
            blocking=True,
        )
        with pytest.raises(ServiceValidationError):
            await hass.services.async_call(
                "select",
                "select_option",
                {ATTR_ENTITY_ID: select_id, "option": "high"},
                blocking=True,
            )
        assert sim.personality.power_mode == "Low"

        switch_id = _entity(hass, entry, "switch", "mining")
        await hass.services.async_call(
            "switch", "turn_off", {ATTR_ENTITY_ID: switch_id}, blocking=True
        )
        assert sim.mining is False
        assert hass.states.get(switch_id).state == STATE_OFF
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_changed_password_is_repaired(
    hass: HomeAssistant, loopback: None
) -> None:
    """The admin password changed on the miner: a repair asks for the new one."""
    assert await async_setup_component(hass, "repairs", {})
    async with running_fleet(
        1, REPAIR_BASE, ("whatsminer",), time_scale=TIME_SCALE
    ) as f:
        sim = f.miners[0]
        # Added with the default password (admin): none is stored.
        entry = await setup_site(hass, [await miner_subentry(sim.ip)], "Loft")
        subentry_id = next(iter(entry.subentries))
        coordinator = entry.runtime_data.coordinator
        select_id = _entity(hass, entry, "select", "work_mode")
        await hass.services.async_call(
            "select",
            "select_option",
            {ATTR_ENTITY_ID: select_id, "option": "low"},
            blocking=True,
        )
        assert sim.personality.power_mode == "Low"

        # Changed with WhatsMinerTool: the next write is refused, nothing changes.
        sim.personality.password = "n3w"
        with pytest.raises(HomeAssistantError):
            await hass.services.async_call(
                "select",
                "select_option",
                {ATTR_ENTITY_ID: select_id, "option": "high"},
                blocking=True,
            )
        assert sim.personality.power_mode == "Low"
        manager, flow = await open_credentials_repair(hass, coordinator, subentry_id)
        issue_id = f"miner_credentials_{subentry_id}"
        assert flow["step_id"] == "init"
        assert list(flow["data_schema"].schema) == ["password"]  # no user name
        flow = await manager.async_configure(flow["flow_id"], {"password": "admin"})
        assert flow["errors"] == {"base": "invalid_auth"}
        assert "password" not in entry.subentries[subentry_id].data
        flow = await manager.async_configure(flow["flow_id"], {"password": "n3w"})
        assert flow["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()

        assert entry.subentries[subentry_id].data["password"] == "n3w"
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        coordinator = entry.runtime_data.coordinator
        assert coordinator.slots[subentry_id].reading is not None
        await hass.services.async_call(
            "select",
            "select_option",
            {ATTR_ENTITY_ID: select_id, "option": "high"},
            blocking=True,
        )
        assert sim.personality.power_mode == "High"  # signed with n3w
        assert hass.states.get(select_id).state == "high"
        assert await hass.config_entries.async_unload(entry.entry_id)
