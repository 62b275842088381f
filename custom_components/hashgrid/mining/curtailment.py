"""Carry out a curtailment plan: a few miners at a time, each verified by reading back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
import math
from typing import Any

from homeassistant.const import CONF_HOST
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from .client import MinerClient
from .const import (
    DEFAULT_STAGGER_S,
    DISOBEY_REPAIR_THRESHOLD,
    EVENT_CURTAILMENT,
    VERIFY_PAUSES_S,
)
from .coordinator import (
    COMMAND_CONCURRENCY,
    MinerSlot,
    MiningSiteCoordinator,
    run_in_lanes,
)
from .errors import MinerError
from .limits import SOURCE_MANUAL, Budget, Limit, SiteLimits
from .planner import Action, Command, plan_curtailment

# Read the commanded miners once more this long after a curtailment (their
# power settles after the hashrate): the power shown is never the old draw.
SETTLE_READ_S = 3.0
# Power targets within this many watts of the requested one count as obeyed.
TARGET_TOLERANCE_W = 5.0


@dataclass(frozen=True, slots=True)
class MinerOutcome:
    """What one miner was asked and what it did."""

    miner: str
    host: str
    action: str
    requested_power_w: float | None
    success: bool
    error: str | None
    power_w: float | None

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as reported (cheaper than `asdict` for a fleet)."""
        return {
            "miner": self.miner,
            "host": self.host,
            "action": self.action,
            "requested_power_w": self.requested_power_w,
            "success": self.success,
            "error": self.error,
            "power_w": self.power_w,
        }


def now_ts() -> float:
    """Return the time now as limits count it (Home Assistant's clock)."""
    return dt_util.utcnow().timestamp()


def source_text(source: str) -> str:
    """A limit's source as said ("demand response")."""
    return source.replace("_", " ")


def until_text(limit: Limit) -> str:
    """When a limit ends, as said (" until 18:00"), or nothing without expiry."""
    if limit.expires_at is None:
        return ""
    local = dt_util.as_local(dt_util.utc_from_timestamp(limit.expires_at))
    return f" until {local:%H:%M}"


def _budget(budget_w: float) -> float | None:
    """A budget as reported: None when unlimited."""
    return None if math.isinf(budget_w) else max(0.0, budget_w)


