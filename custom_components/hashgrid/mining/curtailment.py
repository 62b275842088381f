"""Carry out a curtailment plan: a few miners at a time, each verified by reading back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
import math
from typing import Any

from homeassistant.const import CONF_HOST
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

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
from .planner import Command, plan_curtailment

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


def _budget(budget_w: float) -> float | None:
    """A budget as reported: None when unlimited."""
    return None if math.isinf(budget_w) else max(0.0, budget_w)


class Curtailer:
    """Holds a site's power budget and enforces it on the miners."""

    def __init__(self, hass: HomeAssistant, coordinator: MiningSiteCoordinator) -> None:
        """Enforce the budget the coordinator holds (unlimited, or restored)."""
        self.hass = hass
        self.coordinator = coordinator
        self._enforcing: asyncio.Task[dict[str, Any]] | None = None
        self._revert: CALLBACK_TYPE | None = None

    @property
    def budget_w(self) -> float:
        """Return the site's budget (W; inf = unlimited): the coordinator keeps it."""
        return self.coordinator.budget_w

    @callback
    def async_shutdown(self) -> None:
        """Cancel a pending end of a timed budget."""
        if self._revert:
            self._revert()
            self._revert = None

    async def async_set_budget(
        self,
        budget_w: float,
        *,
        stagger_s: float = DEFAULT_STAGGER_S,
        duration_s: float | None = None,
    ) -> dict[str, Any]:
        """Set the site budget, curtail or restore the miners, verify, report.

        A new budget supersedes one still being carried out (a staggered
        restore can take a while; a curtailment must not wait for it): the
        older call then reports `superseded`.
        """
        previous = self.budget_w
        if self._enforcing is not None and not self._enforcing.done():
            self._enforcing.cancel()
            with suppress(asyncio.CancelledError):
                await self._enforcing
        self.async_shutdown()
        self.coordinator.budget_w = max(0.0, budget_w)
        await self.coordinator.async_save_energy()
        task = self.coordinator.config_entry.async_create_background_task(
            self.hass, self._enforce(stagger_s), "hashgrid_enforce_budget"
        )
        self._enforcing = task
        try:
            result = await asyncio.shield(task)
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
        if duration_s:
            self._revert = async_call_later(
                self.hass, duration_s, self._revert_job(previous, stagger_s)
            )
        self.coordinator.async_update_listeners()
        return result

    def _revert_job(self, budget_w: float, stagger_s: float) -> Any:
        @callback
        def _revert(_now: Any) -> None:
            self._revert = None
            self.coordinator.config_entry.async_create_background_task(
                self.hass,
                self.async_set_budget(budget_w, stagger_s=stagger_s),
                "hashgrid_budget_expired",
            )

        return _revert

    async def _enforce(self, stagger_s: float) -> dict[str, Any]:
        coordinator = self.coordinator
        slots = coordinator.slots
        plan = plan_curtailment(
            coordinator.miner_states(), self.budget_w, stagger_s=stagger_s
        )
        # A large fleet's plan, its commands and its report each take the
        # event loop a while: let others run in between.
        await asyncio.sleep(0)
        outcomes = await self._carry_out_all(plan.commands)
        for cmd, outcome in zip(plan.commands, outcomes, strict=True):
            self._track_obedience(slots[cmd.miner_id], outcome)
        if plan.commands:
            coordinator.async_set_updated_data(coordinator.site_data())
            await asyncio.sleep(0)
        data = coordinator.data
        response: dict[str, Any] = {
            "site": coordinator.config_entry.title,
            "budget_w": _budget(self.budget_w),
            "planned_power_w": round(
                plan.planned_power_w + plan.uncontrollable_power_w, 1
            ),
            "fits": plan.fits,
            "power_w": round(data.total_power_w, 1) if data else None,
            "miners": [outcome.as_dict() for outcome in outcomes],
        }
        self.hass.bus.async_fire(
            EVENT_CURTAILMENT,
            {"config_entry_id": coordinator.config_entry.entry_id, **response},
        )
        return response

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
