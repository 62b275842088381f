"""HashGrid's intents: what they do, what they say, and how LLM assistants see them."""

from __future__ import annotations

from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import intent, llm
import pytest

from custom_components.hashgrid.const import DOMAIN
from simulators.lightning import LightningSim
from simulators.miner import Fleet
from tests.lightning.conftest import add_node, call, neighbour_subentry, set_meter

from .conftest import entity_id, unload_all

LLM_CONTEXT = llm.LLMContext(
    platform="test",
    context=Context(),
    language="en",
    assistant="conversation",
    device_id=None,
)


async def handle(
    hass: HomeAssistant, intent_type: str, **slots: str
) -> intent.IntentResponse:
    """Handle one intent, as an agent would."""
    response = await intent.async_handle(
        hass,
        "test",
        intent_type,
        {name: {"value": value} for name, value in slots.items()},
        language="en",
        assistant="conversation",
    )
    await hass.async_block_till_done()
    return response


def spoken(response: intent.IntentResponse) -> str:
    return str(response.speech["plain"]["speech"])


async def test_curtail_status_resume(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The intents call the site's own actions and say what the miners did."""
    lux, ant, axe = fleet.miners
    status = await handle(hass, "HashGridStatus")
    assert spoken(status).startswith(
        "Garage: 3 of 3 miners mining, 0 curtailed, drawing "
    )
    assert spoken(status).endswith(", no power budget.")

    done = await handle(hass, "HashGridCurtail")
    assert done.response_type is intent.IntentResponseType.ACTION_DONE
    # The Bitaxe cannot stop, so the planner sends it nothing.
    assert spoken(done) == (
        "Mining stopped at Garage: 2 of 2 miners did; 1 cannot stop and keeps "
        f"mining ({list(site.subentries.values())[2].title})."
    )
    assert not lux.mining
    assert not ant.mining
    assert axe.mining

    status = await handle(hass, "HashGridStatus", site="garage")
    assert status.response_type is intent.IntentResponseType.QUERY_ANSWER
    text = spoken(status)
    # (The power read at the last poll: the stopped miners may still be ramping down.)
    assert text.startswith("Garage: 1 of 3 miners mining, 2 curtailed, drawing ")
    assert text.endswith(" kW, power budget 0 kW (manual).")
    figures = status.speech_slots["sites"][0]
    assert figures["mining"] == 1
    assert figures["curtailed"] == 2
    assert figures["budget_w"] == 0

    done = await handle(hass, "HashGridResume", site="Garage")
    assert spoken(done) == "Mining resumed at Garage: 2 of 2 miners did."
    assert lux.mining
    assert ant.mining
    assert spoken(await handle(hass, "HashGridStatus")).endswith("no power budget.")


async def test_resume_during_demand_response_stays_off_and_says_why(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """'Resume mining' during a DR event clears only the manual limit: the
    miners stay off and the answer names what binds and until when."""
    lux, ant, _axe = fleet.miners
    await handle(hass, "HashGridCurtail")
    await hass.services.async_call(
        DOMAIN,
        "set_limit",
        {
            "config_entry_id": site.entry_id,
            "source": "demand_response",
            "power_kw": 0,
            "duration": {"hours": 2},
        },
        blocking=True,
    )
    done = await handle(hass, "HashGridResume")
    said = spoken(done)
    assert said.startswith("Mining stays off at Garage: demand response until ")
    assert not lux.mining
    assert not ant.mining
    assert done.speech_slots["sites"][0]["binding"] == "demand_response"
    status = spoken(await handle(hass, "HashGridStatus"))
    assert "power budget 0 kW (demand response until " in status

    # A solar limit with room for some miners: resumed, up to it, said so.
    await hass.services.async_call(
        DOMAIN,
        "clear_limit",
        {"config_entry_id": site.entry_id, "source": "demand_response"},
        blocking=True,
    )
    await hass.services.async_call(
        DOMAIN,
        "set_limit",
        {"config_entry_id": site.entry_id, "source": "solar", "power_kw": 4},
        blocking=True,
    )
    said = spoken(await handle(hass, "HashGridResume"))
    assert said.startswith("Mining resumed at Garage")
    assert said.endswith("up to 4 kW, the solar limit.")


async def test_unknown_site_and_no_site(
    hass: HomeAssistant, site: ConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """A site nobody has is answered in words (no exception, nothing logged);
    nothing is curtailed. A site is found by its name in any case."""
    missed = await handle(hass, "HashGridCurtail", site="Attic")
    assert missed.response_type is intent.IntentResponseType.ERROR
    assert missed.error_code is intent.IntentResponseErrorCode.NO_VALID_TARGETS
    assert spoken(missed) == "There is no mining site called Attic."
    status = await handle(hass, "HashGridStatus", site="GARAGE mining site")
    assert status.response_type is intent.IntentResponseType.QUERY_ANSWER
    await unload_all(hass)
    missed = await handle(hass, "HashGridStatus")
    assert spoken(missed) == "There is no mining site set up in HashGrid."
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_llm_assistants_get_the_intents_as_tools(
    hass: HomeAssistant, site: ConfigEntry, fleet: Fleet
) -> None:
    """The Assist LLM API lists HashGrid's tools with their descriptions and
    calls them; they follow the site switch's exposure."""
    api = await llm.async_get_api(hass, llm.LLM_API_ASSIST, LLM_CONTEXT)
    tools = {tool.name: tool for tool in api.tools}
    mining = {"hashgrid__HashGridCurtail", "hashgrid__HashGridResume"}
    assert mining | {"hashgrid__HashGridStatus"} <= set(tools)
    # No Lightning node: nothing to ask about neighbours.
    assert "hashgrid__HashGridNeighbourPaid" not in tools
    curtail = tools["hashgrid__HashGridCurtail"]
    assert curtail.description is not None
    assert "Stops bitcoin mining" in curtail.description
    assert curtail.integration == DOMAIN
    assert "site" in curtail.parameters.schema
    assert tools["hashgrid__HashGridStatus"].annotations.read_only

    result = await api.async_call_tool(
        llm.ToolInput("hashgrid__HashGridCurtail", {"site": "Garage"})
    )
    assert result.data["speech"]["plain"]["speech"].startswith(
        "Mining stopped at Garage: 2 of 2 miners did; 1 cannot stop"
    )
    assert not fleet.miners[0].mining

    # Not exposed to the assistant: no mining tools.
    switch = entity_id(hass, "switch", f"{site.entry_id}_site_mining")
    async_expose_entity(hass, "conversation", switch, False)
    api = await llm.async_get_api(hass, llm.LLM_API_ASSIST, LLM_CONTEXT)
    assert not {tool.name for tool in api.tools} & mining


async def test_what_we_paid_a_neighbour_today(
    hass: HomeAssistant, assist: None, net: LightningSim
) -> None:
    """The intent and the action read today's paid settlements from the ledger."""
    alice, bob = net.neighbours
    set_meter(hass, alice, "1000")
    set_meter(hass, bob, "50")
    entry = await add_node(
        hass,
        net,
        subentries=[
            neighbour_subentry(alice, name="Alice", price=123.4),
            neighbour_subentry(bob, name="Bob", direction="they_pay"),
        ],
    )
    said = spoken(await handle(hass, "HashGridNeighbourPaid", neighbour="Alice"))
    assert said == "We have paid Alice nothing today."

    async def settle(kwh: str) -> None:
        set_meter(hass, alice, kwh)
        await call(hass, "settle_neighbour", entry, neighbour="Alice")

    await settle("1000")  # the baseline
    await settle("1001.5")  # 185.1 sat: 185 paid
    await settle("1003.01")  # 186 more
    response = await handle(
        hass, "HashGridNeighbourPaid", neighbour="alice", period="today"
    )
    assert spoken(response) == "We paid Alice 371 sats today, in 2 settlements."
    assert response.speech_slots == {
        "neighbour": "Alice",
        "paid_sat": 371,
        "settlements": 2,
        "kwh": "3.01",
    }
    paid = await call(hass, "get_neighbour_paid", entry, neighbour="ALICE")
    assert paid["paid_sat"] == 371
    assert paid["settlements"] == 2
    assert paid["period"] == "today"

    missed = await handle(hass, "HashGridNeighbourPaid", neighbour="Carol")
    assert missed.response_type is intent.IntentResponseType.ERROR
    assert spoken(missed) == "I don't know a neighbour called Carol."
    bob_said = await handle(hass, "HashGridNeighbourPaid", neighbour="bob")
    assert bob_said.response_type is intent.IntentResponseType.QUERY_ANSWER
    assert spoken(bob_said).startswith("Bob pays us; we don't pay Bob.")
    assert bob_said.speech_slots["direction"] == "they_pay"
    with pytest.raises(ServiceValidationError):
        await call(hass, "get_neighbour_paid", entry, neighbour="Carol")

    api = await llm.async_get_api(hass, llm.LLM_API_ASSIST, LLM_CONTEXT)
    tool = next(t for t in api.tools if t.name == "hashgrid__HashGridNeighbourPaid")
    assert "neighbour" in str(tool.parameters.schema)
    result = await api.async_call_tool(
        llm.ToolInput(tool.name, {"neighbour": "Alice", "period": "today"})
    )
    assert result.data["speech_slots"]["paid_sat"] == 371
