"""The coordinator of a grid signal entry: the VEN, the schedule, its store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
import secrets
from typing import Any

from homeassistant.const import UnitOfPower
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
    ServiceValidationError,
)
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util
from homeassistant.util.signal_type import SignalType

from ..const import DOMAIN, LOGGER
from ..models import HashGridConfigEntry
from .certs import CredentialsError, UnreadableFile
from .const import (
    CONF_CA_FILE,
    CONF_CLIENT_CERT,
    CONF_CLIENT_KEY,
    CONF_TELEMETRY_SENSOR,
    CONF_VEN_NAME,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_URL,
    EVENT_CANCELLED,
    EVENT_MODIFIED,
    EVENT_NEW,
    EVENT_REJECTED,
    STORAGE_VERSION,
)
from .dr_event import (
    OPT_IN,
    OPT_OUT,
    Change,
    DrEvent,
    EventProblem,
    EventStatus,
    ProblemCode,
)
from .parse import meant_for, parse_event
from .schedule import FLAP_HOLD, Schedule, ScheduledEvent, status_skew
from .ven import DEFAULT_POLL, Ven, VenConfig

_CHANGE_EVENT = {
    Change.NEW: EVENT_NEW,
    Change.MODIFIED: EVENT_MODIFIED,
    Change.CANCELLED: EVENT_CANCELLED,
}
_POWER_TO_W = {
    UnitOfPower.WATT: 1.0,
    UnitOfPower.KILO_WATT: 1000.0,
    UnitOfPower.MEGA_WATT: 1_000_000.0,
}


def ven_config(data: Mapping[str, Any], ven_id: str | None = None) -> VenConfig:
    """Return the VEN's configuration from an entry's (or a form's) data."""
    return VenConfig(
        vtn_url=data[CONF_VTN_URL],
        ven_name=data[CONF_VEN_NAME],
        ven_id=ven_id,
        client_cert=data.get(CONF_CLIENT_CERT) or None,
        client_key=data.get(CONF_CLIENT_KEY) or None,
        ca_file=data.get(CONF_CA_FILE) or None,
        vtn_fingerprint=data.get(CONF_VTN_FINGERPRINT) or None,
    )


def change_signal(
    entry_id: str,
) -> SignalType[str, ScheduledEvent | None, EventProblem | None]:
    """Return the dispatcher signal of an entry's schedule changes.

    Its arguments: the change (new, modified, cancelled, rejected), the event
    concerned (None for a bad event never scheduled) and the problem, if any.
    """
    return SignalType(f"{DOMAIN}_grid_signal_change_{entry_id}")


def issue_id(entry_id: str, event_id: str | None) -> str:
    """Return the repair issue id of a bad event."""
    return f"grid_signal_bad_event_{entry_id}_{event_id or 'unknown'}"


class GridSignalCoordinator(DataUpdateCoordinator[bool]):
    """Poll the VTN (data: connected?) and keep the known schedule in force."""

    config_entry: HashGridConfigEntry

    def __init__(self, hass: HomeAssistant, entry: HashGridConfigEntry) -> None:
        """Prepare; `async_load` and `async_start_ven` follow."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} grid signal {entry.title}",
            update_interval=DEFAULT_POLL,
            always_update=False,
        )
        self.store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.grid_signal.{entry.entry_id}"
        )
        self.schedule = Schedule(seed=entry.data[CONF_VEN_NAME])
        self.participate = True
        self.ven: Ven | None = None
        self.ven_id: str | None = None
        self.pending_opts: set[str] = set()
        self.problems: dict[str, EventProblem] = {}
        self.change_signal = change_signal(entry.entry_id)
        self._unsub_boundary: CALLBACK_TYPE | None = None
        self._was_connected: bool | None = None
        # While a message is handled, saving, re-arming the timer and
        # refreshing the entities wait for its end (once per message).
        self._batching = False
        self._dirty = False
        self._skew_seen: tuple[str, EventStatus, timedelta] | None = None

    # --- the store --------------------------------------------------------------

    async def async_load(self) -> None:
        """Load the schedule known before a restart; it is in force at once."""
        stored = await self.store.async_load() or {}
        # The randomised starts' seed: this site's own, so that sites sharing a
        # VEN name never start together; stored, so a restart keeps the starts.
        seed = stored.get("seed") or secrets.token_hex(16)
        self.schedule = Schedule.from_dict(seed, stored.get("schedule"))
        self.participate = bool(stored.get("participate", True))
        self.schedule.act_on_test_events = bool(stored.get("act_on_test_events", False))
        self.ven_id = stored.get("ven_id")
        self.pending_opts = set(stored.get("pending_opts", ()))
        self.schedule.prune(dt_util.utcnow())
        if seed != stored.get("seed"):
            self._save()
        self.data = False
        self._arm_boundary()

    def _to_store(self) -> dict[str, Any]:
        return {
            "seed": self.schedule.seed,
            "participate": self.participate,
            "act_on_test_events": self.schedule.act_on_test_events,
            "ven_id": self.ven_id,
            "pending_opts": sorted(self.pending_opts),
            "schedule": self.schedule.as_dict(),
        }

    @callback
    def _save(self) -> None:
        self.store.async_delay_save(self._to_store, 1)

    async def async_save(self) -> None:
        """Write the schedule now (on unload)."""
        await self.store.async_save(self._to_store())

    # --- the VEN ------------------------------------------------------------------

    def _build_ven(self) -> Ven:
        """Build the VEN (reads certificate files: runs in the executor)."""
        sensor = self.config_entry.options.get(CONF_TELEMETRY_SENSOR)
        return Ven(
            ven_config(self.config_entry.data, self.ven_id),
            on_event=self._on_event,
            on_events=self._on_events,
            on_malformed=self._on_malformed,
            power=self._read_power if sensor else None,
        )

    async def async_start_ven(self) -> None:
        """Build the VEN; the first refresh registers it.

        A certificate file that cannot be read may come back (a share not yet
        mounted): try again later. One that is wrong stays wrong: reconfigure.
        """
        try:
            self.ven = await self.hass.async_add_executor_job(self._build_ven)
        except UnreadableFile as err:
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="grid_signal_credentials",
                translation_placeholders={"error": str(err)},
            ) from err
        except CredentialsError as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="grid_signal_credentials",
                translation_placeholders={"error": str(err)},
            ) from err

    async def async_close(self) -> None:
        """Stop the VEN and the timers, keep the schedule."""
        if self._unsub_boundary is not None:
            self._unsub_boundary()
            self._unsub_boundary = None
        if self.ven is not None:
            await self.ven.close()
        await self.async_save()

    async def _async_update_data(self) -> bool:
        """Poll the VTN; a failure never loses the schedule (data: connected).

        A VTN that refuses this VEN's certificate raises ConfigEntryAuthFailed:
        polling stops and a reauth flow asks for new files; the known schedule
        stays in force meanwhile.
        """
        ven = self.ven
        assert ven is not None
        connected = await ven.poll()
        if (refusal := ven.refusal) is not None:
            self._was_connected = False
            self.data = False
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="grid_signal_refused",
                translation_placeholders={
                    "vtn_url": ven.config.vtn_url,
                    "refusal": refusal,
                },
            )
        if ven.ven_id and ven.ven_id != self.ven_id:
            self.ven_id = ven.ven_id
            self._save()
        if connected:
            self.update_interval = ven.poll_interval
            await self._send_pending()
        if connected != self._was_connected:
            if connected:
                LOGGER.info("OpenADR VTN %s is connected", ven.config.vtn_url)
            elif self._was_connected:
                LOGGER.warning(
                    "OpenADR VTN %s is unreachable; the known schedule stays in force",
                    ven.config.vtn_url,
                )
            self._was_connected = connected
        if self.schedule.prune(dt_util.utcnow()):
            self._save()
        self._arm_boundary()
        return connected

    # --- events from the VTN ----------------------------------------------------------

    def _notify(
        self,
        kind: str,
        scheduled: ScheduledEvent | None,
        problem: EventProblem | None = None,
    ) -> None:
        async_dispatcher_send(self.hass, self.change_signal, kind, scheduled, problem)
        if self._batching:
            self._dirty = True
        else:
            self._flush()

    @callback
    def _flush(self) -> None:
        self._dirty = False
        self._save()
        self._arm_boundary()
        self.async_update_listeners()

    def _on_events(self, raws: list[Mapping[str, Any]]) -> list[str]:
        """Handle one full event list: each event, then implied cancellations.

        A distribute lists every pending and active event of this VEN: a known
        event missing from it was cancelled (OpenADR 2.0b's implied
        cancellation), unless it is over or the VTN last called it completed.
        The store, the timer and the entities follow once, at the end.
        """
        self._batching = True
        self._skew_seen = None
        try:
            opts = [self._on_event(raw, False) for raw in raws]
            listed = {
                str(event_id)
                for raw in raws
                if (event_id := (raw.get("event_descriptor") or {}).get("event_id"))
                is not None
            }
            self._imply_cancellations(listed)
            self._report_skew()
        finally:
            self._batching = False
            if self._dirty:
                self._flush()
        return opts

    def _imply_cancellations(self, listed: set[str]) -> None:
        now = dt_util.utcnow()
        for scheduled in self.schedule.live():
            if (
                scheduled.event_id in listed
                or scheduled.end <= now
                or scheduled.event.status is EventStatus.COMPLETED
            ):
                continue
            LOGGER.info(
                "OpenADR event %s is no longer in the VTN's list: cancelled",
                scheduled.event_id,
            )
            cancelled = self.schedule.cancel(scheduled.event_id, now)
            if cancelled is not None:
                self._notify(EVENT_CANCELLED, cancelled)

    def _on_event(self, raw: Mapping[str, Any], update: bool) -> str:
        """Handle one event (new or updated); answer optIn or optOut."""
        result = parse_event(raw)
        if isinstance(result, EventProblem):
            self._reject(result)
            return OPT_OUT
        ven_id = self.ven.ven_id if self.ven is not None else self.ven_id
        if not meant_for(result, ven_id or self.ven_id):
            LOGGER.info(
                "OpenADR event %s targets other VENs (%s), not this one (%s): not acted on",
                result.event_id,
                ", ".join(result.targets),
                ven_id,
            )
            if (cancelled := self.schedule.cancel(result.event_id)) is not None:
                self._notify(EVENT_CANCELLED, cancelled)
            return OPT_OUT
        return self._accept(result)

    def _accept(self, event: DrEvent) -> str:
        if event.open_ended and event.status is EventStatus.COMPLETED:
            # An event active until cancelled ends when the VTN ends it.
            event = replace(event, status=EventStatus.CANCELLED)
        if (problem := self.problems.pop(event.event_id, None)) is not None:
            ir.async_delete_issue(
                self.hass, DOMAIN, issue_id(self.config_entry.entry_id, event.event_id)
            )
            LOGGER.info(
                "OpenADR event %s is valid again (was: %s)",
                event.event_id,
                problem.code,
            )
        participate = self.participate and (
            self.schedule.act_on_test_events or not event.test_event
        )
        known = self.schedule.get(event.event_id)
        flaps = 0 if known is None else known.flaps
        change, scheduled = self.schedule.upsert(
            event, participate=participate, now=dt_util.utcnow()
        )
        if scheduled.flaps > flaps:
            self._report_flapping(scheduled)
        if (ahead := status_skew(event, dt_util.utcnow())) is not None:
            self._skew_seen = (event.event_id, event.status, ahead)
            if (
                event.status is EventStatus.ACTIVE
                and ahead > timedelta(0)
                and not scheduled.skew
            ):
                # The VTN says it has started: it is in force from now.
                LOGGER.warning(
                    "The OpenADR VTN calls event %s active %s before its start by "
                    "this clock: following the VTN",
                    event.event_id,
                    ahead,
                )
                scheduled.skew = ahead
                if change is Change.UNCHANGED:
                    change = Change.MODIFIED
        if change is not Change.UNCHANGED:
            LOGGER.debug("OpenADR event %s: %s", event.event_id, change)
            self._notify(_CHANGE_EVENT[change], scheduled)
        return scheduled.opt

    def _report_flapping(self, scheduled: ScheduledEvent) -> None:
        """The VTN brought back a cancelled event: damp it, raise an issue."""
        LOGGER.warning(
            "The OpenADR VTN brought event %s back after cancelling it (%s times): "
            "its cancellations now take effect only after holding for %s",
            scheduled.event_id,
            scheduled.flaps,
            FLAP_HOLD,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"grid_signal_flapping_{self.config_entry.entry_id}_{scheduled.event_id}",
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="grid_signal_flapping",
            translation_placeholders={
                "title": self.config_entry.title,
                "event_id": scheduled.event_id,
                "minutes": str(round(FLAP_HOLD.total_seconds() / 60)),
            },
        )

    def _report_skew(self) -> None:
        """Raise (or clear) the clock repair issue after a full list."""
        issue = f"grid_signal_clock_skew_{self.config_entry.entry_id}"
        if self._skew_seen is None:
            ir.async_delete_issue(self.hass, DOMAIN, issue)
            return
        event_id, status, ahead = self._skew_seen
        minutes = round(abs(ahead.total_seconds()) / 60)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="grid_signal_clock_skew",
            translation_placeholders={
                "title": self.config_entry.title,
                "event_id": event_id,
                "status": status.value,
                "minutes": str(minutes),
                "direction": "ahead of" if ahead > timedelta(0) else "behind",
            },
        )

    def _on_malformed(
        self, events: list[Mapping[str, Any]], event_ids: list[str]
    ) -> None:
        """An oadrDistributeEvent failed OpenADR's schema: nothing new from it.

        Events HashGrid already knows unchanged stay in force; every other event
        of the message is refused (with the parser's reason when it finds one).
        """
        detail = "the message carrying it is not valid OpenADR 2.0b"
        seen: set[str] = set()
        for raw in events:
            parsed = parse_event(raw)
            if parsed.event_id is not None:
                seen.add(parsed.event_id)
            if isinstance(parsed, DrEvent):
                known = self.schedule.get(parsed.event_id)
                if known is not None and known.event == parsed:
                    continue
                self._reject(
                    EventProblem(ProblemCode.MALFORMED, parsed.event_id, detail)
                )
            else:
                self._reject(
                    EventProblem(
                        ProblemCode.MALFORMED,
                        parsed.event_id,
                        f"{parsed.detail} ({detail})",
                    )
                )
        for event_id in event_ids:
            if event_id not in seen and event_id not in (
                e.event_id for e in self.schedule.live()
            ):
                self._reject(EventProblem(ProblemCode.MALFORMED, event_id, detail))
        if not events and not event_ids:
            self._reject(EventProblem(ProblemCode.MALFORMED, None, detail))

    def _reject(self, problem: EventProblem) -> None:
        """Log a bad event, raise a repair issue, and never schedule it."""
        entry = self.config_entry
        dropped = (
            self.schedule.drop(problem.event_id)
            if problem.event_id is not None
            else None
        )
        LOGGER.warning(
            "The OpenADR VTN of %s sent event %s that HashGrid cannot honour (%s): %s%s",
            entry.title,
            problem.event_id or "(no id)",
            problem.code,
            problem.detail,
            "; its earlier version is no longer in force" if dropped else "",
        )
        key = problem.event_id or "unknown"
        self.problems[key] = problem
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(entry.entry_id, problem.event_id),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=f"grid_signal_{problem.code}",
            translation_placeholders={
                "title": entry.title,
                "event_id": problem.event_id or "?",
                "detail": problem.detail,
            },
        )
        self._notify(EVENT_REJECTED, dropped, problem)

    # --- opts ---------------------------------------------------------------------------

    def _event(self, event_id: str) -> ScheduledEvent:
        scheduled = self.schedule.get(event_id)
        if scheduled is None or scheduled.cancelled:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="grid_signal_unknown_event",
                translation_placeholders={
                    "event_id": event_id,
                    "title": self.config_entry.title,
                },
            )
        return scheduled

    async def async_opt_out(self, event_id: str) -> dict[str, Any]:
        """Opt out of one event (kept across polls and restarts); tell the VTN."""
        scheduled = self._event(event_id)
        self.schedule.set_opt(event_id, OPT_OUT, by_user=True)
        self._notify(EVENT_MODIFIED, scheduled)
        sent = await self._send_opt(scheduled)
        return {"event_id": event_id, "opt": OPT_OUT, "sent": sent}

    async def async_set_participate(self, participate: bool) -> None:
        """Opt in (or out of) every event that has not ended; tell the VTN."""
        self.participate = participate
        now = dt_util.utcnow()
        changed: list[ScheduledEvent] = []
        for scheduled in self.schedule.live():
            if scheduled.end <= now or scheduled.opted_out_by_user:
                continue
            opt = OPT_IN if participate else OPT_OUT
            if scheduled.opt != opt:
                self.schedule.set_opt(scheduled.event_id, opt)
                changed.append(scheduled)
        self._save()
        self.async_update_listeners()
        for scheduled in changed:
            await self._send_opt(scheduled)

    async def async_set_act_on_test_events(self, act: bool) -> None:
        """Act on test events (testEvent=true) or not; tell the VTN the new opts."""
        self.schedule.act_on_test_events = act
        now = dt_util.utcnow()
        changed: list[ScheduledEvent] = []
        for scheduled in list(self.schedule.events.values()):
            if (
                not scheduled.event.test_event
                or scheduled.cancelled
                or scheduled.end <= now
                or scheduled.opted_out_by_user
            ):
                continue
            opt = OPT_IN if act and self.participate else OPT_OUT
            if scheduled.opt != opt:
                self.schedule.set_opt(scheduled.event_id, opt)
                changed.append(scheduled)
        self._flush()
        for scheduled in changed:
            await self._send_opt(scheduled)

    async def _send_opt(self, scheduled: ScheduledEvent) -> bool:
        if not scheduled.event.response_required:
            # responseRequired=never: the 2.0b profile forbids any answer.
            self.pending_opts.discard(scheduled.event_id)
            return False
        ven = self.ven
        if ven is not None and ven.registered:
            event = scheduled.event
            if await ven.send_opt(
                event.event_id, event.modification_number, scheduled.opt
            ):
                self.pending_opts.discard(event.event_id)
                self._save()
                return True
        LOGGER.info(
            "The VTN is unreachable: %s for event %s is sent when it is back",
            scheduled.opt,
            scheduled.event_id,
        )
        self.pending_opts.add(scheduled.event_id)
        self._save()
        return False

    async def _send_pending(self) -> None:
        for event_id in sorted(self.pending_opts):
            scheduled = self.schedule.get(event_id)
            if scheduled is None or scheduled.cancelled:
                self.pending_opts.discard(event_id)
                continue
            if not await self._send_opt(scheduled):
                return

    # --- telemetry ------------------------------------------------------------------------

    def _read_power(self) -> float | None:
        """Return the chosen sensor's power in W (None when unknown)."""
        entity_id = self.config_entry.options.get(CONF_TELEMETRY_SENSOR)
        state = self.hass.states.get(entity_id) if entity_id else None
        if state is None:
            return None
        try:
            value = float(state.state)
        except ValueError:
            return None
        unit = state.attributes.get("unit_of_measurement", UnitOfPower.WATT)
        return value * _POWER_TO_W.get(unit, 1.0)

    # --- time -----------------------------------------------------------------------------

    @callback
    def _arm_boundary(self) -> None:
        """Wake up when what is in force changes next (start, end, interval)."""
        if self._unsub_boundary is not None:
            self._unsub_boundary()
            self._unsub_boundary = None
        when = self.schedule.next_boundary(dt_util.utcnow())
        if when is not None:
            self._unsub_boundary = async_track_point_in_utc_time(
                self.hass, self._on_boundary, when
            )

    @callback
    def _on_boundary(self, _now: datetime) -> None:
        self._unsub_boundary = None
        for scheduled in self.schedule.settle(dt_util.utcnow()):
            LOGGER.info("OpenADR event %s: cancelled (held)", scheduled.event_id)
            async_dispatcher_send(
                self.hass, self.change_signal, EVENT_CANCELLED, scheduled, None
            )
            self._save()
        self.async_update_listeners()
        self._arm_boundary()

    def now(self) -> datetime:
        """Return the time the entities are evaluated at."""
        return dt_util.utcnow()

    def diagnostics(self) -> dict[str, Any]:
        """Return the connection, the schedule and the refused events."""
        ven = self.ven
        return {
            "connected": self.data,
            "participate": self.participate,
            "act_on_test_events": self.schedule.act_on_test_events,
            "ven_id": self.ven_id,
            "registration_id": None if ven is None else ven.registration_id,
            "poll_interval_s": None
            if ven is None
            else ven.poll_interval.total_seconds(),
            "telemetry_requested": None if ven is None else ven.telemetry_requested,
            "pending_opts": sorted(self.pending_opts),
            "schedule": self.schedule.as_dict(),
            "problems": {
                k: {"code": p.code.value, "detail": p.detail}
                for k, p in self.problems.items()
            },
        }
