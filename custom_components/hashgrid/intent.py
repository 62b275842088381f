"""Voice: HashGrid's Assist intents.

- Intents (registered by the `intent` integration through this platform's
  ``async_setup_intents``): curtail and resume a mining site, a site's status,
  and what we paid a neighbour today. ``llm.py`` offers them to LLM-based
  assistants as tools; their descriptions and slot schemas are what the LLM
  sees. Spoken responses are English.
- ``exposure.py`` exposes the key entities to Assist; the voice blueprint reads
  ``hashgrid.get_neighbour_paid`` (``lightning/actions.py``).
"""

from __future__ import annotations

import math
from typing import Any, Final, override

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import (
    HomeAssistant,
)
from homeassistant.helpers import (
    intent,
)
import probatio

from .const import DOMAIN, EntryKind
from .entries import ATTR_CONFIG_ENTRY_ID, loaded_entries
from .lightning.actions import PERIOD_TODAY, find_neighbour, start_of_period
from .lightning.const import CONF_DIRECTION, Direction
from .lightning.ledger import PaidSummary
from .lightning.runtime import LightningRuntime
from .mining.curtailment import source_text, until_text
from .mining.limits import BINDING_FLEET
from .mining.runtime import MiningSiteRuntime
from .models import HashGridConfigEntry
from .services import SERVICE_CURTAIL, SERVICE_RESUME

INTENT_CURTAIL: Final = "HashGridCurtail"
INTENT_RESUME: Final = "HashGridResume"
INTENT_STATUS: Final = "HashGridStatus"
INTENT_NEIGHBOUR_PAID: Final = "HashGridNeighbourPaid"

SLOT_SITE: Final = "site"
SLOT_NEIGHBOUR: Final = "neighbour"
SLOT_PERIOD: Final = "period"


# --- finding sites and neighbours --------------------------------------------


def _sites(hass: HomeAssistant, name: str | None) -> list[HashGridConfigEntry]:
    """The sites a sentence means: the one named, else every site."""
    sites = loaded_entries(hass, EntryKind.MINING_SITE)
    if not sites:
        raise intent.IntentHandleError("There is no mining site set up in HashGrid.")
    if not name:
        return sites
    wanted = name.strip().casefold()
    named = [e for e in sites if e.title.casefold() == wanted]
    if not named:
        raise intent.IntentHandleError(f"There is no mining site called {name}.")
    return named


def paid_summary(runtime: LightningRuntime, subentry: ConfigSubentry) -> PaidSummary:
    """What we paid a neighbour today (settlements marked paid since midnight)."""
    return runtime.settler.ledger.paid_since(subentry.subentry_id, start_of_period())


def _lightning(entry: HashGridConfigEntry) -> LightningRuntime:
    runtime = entry.runtime_data
    assert isinstance(runtime, LightningRuntime)
    return runtime


def _sats(amount: int) -> str:
    return "1 sat" if amount == 1 else f"{amount:,} sats"


def _kw(power_w: float) -> str:
    """Power as said: kW to one decimal, no trailing zero (0 kW, 2.5 kW)."""
    return f"{round(power_w / 1000, 1):g} kW"


# --- intents ------------------------------------------------------------------

_OPTIONAL_SITE: dict[Any, Any] = {
    probatio.Optional(
        SLOT_SITE,
        description="The mining site's name; leave out to mean every site.",
    ): intent.non_empty_string,
}


