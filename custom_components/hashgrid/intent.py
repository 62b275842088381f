"""Voice: HashGrid's Assist intents.

- Intents (registered by the `intent` integration through this platform's
  ``async_setup_intents``): curtail and resume a mining site, a site's status,
  and what we paid a neighbour today. ``llm.py`` offers them to LLM-based
  assistants as tools; their descriptions and slot schemas are what the LLM
  sees. Spoken responses come from the translations (``Phrases``), in the
  language the sentence was said in; a sentence that finds nothing (an
  unknown site or neighbour) is answered in words, not raised.
- ``exposure.py`` exposes the key entities to Assist; the voice blueprint reads
  ``hashgrid.get_neighbour_paid`` (``lightning/actions.py``).
"""

from __future__ import annotations

import math
from typing import Any, Final, override

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_NAME
from homeassistant.core import (
    HomeAssistant,
)
from homeassistant.helpers import intent, translation
import probatio

from .const import DOMAIN, EntryKind
from .entries import ATTR_CONFIG_ENTRY_ID, loaded_entries
from .lightning.actions import (
    PERIOD_TODAY,
    find_neighbour,
    received_sat,
    start_of_period,
)
from .lightning.const import CONF_DIRECTION, Direction
from .lightning.ledger import PaidSummary
from .lightning.runtime import LightningRuntime, lightning_runtime
from .mining.curtailment import source_text, until_text
from .mining.limits import BINDING_FLEET
from .mining.runtime import site_runtime
from .models import HashGridConfigEntry
from .services import SERVICE_CURTAIL, SERVICE_RESUME

INTENT_CURTAIL: Final = "HashGridCurtail"
INTENT_RESUME: Final = "HashGridResume"
INTENT_STATUS: Final = "HashGridStatus"
INTENT_NEIGHBOUR_PAID: Final = "HashGridNeighbourPaid"

SLOT_SITE: Final = "site"
SLOT_NEIGHBOUR: Final = "neighbour"
SLOT_PERIOD: Final = "period"


# --- what is said, in the user's language ------------------------------------
#
# Home Assistant's intent framework keeps an intent's spoken answers in
# per-language response templates of the `intents` package, which a custom
# integration cannot add to. HashGrid's answers live in its own translations
# instead (`translations/<language>.json`, category "exceptions", keys
# `intent_*`: the one category of backend strings an integration can carry),
# read for the language the sentence was said in, English where a language
# has none.

_INTENT_KEY: Final = f"component.{DOMAIN}.exceptions.intent_{{}}.message"


class Phrases:
    """The spoken phrases of one language."""

    def __init__(self, strings: dict[str, str]) -> None:
        self._strings = strings

    @classmethod
    async def load(cls, hass: HomeAssistant, language: str | None) -> Phrases:
        """Load the phrases of a language (HA falls back to English per key)."""
        strings = await translation.async_get_translations(
            hass, language or hass.config.language, "exceptions", {DOMAIN}
        )
        return cls(strings)

    def __call__(self, key: str, **placeholders: Any) -> str:
        """One phrase, its placeholders filled in."""
        template = self._strings.get(_INTENT_KEY.format(key))
        if template is None:  # a key missing from every language: a bug
            return key
        return template.format(**placeholders)


class Miss(intent.IntentHandleError):
    """What a sentence asked for is not there: answered in words, not logged."""

    def __init__(self, speech: str) -> None:
        super().__init__(speech)
        self.speech = speech


def _missed(intent_obj: intent.Intent, miss: Miss) -> intent.IntentResponse:
    """A miss as an answer: an error response with its sentence, no exception
    (Assist logs every IntentHandleError it catches as an ERROR)."""
    response = intent_obj.create_response()
    response.async_set_error(
        intent.IntentResponseErrorCode.NO_VALID_TARGETS, miss.speech
    )
    return response


