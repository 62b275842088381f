"""The mining site coordinator: one poller for every miner of a site."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
import math
import time
from typing import Any

import aiohttp
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..models import HashGridConfigEntry
from . import transport
from .client import (
    MAX_POWER_W,
    Identity,
    MinerClient,
    MinerInfo,
    MinerReading,
    connect,
    valid_mac,
    valid_serial,
)
from .const import (
    CONF_MAX_POWER,
    CONF_MIN_POWER,
    CONF_PRIORITY,
    SCAN_INTERVAL,
    SUBENTRY_MINER,
)
from .efficiency import j_per_th
from .errors import AuthRequired, InvalidAuth, MinerError, WrongMiner
from .limits import SOURCE_MANUAL, SiteLimits
from .planner import MinerState, with_user_limits

STORAGE_VERSION = 1
# Integrate power into energy only across gaps shorter than this many polls.
MAX_GAP_POLLS = 3
# What a stopped (sleeping) miner draws, for miners
# whose firmware reports no power.
IDLE_POWER_W = 15.0
IDENTIFY_CONCURRENCY = 50
# Miners talked to at once by a poll, and by a curtailment (its own share, so
# a curtailment never queues behind a poll). Bounded so that one turn of the
# event loop handles only so many replies, and fewer requests are in flight
# (alive, so promoted by the garbage collector) at any moment.
POLL_CONCURRENCY = 16
COMMAND_CONCURRENCY = 16
# A miner that reports no power and was never seen hashing (or has no
# configured maximum) is counted at an S19/S21-class draw: planning it too
# high only keeps it off longer, planning it too low would mine past a limit.
UNKNOWN_MINER_POWER_W = 3600.0


async def run_in_lanes[T](
    items: Sequence[T], run: Callable[[T], Awaitable[None]], lanes: int
) -> None:
    """Run `run(item)` for every item, in order, at most `lanes` at once.

    A few workers take the items in turn, rather than one task per item: a
    fleet of a thousand miners then costs a thousand fewer tasks (and fewer
    objects for the garbage collector) per poll or curtailment.

    An error ends the run: the other lanes are cancelled and awaited before
    it is raised (no lane outlives the call). Callers that must go on past
    one item's failure catch it inside `run`.
    """
    pending = iter(items)

    async def lane() -> None:
        for item in pending:
            await run(item)

    tasks = [asyncio.ensure_future(lane()) for _ in range(min(lanes, len(items)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def signal_miner_read(subentry_id: str) -> str:
    """The dispatcher signal sent when one miner is fully read or becomes
    unavailable: every entity of the miner follows it.

    A miner's entities follow their miner's signals rather than the site
    coordinator, so a large fleet's state writes spread over the poll (each
    miner's as soon as it is read) instead of one long block at its end.
    """
    return f"{DOMAIN}_miner_read_{subentry_id}"


def signal_miner_state(subentry_id: str) -> str:
    """The dispatcher signal sent whenever one miner is read, fully or only
    what a command changes (a curtailment's read-back: mining, hashrate,
    power, power target, work mode), or becomes unavailable: the entities
    showing those follow it instead of :func:`signal_miner_read`."""
    return f"{DOMAIN}_miner_state_{subentry_id}"


@dataclass
class MinerSlot:
    """One configured miner: its client (once identified) and what we know."""

    subentry: ConfigSubentry
    client: MinerClient | None = None
    reading: MinerReading | None = None
    read_at: float | None = None
    energy_kwh: float = 0.0
    unavailable_logged: bool = False
    error: str | None = None
    # The last power target HashGrid set (firmwares do not all report theirs).
    power_target_w: float | None = None
    disobeyed: int = 0
    peak_power_w: float = 0.0
    # Another miner answers at this one's address: never commanded until the
    # right one answers again (then it is identified afresh).
    wrong_miner: bool = False
    # The serial and MAC seen when the miner was last identified as itself.
    known: Identity | None = None
    # The miner's state could not be built (logged once); it counts as unreachable.
    state_logged: bool = False
    # While its heater heats (climate.py): the power of the heater's step, a
    # cap the site's planner honours (0: the heater stopped it, so the planner
    # does not resume it); None while the heater is off. Kept across restarts.
    heat_max_w: float | None = None

    @property
    def subentry_id(self) -> str:
        """Return the id of the miner's subentry."""
        return self.subentry.subentry_id

    @property
    def info(self) -> MinerInfo | None:
        """Return the identified miner, if identified."""
        return self.client.info if self.client else None

    def track_peak_power_w(self) -> float:
        """Raise the miner's peak power to its reading's, then return the peak.

        Some firmwares (Antminer stock) report no power at all: the peak then
        rises to the hashrate times the model's nominal efficiency, so the
        planner counts the miner at that -- at its full hashrate, not at the
        one it was first read at while ramping up. Kept across restarts.
        """
        reading = self.reading
        if reading is not None and reading.power_w:
            self.peak_power_w = max(self.peak_power_w, reading.power_w)
        elif reading is not None and reading.power_w is None and reading.hashrate_ths:
            # Rises with the hashrate: a first reading while it ramped up
            # (19 TH/s of 200) must not leave it planned at a tenth of its draw.
            self.peak_power_w = max(
                self.peak_power_w, reading.hashrate_ths * self.j_per_th()
            )
        return self.peak_power_w

    def rated_power_w(self) -> float:
        """Return what a miner that reports no power draws at its rated
        hashrate (0 if unknown or it reports power).

        Its peak follows its readings, and a miner first read while ramping
        up (15 TH/s of 206 in the demo) was planned at a tenth of its draw
        until a later poll: two S21s ran 3 kW past the budget.
        """
        info = self.info
        if (
            info is None
            or info.expected_hashrate_ths is None
            or not self.power_estimated()
        ):
            return 0.0
        return info.expected_hashrate_ths * self.j_per_th()

    def j_per_th(self) -> float:
        """Return the miner's nominal efficiency (its model's, else typical)."""
        return j_per_th(self.info.model if self.info else None)

    def power_estimated(self) -> bool:
        """Return True when the miner reports no power (HashGrid estimates it)."""
        return self.reading is not None and self.reading.power_w is None

    def drawn_power_w(self) -> float:
        """Return what the miner draws now: read, else estimated (0 unread).

        A miner that reports no power counts at its hashrate times its model's nominal
        efficiency while hashing (else its highest estimate, else a class
        default), and at the idle draw while stopped.
        """
        reading = self.reading
        if reading is None:
            return 0.0
        if reading.power_w is not None:
            return reading.power_w
        if not reading.is_mining:
            return IDLE_POWER_W
        if reading.hashrate_ths:
            return reading.hashrate_ths * self.j_per_th()
        return (
            self.track_peak_power_w()
            or _watts(self.subentry.data.get(CONF_MAX_POWER))
            or UNKNOWN_MINER_POWER_W
        )

    @property
    def available(self) -> bool:
        """Return True when the last poll succeeded."""
        return self.reading is not None

    def expected_identity(self) -> Identity:
        """Return who should answer: as last identified, else the unique id."""
        if self.known is not None:
            return self.known
        return Identity.from_unique_id(self.subentry.unique_id or "")

    def state(self) -> MinerState:
        """Return the planner's view of the miner; unreachable if none can be built.

        A miner whose figures make no state (any error) is logged once and
        counts as unreachable: the planner then plans the others.
        """
        try:
            state = self._state()
        except Exception as err:
            if not self.state_logged:
                self.state_logged = True
                LOGGER.warning(
                    "Miner %s cannot be planned (%s); counted as unreachable",
                    self.subentry.data[CONF_HOST],
                    err,
                )
            return self._unreachable_state()
        self.state_logged = False
        return state

    def planned_state(self) -> MinerState:
        """Return the state the site's planner plans with: :meth:`state`
        within the heater's cap (``heat_max_w``), as a user's maximum.

        A miner its heater stopped (cap 0) is held as it is: the planner
        neither resumes it nor commands it (it draws its idle power).
        """
        state = self.state()
        cap = self.heat_max_w
        if cap is None or not state.reachable:
            return state
        if cap <= 0 and not state.mining:
            return replace(state, reachable=False)
        return with_user_limits(state, None, cap)

    def _unreachable_state(self) -> MinerState:
        data = self.subentry.data
        max_w = _watts(data.get(CONF_MAX_POWER))
        try:
            priority = int(data.get(CONF_PRIORITY, 0))
        except TypeError, ValueError, OverflowError:
            priority = 0
        return MinerState(
            miner_id=self.subentry_id,
            reachable=False,
            mining=False,
            power_w=max_w,
            max_power_w=max_w,
            priority=priority,
        )

    def _state(self) -> MinerState:
        info, reading = self.info, self.reading
        data = self.subentry.data
        if info is None or reading is None:
            return self._unreachable_state()
        max_w = max(
            info.max_power_w
            or info.nominal_power_w
            or max(self.track_peak_power_w(), self.rated_power_w())
            or _watts(data.get(CONF_MAX_POWER))
            or UNKNOWN_MINER_POWER_W,
            IDLE_POWER_W,
        )
        state = MinerState(
            miner_id=self.subentry_id,
            reachable=True,
            mining=reading.is_mining,
            power_w=reading.power_w
            if reading.power_w is not None
            else (max_w if reading.is_mining else IDLE_POWER_W),
            priority=int(data.get(CONF_PRIORITY, 0)),
            can_stop=info.can_stop,
            can_set_power=info.can_set_power,
            min_power_w=info.min_power_w,
            max_power_w=max_w,
            idle_power_w=min(IDLE_POWER_W, info.min_power_w or IDLE_POWER_W),
            power_target_w=self.power_target_w or reading.power_target_w,
            steps_w=info.power_steps_w,
        )
        return with_user_limits(
            state, data.get(CONF_MIN_POWER), data.get(CONF_MAX_POWER)
        )