class _SiteCommand(intent.IntentHandler):
    """Curtail or resume sites through HashGrid's own actions."""

    service: str
    verb: str
    slot_schema = _OPTIONAL_SITE

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """Call the action for each site meant, then say what happened."""
        hass = intent_obj.hass
        slots = self.async_validate_slots(intent_obj.slots)
        sites = _sites(hass, slots.get(SLOT_SITE, {}).get("value"))
        said: list[str] = []
        results: list[dict[str, Any]] = []
        for site in sites:
            result = await hass.services.async_call(
                DOMAIN,
                self.service,
                {ATTR_CONFIG_ENTRY_ID: site.entry_id},
                blocking=True,
                context=intent_obj.context,
                return_response=True,
            )
            assert isinstance(result, dict)
            miners: list[dict[str, Any]] = list(result.get("miners") or [])  # type: ignore[arg-type]
            obeyed = sum(1 for m in miners if m.get("success"))
            failed = len(miners) - obeyed
            said.append(self.say(site.title, result, obeyed, failed, len(miners)))
            results.append(
                {
                    "site": site.title,
                    "miners": len(miners),
                    "obeyed": obeyed,
                    "failed": failed,
                    "power_w": result.get("power_w"),
                    "binding": result.get("binding"),
                    "budget_w": result.get("effective_budget_w"),
                    "cannot_stop": result.get("cannot_stop", []),
                }
            )
        response = intent_obj.create_response()
        response.response_type = intent.IntentResponseType.ACTION_DONE
        response.async_set_speech(". ".join(said) + ".")
        response.async_set_speech_slots({"sites": results})
        return response

    def say(
        self, title: str, result: dict[str, Any], obeyed: int, failed: int, asked: int
    ) -> str:
        """What to say of one site: what was done, and what still holds."""
        text = f"{self.verb} at {title}"
        if asked:
            text += f": {obeyed} of {asked} miners did"
            if failed:
                text += f", {failed} did not"
        cannot = list(result.get("cannot_stop") or [])
        if cannot:
            text += (
                f"; {len(cannot)} cannot stop and keeps mining ({', '.join(cannot)})"
                if len(cannot) == 1
                else f"; {len(cannot)} cannot stop and keep mining "
                f"({', '.join(cannot)})"
            )
        return text


class CurtailIntent(_SiteCommand):
    """Stop mining at a site (or every site): curtail to a 0 kW budget."""

    intent_type = INTENT_CURTAIL
    description = (
        "Stops bitcoin mining at a HashGrid mining site (sets its manual limit "
        "to 0 kW: every miner that can stop stops; the answer names any that "
        "cannot). Without a site name, stops every site."
    )
    service = SERVICE_CURTAIL
    verb = "Mining stopped"


class ResumeIntent(_SiteCommand):
    """Resume mining at a site (or every site): lift the budget."""

    intent_type = INTENT_RESUME
    description = (
        "Resumes bitcoin mining at a HashGrid mining site: clears the manual "
        "limit (a person's stop) and restarts the miners, a few seconds apart, "
        "up to any other limit that still holds (demand response, solar, "
        "price, battery); the answer says which. Without a site name, resumes "
        "every site."
    )
    service = SERVICE_RESUME
    verb = "Mining resumed"

    @override
    def say(
        self, title: str, result: dict[str, Any], obeyed: int, failed: int, asked: int
    ) -> str:
        """Resume clears the manual limit only: say what still binds, if any."""
        binding = result.get("binding")
        budget_w = result.get("effective_budget_w")
        if binding in (None, BINDING_FLEET):
            return super().say(title, result, obeyed, failed, asked)
        said = result.get("binding_said") or str(binding)
        if not budget_w:
            return f"Mining stays off at {title}: {said}"
        text = super().say(title, result, obeyed, failed, asked)
        return f"{text}; up to {_kw(budget_w)}, the {said} limit"


