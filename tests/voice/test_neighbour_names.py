"""Assist finds neighbours as people say them, in both directions, answers a
miss in words without logging an ERROR, and speaks the user's language."""

from __future__ import annotations

import ast
from pathlib import Path
import re

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import intent
import pytest
import pytest_socket

from custom_components.hashgrid import intent as hashgrid_intent
from custom_components.hashgrid.lightning.actions import spoken_forms
from simulators.lightning import LightningSim
from tests.lightning.conftest import add_node, call, neighbour_subentry, set_meter

from .conftest import answered, say, speech, use_blueprint
from .test_intents import handle, spoken

ROOT = Path(__file__).resolve().parents[2]
INTENT_PY = ROOT / "custom_components" / "hashgrid" / "intent.py"
EN_JSON = ROOT / "custom_components" / "hashgrid" / "translations" / "en.json"


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")
    ]


@pytest.mark.parametrize(
    ("title", "said"),
    [
        ("Alice", "alice"),
        ("Alice", "Neighbour Alice"),
        ("Alice", "our neighbour ALICE"),
        ("Neighbour Alice (we pay)", "alice"),
        ("Neighbour Alice (we pay)", "neighbour alice"),
        ("Neighbour Alice (we pay)", "Neighbour Alice (we pay)"),
        ("Bob the Baker", "bob the baker"),
    ],
)
def test_spoken_forms_meet(title: str, said: str) -> None:
    """A name as said meets the neighbour's name as configured."""
    assert spoken_forms(title) & spoken_forms(said)


@pytest.mark.parametrize(("title", "said"), [("Alice", "Alicia"), ("Bob", "bo")])
def test_other_names_do_not_meet(title: str, said: str) -> None:
    assert not spoken_forms(title) & spoken_forms(said)


async def _node(hass: HomeAssistant, net: LightningSim) -> ConfigEntry:
    alice, bob = net.neighbours
    set_meter(hass, alice, "1000")
    set_meter(hass, bob, "50")
    return await add_node(
        hass,
        net,
        subentries=[
            neighbour_subentry(alice, name="Neighbour Alice (we pay)", price=100),
            neighbour_subentry(bob, name="Bob", direction="they_pay"),
        ],
    )


async def test_intent_finds_neighbours_by_name_and_alias(
    hass: HomeAssistant,
    assist: None,
    net: LightningSim,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ "alice", "neighbour alice", "Alice" all reach Alice; Bob, who pays us,
    is answered as such; an unknown name is said, not logged."""
    await _node(hass, net)
    for name in ("alice", "neighbour alice", "Alice", "NEIGHBOUR ALICE (WE PAY)"):
        response = await handle(hass, "HashGridNeighbourPaid", neighbour=name)
        assert response.response_type is intent.IntentResponseType.QUERY_ANSWER
        assert spoken(response) == (
            "We have paid Neighbour Alice (we pay) nothing today."
        ), name
    for name in ("bob", "Neighbour Bob"):
        response = await handle(hass, "HashGridNeighbourPaid", neighbour=name)
        assert response.response_type is intent.IntentResponseType.QUERY_ANSWER
        assert spoken(response).startswith("Bob pays us; we don't pay Bob."), name
    missed = await handle(hass, "HashGridNeighbourPaid", neighbour="carol")
    assert missed.response_type is intent.IntentResponseType.ERROR
    assert spoken(missed) == "I don't know a neighbour called carol."
    assert _errors(caplog) == []


@pytest.mark.usefixtures("blueprints")
async def test_assist_sentences_for_both_neighbours_and_a_miss(
    hass: HomeAssistant,
    net: LightningSim,
    site: ConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the voice blueprint, as a person types it: names in any case and
    with "neighbour", the neighbour who pays us, and a miss — no ERROR logged."""
    pytest_socket.socket_allow_hosts(["127.0.0.0/8"], allow_unix_socket=True)
    node = await _node(hass, net)
    await use_blueprint(
        hass, "voice_commands", {"site": site.entry_id, "node": node.entry_id}
    )
    alice = net.neighbours[0]
    for kwh in ("1000", "1002"):  # baseline, then 200 sat
        set_meter(hass, alice, kwh)
        await call(hass, "settle_neighbour", node, neighbour="alice")
    for sentence in (
        "how much did we pay alice today",
        "How much did we pay Alice today?",
        "what did we pay neighbour alice today",
    ):
        result = await say(hass, sentence)
        assert answered(result), speech(result)
        assert speech(result) == ("We paid Neighbour Alice (we pay) 200 sats today."), (
            sentence
        )
    result = await say(hass, "how much did we pay bob today")
    assert speech(result).startswith("Bob pays us; we don't pay Bob."), speech(result)
    result = await say(hass, "what did we pay carol today")
    assert speech(result) == "I don't know a neighbour called carol."
    assert _errors(caplog) == []


async def test_spoken_answers_come_from_the_translations(
    hass: HomeAssistant,
    assist: None,
    net: LightningSim,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer is the phrase of the sentence's language (a Dutch one here),
    English where that language has none."""
    await _node(hass, net)
    real = hashgrid_intent.translation.async_get_translations

    async def dutch(
        hass: HomeAssistant, language: str, category: str, integrations: object
    ) -> dict[str, str]:
        strings = dict(await real(hass, "en", category, integrations))  # type: ignore[arg-type]
        if language == "nl":
            key = "component.hashgrid.exceptions.intent_paid_nothing.message"
            strings[key] = "We hebben {neighbour} vandaag niets betaald."
        return strings

    monkeypatch.setattr(hashgrid_intent.translation, "async_get_translations", dutch)
    response = await intent.async_handle(
        hass,
        "test",
        "HashGridNeighbourPaid",
        {"neighbour": {"value": "alice"}},
        language="nl",
    )
    assert spoken(response) == (
        "We hebben Neighbour Alice (we pay) vandaag niets betaald."
    )
    response = await intent.async_handle(
        hass,
        "test",
        "HashGridNeighbourPaid",
        {"neighbour": {"value": "carol"}},
        language="nl",
    )
    assert spoken(response) == "I don't know a neighbour called carol."


def test_every_spoken_phrase_is_translated() -> None:
    """Each phrase intent.py says has its English in translations/en.json, and
    intent.py holds no English sentence of its own."""
    import json

    source = INTENT_PY.read_text()
    keys = set(re.findall(r'say\(\s*"([a-z_]+)"', source))
    keys |= set(re.findall(r'done_key = "([a-z_]+)"', source))
    keys |= set(re.findall(r'"([a-z_]+)" if [^"]+ else "([a-z_]+)"', source)[0])
    for one, many in re.findall(r'"([a-z_]+)" if [^"]+ else "([a-z_]+)"', source):
        keys |= {one, many}
    exceptions = json.loads(EN_JSON.read_text())["exceptions"]
    missing = {k for k in keys if f"intent_{k}" not in exceptions}
    assert len(keys) >= 20
    assert not missing
    # No spoken English in code: set_speech is only ever given phrases.
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "async_set_speech"
        ):
            assert not isinstance(node.args[0], ast.Constant | ast.JoinedStr)