class _Handler(intent.IntentHandler):
    """An intent that answers in the user's language; misses are answers."""

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """Load the phrases, answer; say a miss instead of raising it."""
        say = await Phrases.load(intent_obj.hass, intent_obj.language)
        try:
            return await self.answer(intent_obj, say)
        except Miss as miss:
            return _missed(intent_obj, miss)

    async def answer(
        self, intent_obj: intent.Intent, say: Phrases
    ) -> intent.IntentResponse:
        """Handle the intent (subclasses)."""
        raise NotImplementedError


# --- finding sites and neighbours --------------------------------------------


def site_name(entry: HashGridConfigEntry) -> str:
    """A site as said: the name the user gave it ("Garage"), else its title."""
    return str(entry.data.get(CONF_NAME) or entry.title)


def _site_forms(entry: HashGridConfigEntry) -> set[str]:
    forms = {entry.title, site_name(entry)}
    forms |= {f.casefold().removesuffix(" mining site") for f in forms}
    return {" ".join(f.casefold().split()) for f in forms}


def _sites(
    hass: HomeAssistant, name: str | None, say: Phrases
) -> list[HashGridConfigEntry]:
    """The sites a sentence means: the one named (its title or the name it was
    given, any case, "mining site" or not), else every site."""
    sites = loaded_entries(hass, EntryKind.MINING_SITE)
    if not sites:
        raise Miss(say("no_site"))
    if not name:
        return sites
    wanted = " ".join(name.casefold().split())
    wanted_forms = {wanted, wanted.removesuffix(" mining site")}
    named = [e for e in sites if wanted_forms & _site_forms(e)]
    if not named:
        raise Miss(say("unknown_site", site=name.strip()))
    return named


def paid_summary(runtime: LightningRuntime, subentry: ConfigSubentry) -> PaidSummary:
    """What we paid a neighbour today (settlements marked paid since midnight)."""
    return runtime.settler.ledger.paid_since(subentry.subentry_id, start_of_period())


def _sats(say: Phrases, amount: int) -> str:
    return say("sat") if amount == 1 else say("sats", amount=f"{amount:,}")


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


