"""Runes of the simulated nodes: created, restricted and checked like CLN's.

A rune is ``base64url(32-byte authcode || restrictions)``; the restrictions are
``=<unique_id>&alt|alt&…`` with alternatives ``<field><op><value>``. The authcode
here is an HMAC-SHA256 of the restriction string under the node's master secret
(real runes chain SHA-256 states; a client only ever treats runes as opaque).

Besides a call's own fields (``method``, ``id``, ``pnum``, ``pname<name>`` in both
of CLN's spellings, ``pnameamount_msat`` and ``pnameamountmsat``, ``parr<n>``),
checkrune knows three conditions of its own, enforced per call as Core Lightning
v26.06 enforces them (seen on a real ``lightningd``, DESIGN.md):
``time<N`` / ``time>N`` (UNIX seconds now), ``per=<n><unit>`` (at most one call
per that long: ``sec``, ``min``, ``hour``, ``day``, ``msec``, ``usec``, ``nsec``;
no unit: seconds) and ``rate=<n>`` (at most n calls a minute). A call refused
by ``per``/``rate`` says "Not permitted: Too soon" / "Rate of N per minute
exceeded" (CLN's code 1502); the usage counts only calls the rune allowed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
import hashlib
import hmac
import time
from typing import Any

OPERATORS = "!=/^$~<>{}#"
READONLY = [["method^list", "method^get", "method=summary"], ["method/listdatastore"]]

_OP_SUMMARY = {
    "!": "is missing",
    "=": "equal to",
    "/": "unequal to",
    "^": "starts with",
    "$": "ends with",
    "~": "contains",
    "<": "is less than",
    ">": "is greater than",
    "{": "sorts before",
    "}": "sorts after",
    "#": "comment",
}


class RuneError(Exception):
    """checkrune's refusals: code 1501 (not ours), 1502 (not permitted), 1503."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Rune:
    """A parsed rune."""

    authcode: bytes
    restrictions: tuple[tuple[str, ...], ...]

    @property
    def unique_id(self) -> str | None:
        """The id in the leading ``=<id>`` restriction, if any."""
        if self.restrictions and len(self.restrictions[0]) == 1:
            first = self.restrictions[0][0]
            if first.startswith("="):
                return first[1:]
        return None

    @property
    def restriction_string(self) -> str:
        """Restrictions as CLN prints them."""
        return "&".join("|".join(alts) for alts in self.restrictions)

    def encode(self) -> str:
        """The base64url rune string."""
        raw = self.authcode + self.restriction_string.encode()
        return base64.urlsafe_b64encode(raw).decode()


def parse(text: str) -> Rune:
    """Parse a rune string; ValueError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:
        raise ValueError("not base64") from err
    if len(raw) < 32:
        raise ValueError("too short")
    try:
        rest = raw[32:].decode()
    except UnicodeDecodeError as err:
        raise ValueError("not utf8") from err
    restrictions = (
        tuple(tuple(part.split("|")) for part in rest.split("&")) if rest else ()
    )
    return Rune(raw[:32], restrictions)


def _authcode(secret: bytes, restrictions: str) -> bytes:
    return hmac.new(secret, restrictions.encode(), hashlib.sha256).digest()


def _check_alternative(text: str) -> None:
    if not text:
        raise ValueError("empty alternative")
    for i, char in enumerate(text):
        if char in OPERATORS:
            if i == 0 and char != "=" and char != "#":
                raise ValueError(f"{text}: no field name")
            field = text[:i]
            if field and not all(c.isalnum() or c == "_" for c in field):
                raise ValueError(f"{text}: invalid field name")
            return
    raise ValueError(f"{text}: no operator")


class RuneMaster:
    """Makes and checks one node's runes."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._next_id = 0
        self.blacklist: set[str] = set()
        self.reject_all = False
        #: Times (monotonic) each rune (by its restriction string) was allowed.
        self._used: dict[str, list[float]] = {}
        self.clock = time.monotonic

    def create(
        self, base: str | None = None, restrictions: list[list[str]] | str | None = None
    ) -> Rune:
        """createrune: a fresh rune, or ``base`` with more restrictions."""
        if restrictions == "readonly":
            extra: list[list[str]] = READONLY
        elif isinstance(restrictions, str):
            extra = [[restrictions]]
        else:
            extra = [
                list(r) if isinstance(r, list) else [str(r)] for r in restrictions or []
            ]
        for alts in extra:
            for alt in alts:
                _check_alternative(alt)
        if base is None:
            rune_restrictions: list[tuple[str, ...]] = [(f"={self._next_id}",)]
            self._next_id += 1
        else:
            parsed = parse(base)
            if not self.authentic(parsed):
                raise RuneError(1501, "Not authorized: Not derived from master")
            rune_restrictions = list(parsed.restrictions)
        rune_restrictions.extend(tuple(alts) for alts in extra)
        text = "&".join("|".join(alts) for alts in rune_restrictions)
        return Rune(_authcode(self._secret, text), tuple(rune_restrictions))

    def authentic(self, rune: Rune) -> bool:
        """Was the rune made by this master (restrictions untampered)?"""
        return hmac.compare_digest(
            rune.authcode, _authcode(self._secret, rune.restriction_string)
        )

    def check(
        self, text: str, method: str | None, params: Any, nodeid: str | None = None
    ) -> None:
        """checkrune: raise RuneError unless the rune allows this call."""
        try:
            rune = parse(text)
        except ValueError as err:
            raise RuneError(1501, "Not authorized: Not derived from master") from err
        if self.reject_all or not self.authentic(rune):
            raise RuneError(1501, "Not authorized: Not derived from master")
        if rune.unique_id is not None and rune.unique_id in self.blacklist:
            raise RuneError(1503, "Not authorized: Blacklisted rune")
        values = _fields(method, params, nodeid)
        values["time"] = int(time.time())
        now = self.clock()
        used = self._used.get(rune.restriction_string, [])
        for alts in rune.restrictions[1 if rune.unique_id is not None else 0 :]:
            reasons = []
            for alt in alts:
                reason = _test_usage(alt, used, now)
                if reason is False:
                    reason = _test(alt, values)
                if reason is None:
                    break
                reasons.append(str(reason))
            else:
                raise RuneError(1502, "Not permitted: " + " AND ".join(reasons))
        self._used[rune.restriction_string] = [t for t in used if now - t < 86400]
        self._used[rune.restriction_string].append(now)


