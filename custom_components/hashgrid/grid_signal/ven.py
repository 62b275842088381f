"""A thin VEN on top of `openleadr.OpenADRClient` (HA-free).

HashGrid drives the client itself instead of `OpenADRClient.run()`: it registers,
then polls when HA's coordinator says so, which lets it see the connection state
(openleadr only logs failures) and tell an unreachable VTN from one that sends a
message HashGrid cannot read. Events go to a callback that answers optIn/optOut;
opts decided later (the `opt_out` action, the participate switch) are sent as an
unsolicited oadrCreatedEvent. If the VTN asks for reports, the power a callback
returns is sent as TELEMETRY_USAGE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
import logging
import re
import ssl
from typing import Any, cast

import aiohttp
from lxml import etree
from openleadr import OpenADRClient, enums, errors, objects, utils
from openleadr.messaging import (
    TEMPLATES,
    parse_message,
    validate_xml_schema,
    validate_xml_signature,
)
from signxml.exceptions import InvalidSignature

from .certs import check_credentials

_LOGGER = logging.getLogger(__name__)

SERVICE_EVENT = "EiEvent"
DEFAULT_POLL = timedelta(seconds=10)
MIN_POLL = timedelta(seconds=1)
MAX_POLL = timedelta(hours=24)
# A poll (with the registration, event answers and reports it brings) as a
# whole: aiohttp's read timeout alone lets a VTN that trickles bytes hold it.
POLL_DEADLINE_S = 20.0
LOST_REGISTRATION = frozenset({452, 463})
# OpenADR's own refusal of this VEN's credentials, answered to a registration:
# 463 NOT_REGISTERED_OR_AUTHORIZED (what openleadr's VTN answers when the TLS
# certificate's fingerprint is not the one it knows for this VEN).
UNAUTHORIZED_CODES = frozenset({463})
# HTTP answers that refuse the client's credentials.
UNAUTHORIZED_HTTP = frozenset({401, 403})
# TLS alerts the VTN sends when it refuses this VEN's client certificate (or
# wants one and got none); seen as `ssl.SSLError.reason` on this side.
REFUSED_CERTIFICATE_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    }
)
# An answer larger than this is not read further (a message of 1,000 events
# is about 2 MiB).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # invalid id, not registered
_EVENT_ID = re.compile(rb"<(?:\w+:)?eventID>([^<]*)</(?:\w+:)?eventID>")

type EventHandler = Callable[[Mapping[str, Any], bool], str]
# Every event of one valid oadrDistributeEvent at once (a full list: an event
# missing from it is cancelled); returns the opt for each, in order.
type ListHandler = Callable[[list[Mapping[str, Any]]], list[str]]


@cache
def _load_message_templates() -> None:
    """Load openleadr's XML message templates once (file reads: in an executor).

    openleadr loads each template from disk the first time it sends that
    message, which would block HA's event loop.
    """
    for name in TEMPLATES.list_templates():
        TEMPLATES.get_template(name)


type MalformedHandler = Callable[[list[Mapping[str, Any]], list[str]], None]
type PowerSource = Callable[[], float | None]


class VenError(Exception):
    """The VTN could not be used."""


class CannotConnect(VenError):
    """Nothing (usable) answers at the VTN URL."""


class Rejected(VenError):
    """The VTN answered but refused to register this VEN."""


class CertificateMismatch(VenError):
    """The VTN's messages are not signed by the expected certificate."""


class Unauthorized(VenError):
    """The VTN refused this VEN's credentials (TLS alert, HTTP 401/403, OpenADR 463)."""


def _refused_alert(err: BaseException) -> str | None:
    """Return the TLS alert in err's chain that refuses this VEN's certificate."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        if isinstance(current, ssl.SSLError) and reason in REFUSED_CERTIFICATE_ALERTS:
            return str(reason)
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True, kw_only=True)
class VenConfig:
    """How to reach the VTN and who this VEN is."""

    vtn_url: str
    ven_name: str
    ven_id: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    ca_file: str | None = None
    vtn_fingerprint: str | None = None


class _TooLarge(Exception):
    """The VTN's answer exceeds MAX_RESPONSE_BYTES."""


_OFFSET_TIME = re.compile(
    rb"(<(?:\w+:)?date-time>\s*)"
    rb"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2})(\s*<)"
)


def _to_utc(match: re.Match[bytes]) -> bytes:
    try:
        when = datetime.fromisoformat(match.group(2).decode()).astimezone(UTC)
    except ValueError:
        return match.group(0)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}"
    return match.group(1) + text.encode() + b"Z" + match.group(3)


