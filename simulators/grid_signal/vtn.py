"""A real OpenADR 2.0b VTN: openleadr's own `OpenADRServer`, made to run on 3.14.

openleadr 0.5.36 stores `functools.partial(create_message, ...)` as the class
attribute `VTNService._create_message`; since Python 3.14 a partial binds like a
function, so every request fails with HTTP 500. Re-wrapping the attribute in
`staticmethod` before `run()` fixes it (see DESIGN.md).

`SimulatedVtn` registers every VEN that asks (unless told to reject it), lets a
caller add, modify and cancel events for a VEN by name, records the VEN's
optIn/optOut answers (every one, not only the first as openleadr's callbacks do)
and, when asked to, requests the VENs' TELEMETRY_USAGE reports and keeps them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
import logging
import re
import socket
from typing import Any

from aiohttp import web
from openleadr import OpenADRServer, enums, objects, utils
from openleadr.service import VTNService

_LOGGER = logging.getLogger(__name__)

VTN_ID = "HASHGRID-SIM-VTN"
PATH_PREFIX = "/OpenADR2/Simple/2.0b"


def fix_openleadr_server() -> None:
    """Re-wrap `VTNService._create_message` so that it does not bind `self`."""
    current = VTNService.__dict__.get("_create_message")
    if current is not None and not isinstance(current, staticmethod):
        VTNService._create_message = staticmethod(current)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _with_offset(utc: str, offset: str) -> str:
    """Write a time ending in Z with an offset instead (the same instant), or
    with none at all when offset is "none" (a VTN's local time)."""
    when = datetime.fromisoformat(utc)
    if offset == "none":
        return when.replace(tzinfo=None).isoformat()
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = offset.lstrip("+-").split(":")
    zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    return when.astimezone(zone).isoformat()


@dataclass(frozen=True)
class OptResponse:
    """One optIn/optOut a VEN sent for an event."""

    ven_id: str
    event_id: str
    opt_type: str


@dataclass(frozen=True)
class TelemetryValue:
    """One value of a VEN's TELEMETRY_USAGE report."""

    ven_id: str
    resource_id: str | None
    measurement: str | None
    at: datetime
    value: float


@dataclass
class SimulatedVtn:
    """openleadr's VTN on a port, with a driver's API for tests and the demo."""

    host: str = "127.0.0.1"
    port: int = 0
    poll_interval: timedelta = timedelta(seconds=10)
    request_telemetry: bool = False
    telemetry_interval: timedelta = timedelta(seconds=10)
    cert: str | None = None
    key: str | None = None
    reject: set[str] = field(default_factory=set)
    ven_ids: dict[str, str] = field(default_factory=dict)
    responses: list[OptResponse] = field(default_factory=list)
    telemetry: list[TelemetryValue] = field(default_factory=list)
    server: OpenADRServer | None = None
    running: bool = False
    wire_faults: dict[str, dict[str, str]] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    trickle: float | None = None
    versions: dict[str, dict[int, objects.Event]] = field(default_factory=dict)
    registrations: int = 0
    empty_lists: bool = True
    junk: bytes | None = None
    _changed: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Return the VTN URL a VEN is configured with."""
        return f"http://{self.host}:{self.port}{PATH_PREFIX}"

    # --- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Serve (again) on the port; the VENs and events are kept across restarts."""
        if self.port == 0:
            self.port = free_port(self.host)
        if self.server is None:
            self.server = self._make_server()
        fix_openleadr_server()
        self._runner = web.AppRunner(self.server.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.running = True
        _LOGGER.info("OpenADR VTN serving %s", self.url)

    async def stop(self) -> None:
        """Stop answering (the port is closed); state is kept for `start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.running = False

    def _make_server(self) -> OpenADRServer:
        server = OpenADRServer(
            vtn_id=VTN_ID,
            cert=self.cert,
            key=self.key,
            http_host=self.host,
            http_port=self.port,
            requested_poll_freq=self.poll_interval,
            show_fingerprint=False,
            ven_lookup=self._ven_lookup,
        )
        server.add_handler("on_create_party_registration", self._on_register)
        server.add_handler("on_register_report", self._on_register_report)
        server.app.middlewares.append(self._wire_fault_middleware)
        self._changed = asyncio.Condition()
        events = server.services["event_service"]
        request_event = events.request_event

        async def _full_list(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            """Send an empty list as an empty oadrDistributeEvent (the 2.0b rule:
            a distribute lists every pending and active event), where openleadr
            answers a bare oadrResponse that cancels nothing."""
            result: tuple[str, dict[str, Any]] = await request_event(payload)
            if (
                self.empty_lists
                and result[0] == "oadrResponse"
                and payload.get("ven_id") in events.events
            ):
                return "oadrDistributeEvent", {"events": []}
            return result

        events.request_event = _full_list
        return server

    # --- registration ---------------------------------------------------------------

    def _on_register(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        name = str(payload.get("ven_name"))
        if name in self.reject:
            _LOGGER.info("Rejecting VEN %s", name)
            return False
        ven_id = self.ven_ids.setdefault(name, f"ven-{name}")
        self.lost.pop(ven_id, None)
        self.registrations += 1
        return ven_id, f"reg-{ven_id}"

    def lose_registration(self, ven: str, code: int = 463) -> None:
        """Answer the VEN's every request with `code` (452 invalid id, 463 not
        registered) until it registers again, as a VTN that lost its state does."""
        self.lost[self.ven_id(ven)] = code

    def _ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        for name, known in self.ven_ids.items():
            if known == ven_id:
                return {
                    "ven_id": ven_id,
                    "ven_name": name,
                    "fingerprint": None,
                    "registration_id": f"reg-{ven_id}",
                }
        return None

    def _on_register_report(
        self,
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str,
        scale: str,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[Any, timedelta] | None:
        if not self.request_telemetry:
            return None

        def _collect(data: list[tuple[datetime, float]]) -> None:
            for at, value in data:
                self.telemetry.append(
                    TelemetryValue(ven_id, resource_id, measurement, at, float(value))
                )
            self._notify()

        interval = min(
            max(self.telemetry_interval, min_sampling_interval), max_sampling_interval
        )
        return _collect, interval

    # --- events ---------------------------------------------------------------------

    def ven_id(self, ven: str) -> str:
        """Return the id of a VEN by its name (or its id)."""
        return self.ven_ids.get(ven, ven)

    def add_event(
        self,
        ven: str,
        *,
        start: datetime,
        duration: timedelta,
        level: float | str = 2,
        signal_name: str = "SIMPLE",
        signal_type: str = "level",
        intervals: list[tuple[timedelta, float | str]] | None = None,
        active_duration: timedelta | None = None,
        start_after: timedelta | None = None,
        ramp_up: timedelta | None = None,
        event_id: str | None = None,
        response_required: str = "always",
        market_context: str = "oadr://hashgrid.sim/dr",
        priority: int | None = None,
        wire_level: str | None = None,
        wire_active_duration: str | None = None,
        targets: list[dict[str, str]] | None = None,
        test_event: bool = False,
    ) -> str:
        """Add an event with one signal for a VEN; return its id.

        `intervals` are (duration, payload) pairs from `start` (default: one
        interval of `duration` at `level`). `active_duration` overrides the
        active period's duration, so that a test can send a contradictory or
        open-ended event. openleadr's server refuses to send SIMPLE levels
        outside 0-3 and silently fixes an active period that disagrees with the
        intervals, so a buggy VTN is simulated on the wire: `wire_level`
        replaces every interval payload and `wire_active_duration` the active
        period's duration (an RFC 5545 duration) in what is sent. `targets`
        replaces the event's targets (default: this VEN's id), though the event
        is sent to this VEN.
        """
        assert self.server is not None
        ven_id = self.ven_id(ven)
        event_id = event_id or utils.generate_id()
        rows = intervals or [(duration, level)]
        built: list[objects.Interval] = []
        cursor = start
        for uid, (length, payload) in enumerate(rows):
            built.append(
                objects.Interval(
                    dtstart=cursor, duration=length, signal_payload=payload, uid=uid
                )
            )
            cursor += length
        event = objects.Event(
            event_descriptor=objects.EventDescriptor(
                event_id=event_id,
                modification_number=0,
                market_context=market_context,
                priority=priority,
                test_event=test_event,
                event_status=enums.EVENT_STATUS.FAR,
                created_date_time=datetime.now(UTC),
            ),
            event_signals=[
                objects.EventSignal(
                    intervals=built,
                    signal_name=signal_name,
                    signal_type=signal_type,
                    signal_id=utils.generate_id(),
                )
            ],
            targets=targets if targets is not None else [{"ven_id": ven_id}],
            response_required=response_required,
            active_period=objects.ActivePeriod(dtstart=start, duration=duration),
        )
        self.server.add_raw_event(ven_id, event, callback=self._opt_callback(event))
        # add_raw_event recomputes the active period from the intervals: set ours.
        event.active_period = objects.ActivePeriod(
            dtstart=start,
            duration=duration if active_duration is None else active_duration,
            tolerance={"startafter": start_after} if start_after else None,
            ramp_up_period=ramp_up,
        )
        event.event_descriptor.event_status = utils.determine_event_status(
            event.active_period
        )
        self._keep_version(event)
        faults = {"level": wire_level, "active_duration": wire_active_duration}
        if any(faults.values()):
            self.wire_faults[event_id] = {k: v for k, v in faults.items() if v}
        return event_id

    @web.middleware
    async def _wire_fault_middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        if self.junk is not None:  # a broken VTN or a proxy's error page
            await request.read()
            # Chunked, without a length: the VEN only knows the size by reading.
            stream = web.StreamResponse()
            stream.content_type = "application/xml"
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            with contextlib.suppress(ConnectionError):
                for at in range(0, len(self.junk), 1 << 20):
                    await stream.write(self.junk[at : at + (1 << 20)])
                await stream.write_eof()
            return stream
        if self.lost and not request.path.endswith("/EiRegisterParty"):
            body = await request.text()
            found = re.search(r"<(?:\w+:)?venID>([^<]*)</", body)
            if found and (code := self.lost.get(found.group(1))) is not None:
                return web.Response(
                    text=VTNService._create_message(
                        "oadrResponse",
                        response={
                            "response_code": code,
                            "response_description": "NOT REGISTERED",
                            "request_id": None,
                        },
                        ven_id=found.group(1),
                    ),
                    content_type="application/xml",
                )
        response: web.StreamResponse = await handler(request)
        if (
            self.wire_faults
            and isinstance(response, web.Response)
            and response.text
            and "oadrDistributeEvent" in response.text
        ):
            response.text = self._apply_wire_faults(response.text)
        if self.trickle and isinstance(response, web.Response) and response.body:
            return await self._trickle(request, response)
        return response

    async def _trickle(
        self, request: web.Request, response: web.Response
    ) -> web.StreamResponse:
        """Send the answer one byte every `trickle` seconds (a slowloris VTN)."""
        assert isinstance(response.body, bytes)
        body = response.body
        stream = web.StreamResponse(status=response.status)
        stream.content_type = "application/xml"
        stream.content_length = len(body)
        await stream.prepare(request)
        for n in range(len(body)):
            await stream.write(body[n : n + 1])
            await asyncio.sleep(self.trickle or 0)
        await stream.write_eof()
        return stream

    def _apply_wire_faults(self, text: str) -> str:
        for event_id, faults in self.wire_faults.items():
            block = re.compile(
                r"<oadr:oadrEvent>(?:(?!</oadr:oadrEvent>).)*?<ei:eventID>"
                + re.escape(event_id)
                + r"</ei:eventID>.*?</oadr:oadrEvent>",
                re.DOTALL,
            )

            def _fault(match: re.Match[str], faults: dict[str, str] = faults) -> str:
                part = match.group(0)
                if level := faults.get("level"):
                    part = re.sub(
                        r"(<ei:signalPayload>\s*<ei:payloadFloat>\s*<ei:value>)[^<]*",
                        lambda m: m.group(1) + level,
                        part,
                    )
                if status := faults.get("status"):
                    part = re.sub(
                        r"(<ei:eventStatus>)[^<]*",
                        lambda m: m.group(1) + status,
                        part,
                    )
                if offset := faults.get("offset"):
                    part = re.sub(
                        r"(<(?:xcal:)?date-time>)([^<]*Z)(<)",
                        lambda m: (
                            m.group(1) + _with_offset(m.group(2), offset) + m.group(3)
                        ),
                        part,
                    )
                if duration := faults.get("active_duration"):
                    part = re.sub(
                        r"(<ei:eiActivePeriod>.*?<duration>\s*<duration>)[^<]*",
                        lambda m: m.group(1) + duration,
                        part,
                        count=1,
                        flags=re.DOTALL,
                    )
                return part

            text = block.sub(_fault, text)
        return text

    def _find(self, ven: str, event_id: str) -> objects.Event:
        assert self.server is not None
        found = utils.find_by(
            self.server.events.get(self.ven_id(ven), []),
            "event_descriptor.event_id",
            event_id,
        )
        if not found:
            raise KeyError(event_id)
        return found

    def modify_event(
        self,
        ven: str,
        event_id: str,
        *,
        level: float | None = None,
        start: datetime | None = None,
        duration: timedelta | None = None,
    ) -> int:
        """Change an event's level, start or duration; return its modification number."""
        assert self.server is not None
        event = self._find(ven, event_id)
        period = event.active_period
        shift = (start - period.dtstart) if start is not None else timedelta(0)
        if start is not None:
            period.dtstart = start
        if duration is not None:
            period.duration = duration
        for signal in event.event_signals:
            for interval in signal.intervals:
                interval.dtstart += shift
                if duration is not None and len(signal.intervals) == 1:
                    interval.duration = duration
                if level is not None:
                    interval.signal_payload = level
        utils.increment_event_modification_number(event)
        event.event_descriptor.modification_date_time = datetime.now(UTC)
        event.event_descriptor.event_status = utils.determine_event_status(period)
        self.server.event_callbacks[event_id] = (event, self._opt_callback(event))
        self.server.events_updated[self.ven_id(ven)] = True
        self._keep_version(event)
        return int(event.event_descriptor.modification_number)

    def _keep_version(self, event: objects.Event) -> None:
        descriptor = event.event_descriptor
        self.versions.setdefault(descriptor.event_id, {})[
            int(descriptor.modification_number)
        ] = copy.deepcopy(event)

    def replay_event(self, ven: str, event_id: str, modification_number: int) -> None:
        """Send an older version of an event again (a replayed or late message)."""
        assert self.server is not None
        old = copy.deepcopy(self.versions[event_id][modification_number])
        events = self.server.events[self.ven_id(ven)]
        events[events.index(self._find(ven, event_id))] = old
        self.server.event_callbacks[event_id] = (old, self._opt_callback(old))
        self.server.events_updated[self.ven_id(ven)] = True

    def drop_event(self, ven: str, event_id: str) -> None:
        """Leave an event out of the VEN's list from now on, without cancelling it
        (an implied cancellation); the list is sent on the next poll."""
        assert self.server is not None
        events = self.server.events[self.ven_id(ven)]
        events.remove(self._find(ven, event_id))
        self.server.events_updated[self.ven_id(ven)] = True

    def push(self, ven: str) -> None:
        """Send the VEN its whole event list again on its next poll."""
        assert self.server is not None
        self.server.events_updated[self.ven_id(ven)] = True

    def cancel_event(self, ven: str, event_id: str) -> None:
        """Cancel an event (openleadr bumps its modification number)."""
        assert self.server is not None
        event = self._find(ven, event_id)
        self.server.cancel_event(self.ven_id(ven), event_id)
        self.server.event_callbacks[event_id] = (event, self._opt_callback(event))

    def _opt_callback(self, event: objects.Event) -> Any:
        def _callback(ven_id: str, event_id: str, opt_type: str) -> None:
            self.responses.append(OptResponse(ven_id, event_id, opt_type))
            # openleadr forgets the callback after the first answer: keep it.
            assert self.server is not None
            self.server.event_callbacks[event_id] = (event, _callback)
            self._notify()

        return _callback

    # --- waiting ----------------------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is None:
            return

        async def _wake() -> None:
            assert self._changed is not None
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(_wake())

    def opts(self, event_id: str) -> list[str]:
        """Return every opt a VEN sent for an event, oldest first."""
        return [r.opt_type for r in self.responses if r.event_id == event_id]

    async def wait_for_opt(
        self,
        event_id: str,
        opt_type: str | None = None,
        *,
        count: int = 1,
        within: float = 10,
    ) -> list[str]:
        """Wait until `count` matching opts arrived for the event; return them all."""
        assert self._changed is not None

        def _done() -> bool:
            found = [o for o in self.opts(event_id) if opt_type in (None, o)]
            return len(found) >= count

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(_done)
        return self.opts(event_id)

    async def wait_for_telemetry(self, count: int = 1, within: float = 15) -> None:
        """Wait until `count` telemetry values arrived."""
        assert self._changed is not None
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.telemetry) >= count)


@contextlib.asynccontextmanager
async def running_vtn(
    host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> AsyncIterator[SimulatedVtn]:
    """Run a VTN on a (free) loopback port for the duration of the block."""
    vtn = SimulatedVtn(host=host, port=port, **kwargs)
    await vtn.start()
    try:
        yield vtn
    finally:
        await vtn.stop()