_PER_UNITS = {
    "nsec": 1e-9,
    "usec": 1e-6,
    "msec": 1e-3,
    "sec": 1.0,
    "min": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
}


def _test_usage(alt: str, used: list[float], now: float) -> str | bool | None:
    """``per=``/``rate=`` against the rune's past uses: None (allowed), a reason,
    or False when ``alt`` is no usage condition."""
    field, _, want = alt.partition("=")
    if field == "rate" and want.isdigit():
        recent = sum(1 for t in used if now - t < 60.0)
        return None if recent < int(want) else f"Rate of {want} per minute exceeded"
    if field == "per":
        digits = want.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = want[len(digits) :] or "sec"
        if not digits.isdigit() or unit not in _PER_UNITS:
            return f"{alt}: invalid"
        if used and now - used[-1] < int(digits) * _PER_UNITS[unit]:
            return "Too soon"
        return None
    return False


def _fields(method: str | None, params: Any, nodeid: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if method is not None:
        values["method"] = method
    if nodeid is not None:
        values["id"] = nodeid
    if isinstance(params, dict):
        values["pnum"] = len(params)
        for key, value in params.items():
            # Both spellings: as given, and without what is not alphanumeric.
            values["pname" + str(key)] = value
            values["pname" + "".join(c for c in str(key) if c.isalnum())] = value
    elif isinstance(params, list):
        values["pnum"] = len(params)
        for i, value in enumerate(params):
            values[f"parr{i}"] = value
    else:
        values["pnum"] = 0
    return values


def _test(alt: str, values: dict[str, Any]) -> str | None:
    """None if the alternative passes, else the reason it fails."""
    for i, char in enumerate(alt):
        if char in OPERATORS:
            field, op, want = alt[:i], char, alt[i + 1 :]
            break
    else:
        return f"{alt}: invalid"
    if op == "#":
        return None
    if field not in values:
        return None if op == "!" else f"{field} is missing"
    if op == "!":
        return f"{field} is present"
    have = values[field]
    text = (
        have
        if isinstance(have, str)
        else str(have).lower()
        if isinstance(have, bool)
        else str(have)
    )
    if op == "=":
        return None if text == want else f"{field} is not equal to {want}"
    if op == "/":
        return None if text != want else f"{field} is equal to {want}"
    if op == "^":
        return None if text.startswith(want) else f"{field} does not start with {want}"
    if op == "$":
        return None if text.endswith(want) else f"{field} does not end with {want}"
    if op == "~":
        return None if want in text else f"{field} does not contain {want}"
    if op in "<>":
        try:
            have_int, want_int = int(text), int(want)
        except ValueError:
            return f"{field} is not an integer field"
        if op == "<":
            return (
                None
                if have_int < want_int
                else f"{field} is greater or equal to {want}"
            )
        return None if have_int > want_int else f"{field} is less or equal to {want}"
    if op == "{":
        return None if text < want else f"{field} is the same or ordered after {want}"
    return None if text > want else f"{field} is the same or ordered before {want}"


def summary(alts: tuple[str, ...]) -> str:
    """decode's human-readable summary of one restriction."""
    parts = []
    for alt in alts:
        for i, char in enumerate(alt):
            if char in OPERATORS:
                field, op, value = alt[:i], char, alt[i + 1 :]
                break
        else:
            parts.append(alt)
            continue
        if op == "!":
            parts.append(f"{field} (of command) is missing")
        elif op == "#":
            parts.append(f"comment: {value}")
        else:
            parts.append(f"{field} (of command) {_OP_SUMMARY[op]} {value}")
    return " OR ".join(parts)