class _SiteCommand(_Handler):
    """Curtail or resume sites through HashGrid's own actions."""

    service: str
    done_key: str
    slot_schema = _OPTIONAL_SITE

    @override
    async def answer(
        self, intent_obj: intent.Intent, say: Phrases
    ) -> intent.IntentResponse:
        """Call the action for each site meant, then say what happened."""
        hass = intent_obj.hass
        slots = self.async_validate_slots(intent_obj.slots)
        sites = _sites(hass, slots.get(SLOT_SITE, {}).get("value"), say)
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
            said.append(
                self.say(say, site_name(site), result, obeyed, failed, len(miners))
            )
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
        self,
        say: Phrases,
        site: str,
        result: dict[str, Any],
        obeyed: int,
        failed: int,
        asked: int,
    ) -> str:
        """What to say of one site: what was done, and what still holds."""
        text = say(self.done_key, site=site)
        if asked:
            text += ": " + say("miners_obeyed", obeyed=obeyed, asked=asked)
            if failed:
                text += ", " + say("miners_failed", failed=failed)
        cannot = list(result.get("cannot_stop") or [])
        if cannot:
            text += "; " + say(
                "cannot_stop_one" if len(cannot) == 1 else "cannot_stop_many",
                count=len(cannot),
                miners=", ".join(cannot),
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
    done_key = "stopped"


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
    done_key = "resumed"

    @override
    def say(
        self,
        say: Phrases,
        site: str,
        result: dict[str, Any],
        obeyed: int,
        failed: int,
        asked: int,
    ) -> str:
        """Resume clears the manual limit only: say what still binds, if any."""
        binding = result.get("binding")
        budget_w = result.get("effective_budget_w")
        if binding in (None, BINDING_FLEET):
            return super().say(say, site, result, obeyed, failed, asked)
        said = result.get("binding_said") or str(binding)
        if not budget_w:
            return say("stays_off", site=site, binding=said)
        text = super().say(say, site, result, obeyed, failed, asked)
        return text + "; " + say("up_to", power=_kw(budget_w), binding=said)


class StatusIntent(_Handler):
    """Tell how a site is mining: miners mining/curtailed, power, budget."""

    intent_type = INTENT_STATUS
    description = (
        "Tells the status of HashGrid mining sites: how many miners are mining "
        "or curtailed, the total power drawn and the power budget."
    )
    slot_schema = _OPTIONAL_SITE

    @override
    async def answer(
        self, intent_obj: intent.Intent, say: Phrases
    ) -> intent.IntentResponse:
        """Describe each site meant."""
        slots = self.async_validate_slots(intent_obj.slots)
        sites = _sites(intent_obj.hass, slots.get(SLOT_SITE, {}).get("value"), say)
        said: list[str] = []
        results: list[dict[str, Any]] = []
        for site in sites:
            runtime = site_runtime(site)
            data = runtime.coordinator.data
            budget_w = runtime.coordinator.budget_w
            total = data.mining + data.curtailed + data.unavailable
            text = say(
                "status",
                site=site_name(site),
                mining=data.mining,
                total=total,
                curtailed=data.curtailed,
            )
            if data.unavailable:
                text += ", " + say("status_unavailable", count=data.unavailable)
            text += ", " + say("status_drawing", power=_kw(data.total_power_w))
            budget = runtime.curtailer.budget()
            if math.isinf(budget_w):
                text += ", " + say("status_no_budget")
            else:
                binding = source_text(budget.binding)
                if budget.limit is not None:
                    binding += until_text(budget.limit)
                text += ", " + say(
                    "status_budget", power=_kw(budget_w), binding=binding
                )
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


class NeighbourPaidIntent(_Handler):
    """What we paid a neighbour today over Lightning (or what they paid us)."""

    intent_type = INTENT_NEIGHBOUR_PAID
    description = (
        "Tells how many sats HashGrid paid a neighbour today over Lightning for "
        "the energy they shared (settlements completed since local midnight); "
        "for a neighbour who pays us, what they have paid us. The neighbour is "
        "found by name in any case (e.g. 'Alice', 'neighbour alice')."
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
    async def answer(
        self, intent_obj: intent.Intent, say: Phrases
    ) -> intent.IntentResponse:
        """Find the neighbour on any node and sum today's paid settlements."""
        slots = self.async_validate_slots(intent_obj.slots)
        name: str = slots[SLOT_NEIGHBOUR]["value"].strip()
        nodes = loaded_entries(intent_obj.hass, EntryKind.LIGHTNING_NODE)
        if not nodes:
            raise Miss(say("no_node"))
        for node in nodes:
            runtime = lightning_runtime(node)
            if (subentry := find_neighbour(runtime, name)) is not None:
                break
        else:
            raise Miss(say("unknown_neighbour", neighbour=name))
        response = intent_obj.create_response()
        response.response_type = intent.IntentResponseType.QUERY_ANSWER
        if subentry.data.get(CONF_DIRECTION) == Direction.THEY_PAY:
            received = received_sat(runtime, subentry.subentry_id)
            response.async_set_speech(
                say("they_pay", neighbour=subentry.title)
                if received is None
                else say(
                    "they_pay_received",
                    neighbour=subentry.title,
                    received=_sats(say, received),
                )
            )
            response.async_set_speech_slots(
                {
                    "neighbour": subentry.title,
                    "direction": Direction.THEY_PAY.value,
                    "received_sat": received,
                }
            )
            return response
        summary = paid_summary(runtime, subentry)
        if not summary.settlements:
            speech = say("paid_nothing", neighbour=subentry.title)
        else:
            speech = say(
                "paid_one" if summary.settlements == 1 else "paid_many",
                neighbour=subentry.title,
                amount=_sats(say, summary.amount_sat),
                settlements=summary.settlements,
            )
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