class StatusIntent(intent.IntentHandler):
    """Tell how a site is mining: miners mining/curtailed, power, budget."""

    intent_type = INTENT_STATUS
    description = (
        "Tells the status of HashGrid mining sites: how many miners are mining "
        "or curtailed, the total power drawn and the power budget."
    )
    slot_schema = _OPTIONAL_SITE

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """Describe each site meant."""
        slots = self.async_validate_slots(intent_obj.slots)
        sites = _sites(intent_obj.hass, slots.get(SLOT_SITE, {}).get("value"))
        said: list[str] = []
        results: list[dict[str, Any]] = []
        for site in sites:
            runtime = site.runtime_data
            assert isinstance(runtime, MiningSiteRuntime)
            data = runtime.coordinator.data
            budget_w = runtime.coordinator.budget_w
            total = data.mining + data.curtailed + data.unavailable
            text = (
                f"{site.title}: {data.mining} of {total} miners mining, "
                f"{data.curtailed} curtailed"
            )
            if data.unavailable:
                text += f", {data.unavailable} not answering"
            text += f", drawing {_kw(data.total_power_w)}"
            budget = runtime.curtailer.budget()
            if math.isinf(budget_w):
                text += ", no power budget"
            else:
                text += f", power budget {_kw(budget_w)} ({source_text(budget.binding)}"
                if budget.limit is not None:
                    text += until_text(budget.limit)
                text += ")"
            said.append(text)
            results.append(
                {
                    "site": site.title,
                    "mining": data.mining,
                    "curtailed": data.curtailed,
                    "unavailable": data.unavailable,
                    "power_w": round(data.total_power_w, 1),
                    "budget_w": None if math.isinf(budget_w) else budget_w,
                    "binding": budget.binding,
                }
            )
        response = intent_obj.create_response()
        response.response_type = intent.IntentResponseType.QUERY_ANSWER
        response.async_set_speech(". ".join(said) + ".")
        response.async_set_speech_slots({"sites": results})
        return response


class NeighbourPaidIntent(intent.IntentHandler):
    """What we paid a neighbour today over Lightning."""

    intent_type = INTENT_NEIGHBOUR_PAID
    description = (
        "Tells how many sats HashGrid paid a neighbour today over Lightning for "
        "the energy they shared (settlements completed since local midnight)."
    )
    slot_schema = {
        probatio.Required(
            SLOT_NEIGHBOUR, description="The neighbour's name."
        ): intent.non_empty_string,
        probatio.Optional(
            SLOT_PERIOD, description="The period; only 'today' is known."
        ): probatio.In([PERIOD_TODAY]),
    }

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """Find the neighbour on any node and sum today's paid settlements."""
        slots = self.async_validate_slots(intent_obj.slots)
        name: str = slots[SLOT_NEIGHBOUR]["value"].strip()
        nodes = loaded_entries(intent_obj.hass, EntryKind.LIGHTNING_NODE)
        if not nodes:
            raise intent.IntentHandleError(
                "There is no Lightning node set up in HashGrid."
            )
        for node in nodes:
            runtime = _lightning(node)
            if (subentry := find_neighbour(runtime, name)) is not None:
                break
        else:
            raise intent.IntentHandleError(f"I don't know a neighbour called {name}.")
        if subentry.data.get(CONF_DIRECTION) == Direction.THEY_PAY:
            raise intent.IntentHandleError(
                f"{subentry.title} pays us; we don't pay {subentry.title}."
            )
        summary = paid_summary(runtime, subentry)
        if summary.settlements:
            speech = (
                f"We paid {subentry.title} {_sats(summary.amount_sat)} today, in "
                f"{summary.settlements} "
                + ("settlement." if summary.settlements == 1 else "settlements.")
            )
        else:
            speech = f"We have paid {subentry.title} nothing today."
        response = intent_obj.create_response()
        response.response_type = intent.IntentResponseType.QUERY_ANSWER
        response.async_set_speech(speech)
        response.async_set_speech_slots(
            {
                "neighbour": subentry.title,
                "paid_sat": summary.amount_sat,
                "settlements": summary.settlements,
                "kwh": str(summary.kwh),
            }
        )
        return response


async def async_setup_intents(hass: HomeAssistant) -> None:
    """Register HashGrid's intents (the `intent` integration calls this)."""
    for handler in (
        CurtailIntent(),
        ResumeIntent(),
        StatusIntent(),
        NeighbourPaidIntent(),
    ):
        intent.async_register(hass, handler)