def _parse_xml(raw: bytes) -> Any:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, recover=False
    )
    return etree.fromstring(raw, parser)


def _is_openadr(raw: bytes) -> bool:
    """Return True if raw is well-formed XML whose root is an oadrPayload."""
    try:
        root = _parse_xml(raw)
    except etree.XMLSyntaxError, ValueError:
        return False
    return bool(etree.QName(root).localname == "oadrPayload")


def _over(period: Any) -> bool:
    """Return True when an active period (as openleadr parses it) has ended."""
    try:
        return bool(utils.determine_event_status(period) == "completed")
    except Exception:  # a start or duration openleadr could not parse
        return False


class _Client(OpenADRClient):  # type: ignore[misc]
    """openleadr's client, with the outcome of each exchange recorded."""

    client_session: aiohttp.ClientSession | None

    def __init__(self, config: VenConfig, on_malformed: MalformedHandler) -> None:
        super().__init__(
            ven_name=config.ven_name,
            vtn_url=config.vtn_url,
            ven_id=config.ven_id,
            cert=config.client_cert,
            key=config.client_key,
            ca_file=config.ca_file,
            vtn_fingerprint=config.vtn_fingerprint or None,
            show_fingerprint=False,
        )
        self._on_malformed = on_malformed
        self.raw: bytes | None = None
        self.reachable = False
        self.certificate_mismatch = False
        self.registration_lost = False
        # Why the VTN refused this VEN's credentials (None: it did not); set by
        # any exchange, cleared by the VEN at the start of a poll or registration.
        self.refusal: str | None = None
        self.last_code: int | None = None
        self._warned_offsets = False
        self.handle_events: ListHandler = lambda events: ["optOut"] * len(events)
        self.add_hook("after_receive_xml", self._remember_raw)

    def _remember_raw(self, content: str) -> None:
        self.raw = content.encode() if isinstance(content, str) else content

    def _ssl_context(self) -> ssl.SSLContext:
        """Build the TLS context (reads files: run it in an executor)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_path and self.key_path:
            context.load_cert_chain(self.cert_path, self.key_path, self.passphrase)
        context.check_hostname = self.check_hostname
        return context

    async def _ensure_client_session(self) -> None:
        if self.client_session:
            return
        connector = None
        if self.vtn_url.startswith("https") and (self.cert_path or self.ca_file):
            context = await asyncio.get_running_loop().run_in_executor(
                None, self._ssl_context
            )
            connector = aiohttp.TCPConnector(ssl=context)
        self.client_session = aiohttp.ClientSession(
            connector=connector,
            headers={"content-type": "application/xml"},
            timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=10),
        )

    async def _read(self, service: str, message: Any) -> bytes | None:
        """POST a message; return the answer (None: no usable answer).

        openleadr reads any answer whole; HashGrid stops at MAX_RESPONSE_BYTES.
        """
        await self._ensure_client_session()
        assert self.client_session is not None
        url = f"{self.vtn_url}/{service}"
        try:
            await self._execute_hooks("before_send_xml", utils.ensure_str(message))
            async with self.client_session.post(url, data=message) as response:
                if (response.content_length or 0) > MAX_RESPONSE_BYTES:
                    raise _TooLarge(response.content_length)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _TooLarge(size)
                    chunks.append(chunk)
                content = b"".join(chunks)
                await self._execute_hooks("after_receive_xml", content)
                if response.status != 200:
                    _LOGGER.warning(
                        "The OpenADR VTN answered %s with HTTP %s", url, response.status
                    )
                    if response.status in UNAUTHORIZED_HTTP:
                        self.refusal = f"HTTP {response.status}"
                    return None
        except _TooLarge as err:
            _LOGGER.warning(
                "The OpenADR VTN's answer to %s is larger than %s bytes (%s): ignored",
                url,
                MAX_RESPONSE_BYTES,
                err.args[0],
            )
            return None
        except (aiohttp.ClientError, OSError, ValueError) as err:
            if (alert := _refused_alert(err)) is not None:
                _LOGGER.warning(
                    "The OpenADR VTN %s refused this VEN's certificate (TLS alert %s)",
                    self.vtn_url,
                    alert,
                )
                self.refusal = f"TLS alert {alert}"
                return None
            _LOGGER.debug("No answer from the OpenADR VTN at %s", url, exc_info=True)
            return None
        return content

    def _utc_times(self, content: bytes) -> tuple[bytes, bool]:
        """Write times with an offset (+02:00) in UTC; return (content, verified).

        OpenADR 2.0b's schema accepts only times in UTC (Z) and openleadr reads
        only those; a time with an offset is still one instant, so it is
        converted. A signed message is verified as sent first (the signature
        covers the original text); one that fails is left for the usual check.
        """
        if not _OFFSET_TIME.search(content):
            return content, False
        if self.vtn_fingerprint:
            try:
                validate_xml_signature(
                    _parse_xml(content), cert_fingerprint=self.vtn_fingerprint
                )
            except Exception:  # the usual check reports it
                return content, False
        if not self._warned_offsets:
            self._warned_offsets = True
            _LOGGER.warning(
                "The OpenADR VTN %s sends times with a UTC offset, which OpenADR "
                "2.0b does not allow; HashGrid converts them to UTC",
                self.vtn_url,
            )
        return _OFFSET_TIME.sub(_to_utc, content), bool(self.vtn_fingerprint)

    async def _perform_request(
        self, service: str, message: Any
    ) -> tuple[str | None, dict[str, Any]]:
        self.raw = None
        content = await self._read(service, message)
        result: tuple[str | None, dict[str, Any]] = (None, {})
        if content:
            try:
                content, verified = self._utc_times(content)
                tree = validate_xml_schema(content)
                if self.vtn_fingerprint and not verified:
                    validate_xml_signature(tree, cert_fingerprint=self.vtn_fingerprint)
                result = cast(tuple[str, dict[str, Any]], parse_message(content))
            except Exception as err:  # invalid, unsigned or unreadable
                _LOGGER.debug("The VTN's message is not usable: %s", err)
            else:
                code = (result[1].get("response") or {}).get("response_code")
                self.last_code = code
                if code is not None and code != 200:
                    _LOGGER.warning("The OpenADR VTN answered %s", code)
        raw = self.raw
        if result[0] is not None:
            self.reachable = True
            self.certificate_mismatch = False
        elif raw is not None and _is_openadr(raw):
            self.reachable = True
            self.certificate_mismatch = self._signature_fails(raw)
            if b"oadrDistributeEvent" in raw and not self.certificate_mismatch:
                self._report_malformed(raw)
        else:
            self.reachable = False
        return result

    async def poll(self) -> tuple[str | None, dict[str, Any]]:
        """Poll once; note when the VTN says this VEN is not registered.

        openleadr takes any oadrResponse to a poll as "nothing new", so a VTN
        that lost the registration (452 invalid id, 463 not registered) would
        never be asked to register this VEN again, and no event would come.
        """
        response_type, payload = await super().poll()
        code = (payload.get("response") or {}).get("response_code")
        if response_type == "oadrResponse" and code in LOST_REGISTRATION:
            _LOGGER.warning(
                "The OpenADR VTN %s answered %s: it no longer knows this VEN",
                self.vtn_url,
                code,
            )
            self.registration_lost = True
        if response_type == "oadrDistributeEvent" and not payload.get("events"):
            # A full list with no event: everything known is cancelled.
            # openleadr's poll loop skips an empty list; HashGrid does not.
            await self._on_event(payload)
        return response_type, payload

    async def sync_events(self) -> None:
        """Ask for the event list (after registering); an empty list counts."""
        response_type, payload = await self.request_event()
        if response_type == "oadrDistributeEvent":
            await self._on_event(payload)

    def _report_malformed(self, raw: bytes) -> None:
        """Hand over what can be read of an invalid oadrDistributeEvent."""
        try:
            _type, payload = parse_message(raw)
            events = [e for e in payload.get("events", []) if isinstance(e, Mapping)]
        except Exception:  # not even readable XML
            events = []
        ids = [m.decode(errors="replace") for m in _EVENT_ID.findall(raw)]
        self._on_malformed(events, ids)

    async def _on_event(self, message: Mapping[str, Any]) -> None:
        """Hand each event of an oadrDistributeEvent over; answer as required.

        Replaces openleadr's own handling, which reads its stored answer for an
        event listed again with the same modification number after deleting
        that answer when the event was marked completed or cancelled: the
        KeyError opted out of every event of the message and hid the new ones.
        HashGrid's schedule knows what it saw, so every event goes to the
        handler (which never raises), each on its own.
        """
        request_id = message.get("request_id")
        responses: list[dict[str, Any]] = []
        events = [e for e in message.get("events") or () if isinstance(e, Mapping)]
        opts = self.handle_events(events)
        for event, opt in zip(events, opts, strict=True):
            descriptor = event.get("event_descriptor") or {}
            event_id = descriptor.get("event_id")
            opt = opt if opt in ("optIn", "optOut") else "optOut"
            if descriptor.get("event_status") in ("completed", "cancelled"):
                self.responded_events.pop(event_id, None)
            else:
                self.responded_events[event_id] = opt
            if event.get("response_required", "always") != "always":
                continue
            if _over(event.get("active_period")):
                continue  # openleadr's rule: an event over needs no answer
            signals = event.get("event_signals") or ()
            if isinstance(signals, Mapping):  # one signal, as openleadr may parse it
                signals = signals.get("event_signals") or ()
            supported = all(
                isinstance(s, Mapping)
                and s.get("signal_name") in enums.SIGNAL_NAME.values
                for s in signals
            )
            responses.append(
                {
                    "response_code": 200
                    if supported
                    else enums.STATUS_CODES.SIGNAL_NOT_SUPPORTED,
                    "response_description": "OK" if supported else "ERROR",
                    "opt_type": opt,
                    "request_id": request_id,
                    "modification_number": descriptor.get("modification_number"),
                    "event_id": event_id,
                }
            )
        if responses:
            await self._perform_request(
                SERVICE_EVENT,
                self._create_message(
                    "oadrCreatedEvent",
                    response={
                        "response_code": 200,
                        "response_description": "OK",
                        "request_id": request_id,
                    },
                    event_responses=responses,
                    ven_id=self.ven_id,
                ),
            )

    def _signature_fails(self, raw: bytes) -> bool:
        if not self.vtn_fingerprint:
            return False
        try:
            tree = validate_xml_schema(raw)
        except Exception:  # not valid OpenADR: not a signature problem
            return False
        try:
            validate_xml_signature(tree, cert_fingerprint=self.vtn_fingerprint)
        except errors.FingerprintMismatch, InvalidSignature:
            return True
        except Exception:  # unsigned, or no certificate in the signature
            return True
        return False

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.report_queue_task:
            self.report_queue_task.cancel()
        if self.client_session:
            await self.client_session.close()
            self.client_session = None


class Ven:
    """Registration, polling, opts and telemetry of one VEN."""

    def __init__(
        self,
        config: VenConfig,
        *,
        on_event: EventHandler,
        on_malformed: MalformedHandler,
        power: PowerSource | None = None,
        on_events: ListHandler | None = None,
    ) -> None:
        """Build the client (reads certificate files: run it in an executor).

        Raise a `CredentialsError` if a certificate, key or CA file is unusable.
        """
        check_credentials(config.client_cert, config.client_key, config.ca_file)
        _load_message_templates()
        self.config = config
        self._on_event = on_event
        self._on_events = on_events
        self._client = _Client(config, on_malformed)
        self._client.handle_events = self._handle_events
        self.telemetry_requested = False
        self.reports_sent = 0
        if power is not None:
            self._power = power
            self._client.add_report(
                callback=self._read_power,
                resource_id="hashgrid",
                measurement="real_power",
                unit="W",
                report_specifier_id="hashgrid-telemetry",
                r_id="hashgrid-power",
                report_duration=timedelta(seconds=3600),
                sampling_rate=objects.SamplingRate(
                    min_period=timedelta(seconds=1),
                    max_period=timedelta(minutes=15),
                    on_change=False,
                ),
            )
        self.registered = False

    # --- what HA reads ---------------------------------------------------------

    @property
    def ven_id(self) -> str | None:
        """Return the id the VTN gave this VEN."""
        return cast(str | None, self._client.ven_id)

    @property
    def registration_id(self) -> str | None:
        """Return the VTN's registration id."""
        return cast(str | None, self._client.registration_id)

    @property
    def poll_interval(self) -> timedelta:
        """Return the polling interval the VTN asked for (clamped)."""
        asked = self._client.poll_frequency or DEFAULT_POLL
        return min(max(asked, MIN_POLL), MAX_POLL)

    @property
    def refusal(self) -> str | None:
        """Return how the VTN refused this VEN's credentials in the last poll."""
        return self._client.refusal

    @property
    def connected(self) -> bool:
        """Return True while the VTN answered the last exchange."""
        return self.registered and self._client.reachable

    # --- events -------------------------------------------------------------------

    def _handle_events(self, events: list[Mapping[str, Any]]) -> list[str]:
        """Decide every event of one list (the whole list at once if possible)."""
        if self._on_events is not None:
            try:
                opts = self._on_events(events)
            except Exception:
                _LOGGER.exception("Handling an OpenADR event list failed; opting out")
                opts = []
            if len(opts) == len(events):
                return opts
            return ["optOut"] * len(events)
        return [
            self._decide(
                event,
                (event.get("event_descriptor") or {}).get("event_id")
                in self._client.responded_events,
            )
            for event in events
        ]

    def _decide(self, event: Mapping[str, Any], update: bool) -> str:
        try:
            opt = self._on_event(event, update)
        except Exception:
            _LOGGER.exception("Handling an OpenADR event failed; opting out")
            return "optOut"
        return opt if opt in ("optIn", "optOut") else "optOut"

    # --- telemetry ----------------------------------------------------------------

    def _read_power(self) -> list[tuple[datetime, float]]:
        self.telemetry_requested = True
        try:
            value = self._power()
        except Exception:
            _LOGGER.exception("Reading the telemetry power failed")
            return []
        if value is None:
            return []
        self.reports_sent += 1
        return [(datetime.now(UTC), float(value))]

    # --- the protocol -----------------------------------------------------------------

    async def register(self) -> None:
        """Register with the VTN and fetch its events; raise a VenError if not."""
        client = self._client
        client.loop = asyncio.get_running_loop()
        client.certificate_mismatch = False
        client.refusal = None
        response_type, payload = await client.query_registration()
        if response_type is None:
            raise self._failure()
        request_id = (payload.get("response") or {}).get("request_id")
        client.last_code = None
        result = await client.create_party_registration(
            ven_id=client.ven_id, request_id=request_id
        )
        if client.last_code in UNAUTHORIZED_CODES:
            client.refusal = f"OpenADR {client.last_code}"
        if result is None or result[0] is None:
            if (
                client.reachable
                and not client.certificate_mismatch
                and not client.refusal
            ):
                raise Rejected("the VTN refused the registration")
            raise self._failure()
        if not client.registration_id or not client.ven_id:
            raise Rejected("the VTN did not register this VEN")
        self.registered = True
        if client.reports:
            await client.register_reports(client.reports)
            if client.report_requests:
                self.telemetry_requested = True
            if client.report_queue_task is None or client.report_queue_task.done():
                client.report_queue_task = client.loop.create_task(
                    client._report_queue_worker()
                )
            if not client.scheduler.running:
                client.scheduler.start()
        await client.sync_events()

    def _failure(self) -> VenError:
        if self._client.refusal is not None:
            return Unauthorized(f"the VTN refused this VEN ({self._client.refusal})")
        if self._client.certificate_mismatch:
            return CertificateMismatch("the VTN's signature does not match")
        if self._client.reachable:
            return Rejected("the VTN refused the request")
        return CannotConnect(f"the VTN at {self.config.vtn_url} does not answer")

    async def poll(self) -> bool:
        """Register if needed, then poll once; return True while connected.

        `refusal` says afterwards whether the VTN refused this VEN's credentials.
        """
        client = self._client
        client.refusal = None
        try:
            async with asyncio.timeout(POLL_DEADLINE_S):
                if not self.registered:
                    await self.register()
                await client._poll()
                if client.registration_lost:
                    # Register again at once: a missed poll may be a missed event.
                    client.registration_lost = False
                    client.registration_id = None
                    self.registered = False
                    await self.register()
                await client._event_cleanup()
        except VenError as err:
            _LOGGER.debug("VTN not usable: %s", err)
        except TimeoutError:
            _LOGGER.warning(
                "The OpenADR VTN %s did not finish answering within %s s",
                self.config.vtn_url,
                POLL_DEADLINE_S,
            )
            client.reachable = False
        except Exception:
            _LOGGER.exception("Polling the VTN failed")
            self._client.reachable = False
        if self._client.registration_id is None:
            self.registered = False
        return self.connected

    async def send_opt(self, event_id: str, modification_number: int, opt: str) -> bool:
        """Tell the VTN (again) whether this VEN takes part in an event."""
        # openleadr re-sends its last answer when an unmodified event comes again.
        self._client.responded_events[event_id] = opt
        try:
            async with asyncio.timeout(POLL_DEADLINE_S):
                await self._client.created_event(
                    request_id=utils.generate_id(),
                    event_id=event_id,
                    opt_type=opt,
                    modification_number=modification_number,
                )
        except TimeoutError:
            self._client.reachable = False
        return bool(self._client.reachable)

    async def close(self) -> None:
        """Stop timers and close the HTTP session."""
        await self._client.stop()