class Curtailer:
    """The one arbiter of a site: composes its limits, enforces the budget.

    Every command to a miner -- the site's or one miner's own control -- goes
    through here: planned against the site's effective budget, sent, read back
    and reported.
    """

    def __init__(self, hass: HomeAssistant, coordinator: MiningSiteCoordinator) -> None:
        """Hold the site's coordinator; nothing is enforced until asked
        (`async_enforce`, or a limit set or cleared)."""
        self.hass = hass
        self.coordinator = coordinator
        self._enforcing: asyncio.Task[dict[str, Any]] | None = None
        self._enforcing_w: float | None = None
        self._expiry: CALLBACK_TYPE | None = None

    @property
    def limits(self) -> SiteLimits:
        """Return the site's limits (the coordinator keeps and stores them)."""
        return self.coordinator.limits

    @property
    def budget_w(self) -> float:
        """Return the smallest active limit (W; inf = none)."""
        return self.coordinator.budget_w

    def budget(self) -> Budget:
        """Return the effective budget: smallest limit, at most the fleet's draw."""
        data = self.coordinator.data
        fleet_w = data.max_power_w if data is not None else math.inf
        return self.limits.effective(now_ts(), fleet_w)

    @callback
    def async_shutdown(self) -> None:
        """Cancel the timer of the next expiry."""
        if self._expiry:
            self._expiry()
            self._expiry = None

    async def async_set_limit(
        self,
        source: str,
        power_w: float,
        *,
        duration_s: float | None = None,
        stagger_s: float = DEFAULT_STAGGER_S,
    ) -> dict[str, Any]:
        """Set one source's limit, then enforce the budget the limits make."""
        expires = now_ts() + duration_s if duration_s else None
        limit = self.limits.set(source, max(0.0, power_w), expires)
        return await self._changed(stagger_s, limit.as_dict())

    async def async_clear_limit(
        self, source: str, *, stagger_s: float = DEFAULT_STAGGER_S
    ) -> dict[str, Any]:
        """Clear one source's limit: restore, staggered, up to the next one."""
        cleared = self.limits.clear(source)
        return await self._changed(
            stagger_s,
            {"source": source, "power_w": None, "expires_at": None},
            cleared=cleared is not None,
        )

    async def async_set_budget(
        self,
        budget_w: float,
        *,
        stagger_s: float = DEFAULT_STAGGER_S,
        duration_s: float | None = None,
    ) -> dict[str, Any]:
        """The manual limit (`set_power_budget`): inf clears it."""
        if math.isinf(budget_w):
            return await self.async_clear_limit(SOURCE_MANUAL, stagger_s=stagger_s)
        return await self.async_set_limit(
            SOURCE_MANUAL, budget_w, duration_s=duration_s, stagger_s=stagger_s
        )

    async def async_enforce(
        self, *, stagger_s: float = DEFAULT_STAGGER_S
    ) -> dict[str, Any]:
        """Enforce the current limits again (after a restart, an expiry)."""
        return await self._changed(stagger_s, None)

    async def _changed(
        self,
        stagger_s: float,
        limit: dict[str, Any] | None,
        *,
        cleared: bool | None = None,
    ) -> dict[str, Any]:
        """The limits changed: store them, re-arm the expiry, enforce, report."""
        self.limits.expire(now_ts())
        await self.coordinator.async_save_store()
        self._arm_expiry()
        result = await self._apply(self.budget_w, stagger_s)
        result = {**result, **self._describe()}
        if limit is not None:
            result["limit"] = limit
        if cleared is not None:
            result["cleared"] = cleared
        self.coordinator.async_update_listeners()
        return result

    def _describe(self) -> dict[str, Any]:
        """What binds and every active limit, as reported."""
        budget = self.budget()
        said = source_text(budget.binding)
        if budget.limit is not None:
            said += until_text(budget.limit)
        return {
            "binding_said": said,
            "effective_budget_w": None
            if math.isinf(budget.power_w)
            else round(budget.power_w, 1),
            "binding": budget.binding,
            "limits": [lim.as_dict() for lim in self.limits.active(now_ts())],
        }

    async def _apply(self, budget_w: float, stagger_s: float) -> dict[str, Any]:
        """Curtail or restore the miners to the budget, verify, report.

        A new budget supersedes one still being carried out (a staggered
        restore can take a while; a curtailment must not wait for it): the
        older call then reports `superseded`. The same budget still being
        carried out is not started again: the call waits for it.
        """
        running = self._enforcing is not None and not self._enforcing.done()
        if running and self._enforcing_w == budget_w:
            assert self._enforcing is not None
            task = self._enforcing
        else:
            if running:
                assert self._enforcing is not None
                self._enforcing.cancel()
                with suppress(asyncio.CancelledError):
                    await self._enforcing
            task = self.coordinator.config_entry.async_create_background_task(
                self.hass,
                self._enforce(budget_w, stagger_s),
                "hashgrid_enforce_budget",
            )
            self._enforcing, self._enforcing_w = task, budget_w
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current and current.cancelling()):
                raise
            return {
                "site": self.coordinator.config_entry.title,
                "budget_w": _budget(budget_w),
                "superseded": True,
                "miners": [],
            }

    def _arm_expiry(self) -> None:
        """Wake up when the next limit expires."""
        self.async_shutdown()
        if (when := self.limits.next_expiry()) is None:
            return

        @callback
        def _expired(now: datetime) -> None:
            self._expiry = None
            self.limits.expire(max(now.timestamp(), when))
            self.coordinator.config_entry.async_create_background_task(
                self.hass, self.async_enforce(), "hashgrid_limit_expired"
            )

        self._expiry = async_track_point_in_utc_time(
            self.hass, _expired, dt_util.utc_from_timestamp(when)
        )

    def headroom_refusal(
        self, slot: MinerSlot, power_w: float | None
    ) -> ServiceValidationError | None:
        """Return why a miner may not start (or rise) now, if a limit forbids it.

        The miner would draw `power_w` (None: its maximum); with the others as
        they draw now, the site must stay within the effective budget.
        """
        budget = self.budget()
        if not budget.limited:
            return None
        states = {s.miner_id: s for s in self.coordinator.miner_states()}
        own = states.pop(slot.subentry_id)
        want = own.max_power_w if power_w is None else power_w
        others = math.fsum(
            s.power_w for s in states.values() if s.mining or not s.can_stop
        )
        if others + want <= budget.power_w + TARGET_TOLERANCE_W:
            return None
        assert budget.limit is not None
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="miner_limit_binds",
            translation_placeholders={
                "miner": slot.subentry.title,
                "source": source_text(budget.binding),
                "limit": f"{budget.power_w / 1000:g}",
                "needed": f"{(others + want) / 1000:.2f}",
            },
        )

    async def async_command_miner(
        self,
        slot: MinerSlot,
        action: Action,
        power_w: float | None = None,
        *,
        work_mode: str | None = None,
    ) -> MinerOutcome:
        """One miner's own control: within the limits, sent, read back.

        Stopping is always allowed; starting or raising a power target is
        refused (a translated error naming the binding limit) when the site
        would then exceed its effective budget.
        """
        if (
            action != "stop"
            and (refusal := self.headroom_refusal(slot, power_w)) is not None
        ):
            raise refusal
        cmd = Command(slot.subentry_id, action, power_w, 0.0, work_mode)
        outcome = (await self._carry_out_all([cmd]))[0]
        self._track_obedience(slot, outcome)
        self._publish()
        return outcome

    @callback
    def _publish(self) -> None:
        """Show what the read-backs read, leaving the poll's schedule alone.

        Not `async_set_updated_data`: it reschedules the next poll, and with
        a budget changing every few seconds the miners no command reads back
        would never be read again.
        """
        coordinator = self.coordinator
        coordinator.data = coordinator.site_data()
        coordinator.async_update_listeners()

    async def _confirm_stopped(
        self, slots: Sequence[MinerSlot]
    ) -> tuple[list[Command], list[MinerOutcome]]:
        """Read miners believed stopped; stop those that mine (and say so)."""
        if not slots:
            return [], []
        await run_in_lanes(
            list(slots),
            lambda slot: self.coordinator.async_poll_miner(slot, state_only=True),
            COMMAND_CONCURRENCY,
        )
        stops = [
            Command(slot.subentry_id, "stop", None, 0.0)
            for slot in slots
            if slot.reading is not None and slot.reading.is_mining
        ]
        if stops:
            LOGGER.info(
                "%s: %d miner(s) believed stopped were mining: stopping",
                self.coordinator.config_entry.title,
                len(stops),
            )
        return stops, await self._carry_out_all(stops) if stops else []

    async def _enforce(self, budget_w: float, stagger_s: float) -> dict[str, Any]:
        coordinator = self.coordinator
        slots = coordinator.slots
        states = coordinator.miner_states()
        plan = plan_curtailment(states, budget_w, stagger_s=stagger_s)
        # A large fleet's plan, its commands and its report each take the
        # event loop a while: let others run in between.
        await asyncio.sleep(0)
        # Planned stopped and believed stopped, so not commanded: confirmed
        # by reading them, meanwhile (a reading can be stale: a resume whose
        # read-back a newer budget cancelled, a miner woken by another tool).
        commanded = {cmd.miner_id for cmd in plan.commands}
        believed_stopped = [
            slots[s.miner_id]
            for s in states
            if s.controllable
            and s.can_stop
            and not s.mining
            and s.miner_id not in plan.running
            and s.miner_id not in commanded
        ]
        outcomes, (stops, stop_outcomes) = await asyncio.gather(
            self._carry_out_all(plan.commands),
            self._confirm_stopped(believed_stopped),
        )
        commands = (*plan.commands, *stops)
        outcomes = [*outcomes, *stop_outcomes]
        for cmd, outcome in zip(commands, outcomes, strict=True):
            self._track_obedience(slots[cmd.miner_id], outcome)
        if commands:
            self._publish()
            await asyncio.sleep(0)
            self._read_again_later([slots[cmd.miner_id] for cmd in commands])
        data = coordinator.data
        response: dict[str, Any] = {
            "site": coordinator.config_entry.title,
            "budget_w": _budget(budget_w),
            **self._describe(),
            "planned_power_w": round(
                plan.planned_power_w + plan.uncontrollable_power_w, 1
            ),
            "fits": plan.fits,
            "power_w": round(data.total_power_w, 1) if data else None,
            "miners": [outcome.as_dict() for outcome in outcomes],
            # Miners the budget would have off that cannot stop (said, not hidden).
            "cannot_stop": [
                slot.subentry.title
                for slot in slots.values()
                if slot.reading is not None
                and slot.reading.is_mining
                and slot.info is not None
                and not slot.info.can_stop
                and slot.subentry_id not in plan.running
                and not plan.fits
            ],
        }
        self.hass.bus.async_fire(
            EVENT_CURTAILMENT,
            {"config_entry_id": coordinator.config_entry.entry_id, **response},
        )
        if outcomes:
            failed = [o.miner for o in outcomes if not o.success]
            LOGGER.info(
                "%s: budget %s (%s); %d miner(s) commanded, %s; planned %.0f W",
                response["site"],
                "unlimited"
                if budget_w is None or math.isinf(budget_w)
                else f"{budget_w / 1000:.2f} kW",
                response["binding_said"],
                len(outcomes),
                f"not obeyed: {', '.join(failed)}" if failed else "all obeyed",
                response["planned_power_w"],
            )
        return response

    def _read_again_later(self, commanded: list[MinerSlot]) -> None:
        """Read the commanded miners again once their power has settled.

        A miner reads back stopped (no hashrate) at once, while its reported
        power still ramps down for a moment: read it again so that a stopped
        miner never keeps showing its old draw until the next poll.
        """

        async def _again() -> None:
            await asyncio.sleep(SETTLE_READ_S)
            await run_in_lanes(
                commanded,
                lambda slot: self.coordinator.async_poll_miner(slot, state_only=True),
                COMMAND_CONCURRENCY,
            )
            self._publish()

        self.coordinator.config_entry.async_create_background_task(
            self.hass, _again(), "hashgrid_read_settled_power"
        )

    async def _carry_out_all(self, commands: Sequence[Command]) -> list[MinerOutcome]:
        """Carry out every command, a few miners at a time, each at its delay.

        A few lanes take the commands in the order they are due: each sends
        one, reads the miner back at once and goes on to the next. A miner
        that has not obeyed yet is read back again, after growing pauses, by
        a task of its own, so it holds up no other miner.
        """
        slots = self.coordinator.slots
        start = asyncio.get_running_loop().time()
        outcomes: dict[int, MinerOutcome] = {}
        pending: dict[int, asyncio.Task[MinerOutcome]] = {}

        async def carry_out(index: int) -> None:
            cmd = commands[index]
            slot = slots[cmd.miner_id]
            due = start + cmd.delay_s - asyncio.get_running_loop().time()
            if due > 0:
                await asyncio.sleep(due)
            if (error := await self._send(slot, cmd)) is not None:
                outcomes[index] = self._outcome(slot, cmd, error)
                return
            pauses = iter(VERIFY_PAUSES_S)
            if (error := await self._read_back(slot, cmd, next(pauses))) is None:
                outcomes[index] = self._outcome(slot, cmd, None)
                return
            pending[index] = asyncio.create_task(self._keep_reading(slot, cmd, pauses))

        order = sorted(range(len(commands)), key=lambda i: commands[i].delay_s)
        try:
            await run_in_lanes(order, carry_out, COMMAND_CONCURRENCY)
            for index, outcome in zip(
                pending, await asyncio.gather(*pending.values()), strict=True
            ):
                outcomes[index] = outcome
        finally:
            for task in pending.values():
                task.cancel()
            if pending:
                await asyncio.gather(*pending.values(), return_exceptions=True)
        return [outcomes[i] for i in range(len(commands))]

    async def _keep_reading(
        self, slot: MinerSlot, cmd: Command, pauses: Iterator[float]
    ) -> MinerOutcome:
        """Read a miner back after each remaining pause until it has obeyed."""
        error = self._disobedience(slot, cmd)
        for pause in pauses:
            if (error := await self._read_back(slot, cmd, pause)) is None:
                break
        return self._outcome(slot, cmd, error)

    async def _read_back(
        self, slot: MinerSlot, cmd: Command, pause: float
    ) -> str | None:
        """Read the miner back after a pause; return how it disobeys, if it does."""
        await asyncio.sleep(pause)
        await self.coordinator.async_poll_miner(slot, state_only=True)
        return self._disobedience(slot, cmd)

    async def _send(self, slot: MinerSlot, cmd: Command) -> str | None:
        """Send one command; return an error or None."""
        client = slot.client
        if slot.wrong_miner:
            return "another miner answers at this address"
        if client is None:
            return "not identified"
        async with self.coordinator.commanding:
            return await self._send_now(slot, client, cmd)

    @staticmethod
    async def _send_now(
        slot: MinerSlot, client: MinerClient, cmd: Command
    ) -> str | None:
        try:
            if cmd.action == "stop":
                ok = await client.stop(verify=False)
            elif cmd.action == "set_power" and cmd.work_mode is not None:
                ok = await client.set_work_mode(cmd.work_mode)
            elif cmd.action == "set_power":
                assert cmd.power_w is not None
                ok = await client.set_power_target(cmd.power_w)
            else:
                ok = True
                if cmd.power_w is not None and slot.info and slot.info.can_set_power:
                    ok = await client.set_power_target(cmd.power_w)
                ok = await client.resume(verify=False) and ok
        except MinerError as err:
            return str(err) or type(err).__name__
        except Exception as err:
            LOGGER.warning(
                "Miner %s failed the command %s", client.host, cmd.action, exc_info=True
            )
            return f"{type(err).__name__}: {err}"
        if cmd.power_w is not None and ok:
            slot.power_target_w = cmd.power_w
        return None if ok else "refused"

    @staticmethod
    def _disobedience(slot: MinerSlot, cmd: Command) -> str | None:
        """Return how the miner's last reading contradicts the command, if it does."""
        reading = slot.reading
        if reading is None:
            return slot.error or "unavailable after the command"
        if cmd.action == "stop" and reading.is_mining:
            return "still mining"
        if cmd.action == "resume" and not reading.is_mining:
            return "not mining"
        if cmd.work_mode is not None and reading.work_mode not in (None, cmd.work_mode):
            return f"work mode is {reading.work_mode}"
        if (
            cmd.action != "stop"
            and cmd.power_w is not None
            and reading.power_target_w is not None
            # A firmware with fixed profiles takes the highest one at or below.
            and reading.power_target_w > cmd.power_w + TARGET_TOLERANCE_W
        ):
            return f"power target is {reading.power_target_w:.0f} W"
        return None

    @staticmethod
    def _outcome(slot: MinerSlot, cmd: Command, error: str | None) -> MinerOutcome:
        reading = slot.reading
        return MinerOutcome(
            miner=slot.subentry.title,
            host=slot.subentry.data[CONF_HOST],
            action=cmd.action,
            requested_power_w=cmd.power_w,
            success=error is None,
            error=error,
            power_w=reading.power_w if reading else None,
        )

    def _track_obedience(self, slot: MinerSlot, outcome: MinerOutcome) -> None:
        issue_id = f"miner_disobeys_{slot.subentry_id}"
        if outcome.success:
            if slot.disobeyed >= DISOBEY_REPAIR_THRESHOLD:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            slot.disobeyed = 0
            return
        slot.disobeyed += 1
        LOGGER.warning(
            "Miner %s did not %s: %s", outcome.host, outcome.action, outcome.error
        )
        if slot.disobeyed >= DISOBEY_REPAIR_THRESHOLD:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="miner_disobeys",
                translation_placeholders={
                    "miner": outcome.miner,
                    "count": str(slot.disobeyed),
                    "error": outcome.error or "",
                },
            )