def _watts(value: Any) -> float:
    """A configured power as the planner takes it: 0 unless within physics."""
    try:
        watts = float(value or 0.0)
    except TypeError, ValueError, OverflowError:
        return 0.0
    return watts if 0.0 <= watts <= MAX_POWER_W else 0.0


def _wrong_miner_issue_id(slot: MinerSlot) -> str:
    return f"miner_wrong_identity_{slot.subentry_id}"


@dataclass(frozen=True)
class SiteData:
    """What one poll of the whole site found."""

    polled_at: float
    total_hashrate_ths: float
    total_power_w: float
    energy_kwh: float
    mining: int
    curtailed: int
    unavailable: int
    # The fleet's combined maximum power, as the planner counts it.
    max_power_w: float = 0.0
    # What of the total is estimated (miners that report no power), and how many.
    estimated_power_w: float = 0.0
    estimated_miners: int = 0
    miners: dict[str, MinerReading | None] = field(default_factory=dict)


class MiningSiteCoordinator(DataUpdateCoordinator[SiteData]):
    """Polls every miner of a site concurrently; identifies each only once."""

    config_entry: HashGridConfigEntry

    def __init__(self, hass: HomeAssistant, entry: HashGridConfigEntry) -> None:
        """Set up the slots of the configured miners."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} mining site {entry.title}",
            update_interval=SCAN_INTERVAL,
        )
        self.slots: dict[str, MinerSlot] = {
            sub.subentry_id: MinerSlot(sub)
            for sub in entry.subentries.values()
            if sub.subentry_type == SUBENTRY_MINER
        }
        self.site_energy_kwh = 0.0
        # pyasic's identification probes time out when hundreds run at once.
        self._identifying = asyncio.Semaphore(IDENTIFY_CONCURRENCY)
        self._polling = asyncio.Semaphore(POLL_CONCURRENCY)
        self._session: aiohttp.ClientSession | None = None
        self.commanding = asyncio.Semaphore(COMMAND_CONCURRENCY)
        # The site's limits, by source, kept across restarts (the curtailer
        # composes and enforces them).
        self.limits = SiteLimits()
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.mining.{entry.entry_id}"
        )

    async def async_load_store(self) -> None:
        """Restore what the site keeps across restarts: energy counters,
        limits, each miner's peak power and identity."""
        stored = await self._store.async_load() or {}
        self.site_energy_kwh = float(stored.get("site_kwh", 0.0))
        self.limits = SiteLimits.from_dict(stored)
        if "limits" not in stored and (budget := stored.get("budget_w")) is not None:
            # Stored before limits: the one budget was a person's (manual).
            with suppress(TypeError, ValueError):
                self.limits.set(SOURCE_MANUAL, float(budget))
        for sub_id, kwh in stored.get("miners", {}).items():
            if sub_id in self.slots:
                self.slots[sub_id].energy_kwh = float(kwh)
        peaks = stored.get("peaks")
        for sub_id, peak in (peaks if isinstance(peaks, dict) else {}).items():
            if sub_id in self.slots:
                self.slots[sub_id].peak_power_w = _watts(peak)
        caps = stored.get("heat_caps")
        for sub_id, cap in (caps if isinstance(caps, dict) else {}).items():
            if sub_id in self.slots and isinstance(cap, int | float):
                self.slots[sub_id].heat_max_w = _watts(cap)
        for sub_id, known in stored.get("identities", {}).items():
            if sub_id in self.slots and isinstance(known, dict):
                identity = Identity(
                    serial=valid_serial(known.get("serial")),
                    mac=valid_mac(known.get("mac")),
                )
                if identity.serial or identity.mac:
                    self.slots[sub_id].known = identity

    def _store_data(self) -> dict[str, Any]:
        return {
            **self.limits.as_dict(),
            "site_kwh": self.site_energy_kwh,
            "miners": {s.subentry_id: s.energy_kwh for s in self.slots.values()},
            "peaks": {
                s.subentry_id: s.peak_power_w
                for s in self.slots.values()
                if s.peak_power_w
            },
            "identities": {
                s.subentry_id: {"serial": s.known.serial, "mac": s.known.mac}
                for s in self.slots.values()
                if s.known is not None
            },
            "heat_caps": {
                s.subentry_id: s.heat_max_w
                for s in self.slots.values()
                if s.heat_max_w is not None
            },
        }

    @property
    def budget_w(self) -> float:
        """Return the smallest active limit (W; inf when none holds)."""
        return self.limits.effective(dt_util.utcnow().timestamp()).power_w

    def _web_session(self) -> aiohttp.ClientSession:
        """Return the site's web session (one kept-alive connection per miner).

        Not Home Assistant's shared session: that one keeps up to 100 idle
        connections per host for 15 s, and a poll every 10 s would then hold
        a few sockets per miner for good (thousands for a large fleet).
        """
        if self._session is None or self._session.closed:
            self._session = transport.web_session()
        return self._session

    async def async_shutdown(self) -> None:
        """Stop polling and close every miner's kept-alive connections."""
        await super().async_shutdown()
        clients = [slot.client for slot in self.slots.values() if slot.client]
        await asyncio.gather(*(client.aclose() for client in clients))
        if self._session is not None:
            await self._session.close()

    async def async_save_store(self) -> None:
        """Write the site's store now: energy counters, limits, peak powers and
        identities (at unload, and at every change of the limits)."""
        await self._store.async_save(self._store_data())

    async def _async_update_data(self) -> SiteData:
        """Poll all miners at once; a failing miner only makes itself unavailable."""
        await run_in_lanes(
            list(self.slots.values()), self.async_poll_miner, POLL_CONCURRENCY
        )
        return self.site_data()

    def site_data(self) -> SiteData:
        """Sum up what the slots last read; schedule a store write in 30 s
        (energy counters, peaks, identities may have changed)."""
        self._store.async_delay_save(self._store_data, 30)
        readings = {s.subentry_id: s.reading for s in self.slots.values()}
        live = [r for r in readings.values() if r is not None]
        estimated = [s for s in self.slots.values() if s.power_estimated()]
        return SiteData(
            polled_at=time.time(),
            total_hashrate_ths=sum(r.hashrate_ths or 0.0 for r in live),
            total_power_w=math.fsum(s.drawn_power_w() for s in self.slots.values()),
            estimated_power_w=math.fsum(s.drawn_power_w() for s in estimated),
            estimated_miners=len(estimated),
            energy_kwh=self.site_energy_kwh,
            mining=sum(1 for r in live if r.is_mining),
            curtailed=sum(1 for r in live if not r.is_mining),
            unavailable=len(readings) - len(live),
            # What the fleet can draw, whatever its heaters ask for now.
            max_power_w=sum(s.state().max_power_w for s in self.slots.values()),
            miners=readings,
        )

    async def async_poll_miner(
        self, slot: MinerSlot, *, state_only: bool = False
    ) -> None:
        """Read one miner (identifying it first if needed) into its slot.

        `state_only` reads just what a command changes and keeps the rest of
        the last full reading (temperatures, fans, pool …); it is a
        curtailment's read-back, so it takes a curtailment's turn.
        """
        async with self.commanding if state_only else self._polling:
            await self._poll_miner(slot, state_only=state_only)

    async def _poll_miner(self, slot: MinerSlot, *, state_only: bool) -> None:
        """Poll one miner; whatever goes wrong ends in this slot alone."""
        try:
            await self._poll_miner_now(slot, state_only=state_only)
        except Exception as err:
            if not slot.unavailable_logged:
                LOGGER.warning(
                    "Miner %s failed unexpectedly",
                    slot.subentry.data[CONF_HOST],
                    exc_info=True,
                )
            self._set_unavailable(slot, err)

    async def _poll_miner_now(self, slot: MinerSlot, *, state_only: bool) -> None:
        data = slot.subentry.data
        try:
            identified_now = slot.client is None
            if slot.client is None:
                async with self._identifying:
                    slot.client = await connect(
                        data[CONF_HOST],
                        username=data.get(CONF_USERNAME),
                        password=data.get(CONF_PASSWORD),
                        session=self._web_session(),
                        expect=slot.expected_identity(),
                    )
            previous = slot.reading
            reading = await slot.client.poll(
                state_only=state_only and previous is not None
            )
            if state_only and previous is not None:
                reading = replace(
                    previous,
                    hashrate_ths=reading.hashrate_ths,
                    power_w=reading.power_w,
                    efficiency_j_th=reading.efficiency_j_th,
                    is_mining=reading.is_mining,
                    power_target_w=reading.power_target_w,
                    work_mode=reading.work_mode,
                )
        except (AuthRequired, InvalidAuth) as err:
            self._set_unavailable(slot, err)
            self._credentials_issue(slot, create=True)
            return
        except WrongMiner as err:
            await self._wrong_miner(slot, err)
            return
        except MinerError as err:
            self._set_unavailable(slot, err)
            return
        if identified_now:
            self._credentials_issue(slot, create=False)
            self._identified(slot, slot.client)
        now = self.hass.loop.time()
        self._integrate(slot, reading, now)
        if slot.unavailable_logged:
            LOGGER.info("Miner %s is back", data[CONF_HOST])
            slot.unavailable_logged = False
        slot.reading, slot.read_at, slot.error = reading, now, None
        self._signal_miner(slot, state_only=state_only and previous is not None)

    @callback
    def _signal_miner(self, slot: MinerSlot, *, state_only: bool = False) -> None:
        """Tell the miner's entities that its reading changed: those showing
        what a read-back reads always, the others only after a full read."""
        async_dispatcher_send(self.hass, signal_miner_state(slot.subentry_id))
        if not state_only:
            async_dispatcher_send(self.hass, signal_miner_read(slot.subentry_id))

    def _identified(self, slot: MinerSlot, client: MinerClient) -> None:
        """The right miner answers: learn its serial and MAC, end a mismatch."""
        expected, seen = slot.expected_identity(), client.identity
        slot.known = Identity(
            serial=seen.serial or expected.serial, mac=seen.mac or expected.mac
        )
        if slot.wrong_miner:
            slot.wrong_miner = False
            LOGGER.info("The right miner answers at %s again", client.host)
            ir.async_delete_issue(self.hass, DOMAIN, _wrong_miner_issue_id(slot))

    async def _wrong_miner(self, slot: MinerSlot, err: WrongMiner) -> None:
        """Another miner answers: forget the client, never command it, say so."""
        client, slot.client = slot.client, None
        if client is not None:
            await client.aclose()
        self._set_unavailable(slot, err)
        if slot.wrong_miner:
            return
        slot.wrong_miner = True
        LOGGER.warning(
            "Another miner answers at %s: %s is not commanded until it answers again",
            slot.subentry.data[CONF_HOST],
            slot.subentry.title,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            _wrong_miner_issue_id(slot),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="miner_wrong_identity",
            translation_placeholders={
                "miner": slot.subentry.title,
                "host": slot.subentry.data[CONF_HOST],
            },
        )

    def _credentials_issue(self, slot: MinerSlot, *, create: bool) -> None:
        """Ask for a miner's new credentials (a fixable repair issue), or stop."""
        issue_id = f"miner_credentials_{slot.subentry_id}"
        if not create:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key="miner_credentials",
            translation_placeholders={
                "miner": slot.subentry.title,
                "host": slot.subentry.data[CONF_HOST],
            },
            data={
                "entry_id": self.config_entry.entry_id,
                "subentry_id": slot.subentry_id,
            },
        )

    def _set_unavailable(self, slot: MinerSlot, err: Exception) -> None:
        was_available = slot.reading is not None
        slot.reading, slot.error = None, str(err) or type(err).__name__
        if was_available:
            self._signal_miner(slot)
        if not slot.unavailable_logged:
            LOGGER.info(
                "Miner %s is unavailable: %s", slot.subentry.data[CONF_HOST], slot.error
            )
            slot.unavailable_logged = True

    def _integrate(self, slot: MinerSlot, reading: MinerReading, now: float) -> None:
        """Add the energy since the last reading (trapezoid), if the gap is short."""
        previous, since = slot.reading, slot.read_at
        if previous is None or since is None:
            return
        dt = now - since
        max_gap = MAX_GAP_POLLS * SCAN_INTERVAL.total_seconds()
        if not 0 < dt <= max_gap:
            return
        kwh = ((previous.power_w or 0.0) + (reading.power_w or 0.0)) / 2 * dt / 3.6e6
        slot.energy_kwh += kwh
        self.site_energy_kwh += kwh

    def miner_states(self) -> list[MinerState]:
        """Return the planner's view of every miner (within its heater's cap)."""
        return [slot.planned_state() for slot in self.slots.values()]
