"""The pyasic adapter: identify a miner once, then poll and command it.

Plain asyncio, no Home Assistant. pyasic swallows most transport errors (a
refused connection reads as an empty reply, a LuxOS command "succeeds"), so the
client checks reachability itself and turns pyasic's outcomes into distinct
exceptions from `errors`: whatever goes wrong talking to a miner, pyasic's own
errors included, ends in a `MinerError`.

Every figure a miner reports is checked where it enters: a power, hashrate,
temperature … that is not a finite number within physics (a negative or NaN
power, 1e308 W, "abc") is unknown (None), logged once per miner and figure. A
serial or MAC of the wrong type is unknown too. Each full poll reads the
miner's serial/MAC again (from replies it already asks for, where the firmware
has them) and raises `WrongMiner` when another miner answers at the address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
import contextlib
from dataclasses import dataclass
import logging
import math
import re
from typing import Any

import aiohttp
from grpclib import GRPCError, Status
import pyasic
from pyasic import APIError
from pyasic.data import MinerData
from pyasic.device.algorithm import SHA256Unit
from pyasic.device.algorithm.hashrate import AlgoHashRateType
from pyasic.miners.backends.avalonminer import AvalonMiner
from pyasic.miners.backends.braiins_os import BOSer
from pyasic.miners.backends.btminer import BTMinerV2
from pyasic.miners.backends.espminer import ESPMiner
from pyasic.miners.backends.luxminer import LUXMiner
from pyasic.miners.base import BaseMiner
from pyasic.miners.data import DataOptions
from pyasic.rpc.luxminer import LUXMinerRPCAPI
from pyasic.web.antminer import AntminerModernWebAPI

from . import transport
from .errors import (
    AuthRequired,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    MinerError,
    NotAMiner,
    UnsupportedMiner,
    WrongMiner,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
# Ports pyasic probes: web UI (HTTP, HTTPS) and the cgminer-style API.
PROBE_PORTS = (80, 443, 4028)
RPC_PORT = 4028

_IDENTITY_DATA = [
    DataOptions.MAC,
    DataOptions.SERIAL_NUMBER,
    DataOptions.FW_VERSION,
    DataOptions.WATTAGE_LIMIT,
    DataOptions.EXPECTED_HASHRATE,
]
# What a read-back after a command needs: is it mining, at what power and target.
_STATE_DATA = [
    DataOptions.HASHRATE,
    DataOptions.HASHBOARDS,
    DataOptions.WATTAGE,
    DataOptions.WATTAGE_LIMIT,
    DataOptions.IS_MINING,
]
# The same, where the hash boards carry the hashrate: pyasic then reports
# their sum and ignores the miner's own total, so it need not be read (on
# Antminer stock firmware that saves a connection to the RPC port).
_STATE_DATA_FROM_BOARDS = [o for o in _STATE_DATA if o is not DataOptions.HASHRATE]
# Braiins OS+: the total on the RPC port (`summary`), not the boards: they
# come over gRPC only, the costliest reply to decode (pyasic's betterproto
# takes ~2 ms of the loop per miner), and a read-back needs the total alone.
_STATE_DATA_WITHOUT_BOARDS = [o for o in _STATE_DATA if o is not DataOptions.HASHBOARDS]
# Limits of physics for one miner: anything beyond is a lie, taken as unknown.
MAX_POWER_W = 1e6  # no single miner draws a megawatt
MAX_HASHRATE_THS = 1e5  # nor hashes 100 PH/s
MAX_TEMP_C = 250.0
MIN_TEMP_C = -60.0
MAX_FAN_RPM = 100_000
MAX_UPTIME_S = 100 * 365 * 86400
_POLL_DATA = [
    DataOptions.MAC,
    DataOptions.SERIAL_NUMBER,
    DataOptions.HASHRATE,
    DataOptions.HASHBOARDS,
    DataOptions.WATTAGE,
    DataOptions.WATTAGE_LIMIT,
    DataOptions.FANS,
    DataOptions.UPTIME,
    DataOptions.POOLS,
    DataOptions.ERRORS,
    DataOptions.IS_MINING,
]


@dataclass(frozen=True, slots=True)
class MinerInfo:
    """Who a miner is and what it can do (found once, at identification)."""

    host: str
    make: str
    model: str
    firmware: str
    mac: str | None
    serial: str | None
    unique_id: str
    can_stop: bool
    can_set_power: bool
    min_power_w: float | None = None
    max_power_w: float | None = None
    nominal_power_w: float | None = None
    # Discrete work modes (Avalon: low, medium, high; Whatsminer: low,
    # normal, high) and what each draws.
    work_modes: tuple[WorkMode, ...] = ()
    # The modes are the only power steps (Avalon): a power target is carried
    # out as the highest mode at or below it. Otherwise (Whatsminer) the
    # firmware takes a power limit beside its mode and draws the lower.
    power_by_mode: bool = False
    # The powers a power target is carried out at, when the firmware runs
    # discrete steps (LuxOS: its frequency profiles; Avalon: its work modes):
    # a target becomes the highest step at or below it. Empty: any target in
    # its range.
    power_steps_w: tuple[float, ...] = ()
    # The hashrate the firmware says the machine is built for (Antminer
    # stock: its boards' ideal rate), TH/s; None if it does not say.
    expected_hashrate_ths: float | None = None


@dataclass(frozen=True, slots=True)
class WorkMode:
    """One of a firmware's discrete work modes: its name, its power, its code."""

    name: str
    power_w: float
    code: int


@dataclass(frozen=True, slots=True)
class MinerReading:
    """One poll of a miner. Values a firmware does not report are None/empty.

    Sequences are tuples: a tuple of numbers or strings is no work for the
    garbage collector, and a large fleet keeps thousands of readings alive.
    """

    hashrate_ths: float | None
    power_w: float | None
    efficiency_j_th: float | None
    board_temps_c: tuple[float, ...]
    chip_temps_c: tuple[float, ...]
    fan_rpms: tuple[int, ...]
    uptime_s: int | None
    pool_url: str | None
    pool_user: str | None
    errors: tuple[str, ...]
    is_mining: bool
    power_target_w: float | None
    work_mode: str | None = None


def normalize_mac(mac: str) -> str:
    """Return a MAC as lower-case colon-separated pairs."""
    digits = re.sub(r"[^0-9a-f]", "", mac.lower())
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def valid_mac(value: object) -> str | None:
    """Return a reported MAC normalized, or None unless it is one (6 octets)."""
    if not isinstance(value, str):
        return None
    mac = normalize_mac(value)
    return mac if len(mac) == 17 and len(value) <= 64 else None


def valid_serial(value: object) -> str | None:
    """Return a reported serial number, or None unless it is a plain string."""
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        return None
    return value.strip()


@dataclass(frozen=True, slots=True)
class Identity:
    """What a miner says it is: serial number and MAC, each None if unknown."""

    serial: str | None = None
    mac: str | None = None

    @classmethod
    def from_unique_id(cls, unique_id: str) -> Identity:
        """Return the identity a unique id (a serial, or else a MAC) stands for."""
        if (mac := valid_mac(unique_id)) is not None and re.fullmatch(
            r"[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}", unique_id
        ):
            return cls(mac=mac)
        return cls(serial=unique_id)

    def conflicts(self, seen: Identity) -> bool:
        """Return True when `seen` is another miner: a known serial or MAC differs.

        Serials compare case-insensitively; a value either side does not know
        proves nothing either way.
        """
        if self.serial and seen.serial and self.serial.upper() != seen.serial.upper():
            return True
        return bool(self.mac and seen.mac and self.mac != seen.mac)

    def confirms(self, seen: Identity) -> bool:
        """Return True when `seen` shares a known serial or MAC with this one."""
        if self.serial and seen.serial and self.serial.upper() == seen.serial.upper():
            return True
        return bool(self.mac and seen.mac and self.mac == seen.mac)


class _Figures:
    """Checks a miner's figures against physics; logs each kind of lie once."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._logged: set[str] = set()

    def reject(self, name: str, value: object) -> None:
        """Log (once per figure) that the miner reported an impossible value."""
        if name not in self._logged:
            self._logged.add(name)
            _LOGGER.warning(
                "Miner %s reports an impossible %s (%.40r); taken as unknown",
                self.host,
                name,
                value,
            )

    def number(
        self, name: str, value: object, high: float, low: float = 0.0
    ) -> float | None:
        """Return a finite number within [low, high], or None (logged once)."""
        if value is None:
            return None
        try:
            number = math.nan if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
        except TypeError, ValueError, OverflowError:
            number = math.nan
        if low <= number <= high:
            return number
        self.reject(name, value)
        return None

    def numbers(
        self, name: str, values: Iterable[object], high: float, low: float = 0.0
    ) -> tuple[float, ...]:
        """Return the values that are within physics (the others are logged)."""
        checked = (self.number(name, v, high, low) for v in values if v is not None)
        return tuple(v for v in checked if v is not None)


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def _any_port_open(host: str, ports: Iterable[int]) -> bool:
    results = await asyncio.gather(*(_port_open(host, p) for p in ports))
    return any(results)


def _reports(miner: BaseMiner, option: DataOptions) -> bool:
    """Return True when the firmware backend has a real source for a value."""
    location = getattr(miner.data_locations, str(option), None)
    return bool(location is not None and location.kwargs)


def _apply_credentials(
    miner: BaseMiner, username: str | None, password: str | None
) -> None:
    """Set the web/RPC credentials where pyasic's miner object uses them."""
    for api in (miner.web, miner.rpc):
        if api is None:
            continue
        if password is not None and hasattr(api, "pwd"):
            api.pwd = password
        if username is not None and hasattr(api, "username"):
            api.username = username


async def _check_auth(miner: BaseMiner, password: str | None) -> None:
    """Raise AuthRequired/InvalidAuth when the miner's API rejects us.

    Antminer's digest-protected web API: pyasic's reply tells a rejected
    login (any non-200) from a transport error. Braiins OS+ and Whatsminer:
    their own checks (a login, a signed read).
    """
    if isinstance(miner, BTMinerV2):
        await _check_whatsminer_password(miner, password)
        return
    if isinstance(miner, BOSer):
        await _check_boser_login(miner, password)
        return
    if not isinstance(miner.web, AntminerModernWebAPI):
        return
    reply: dict[str, Any] = await miner.web.get_system_info()
    if reply.get("success") is not False:
        return
    if "HTTP error" in str(reply.get("message")):
        raise CannotConnect(f"{miner.ip}: web API unreachable")
    raise (InvalidAuth if password else AuthRequired)(f"{miner.ip}: web login refused")


def _boser_login_refused(err: BaseException) -> bool:
    """Braiins OS+ answers a refused `Login` UNAUTHENTICATED ("Bad credentials")."""
    return isinstance(err, GRPCError) and err.status == Status.UNAUTHENTICATED


async def _check_boser_login(miner: BaseMiner, password: str | None) -> None:
    """Raise AuthRequired/InvalidAuth when Braiins OS+ refuses the login.

    pyasic logs in (gRPC `AuthenticationService/Login`, the user and
    password of the web UI) before its first privileged call and turns a
    refusal into figures it does not know; this logs in the same way, first.
    """
    try:
        await miner.web._get_auth()
    except GRPCError as err:
        if _boser_login_refused(err):
            raise (InvalidAuth if password else AuthRequired)(
                f"{miner.ip}: the login is refused"
            ) from err
        raise InvalidResponse(f"{miner.ip}: login: {err.status.name}") from err
    except OSError as err:
        raise CannotConnect(f"{miner.ip}: the gRPC API does not answer") from err


async def _luxos_identity(miner: BaseMiner) -> tuple[object, object]:
    """Read MAC and serial from LuxOS `config` (pyasic 0.79 drops its MAC)."""
    try:
        reply: dict[str, Any] = await miner.rpc.config()
        config = reply["CONFIG"][0]
        return config.get("MACAddr"), config.get("SerialNumber")
    except APIError, LookupError, TypeError, AttributeError:
        return None, None


async def _preset_powers(miner: BaseMiner, figures: _Figures) -> list[float]:
    """Return the power of each preset (LuxOS profiles), if the firmware has them.

    A preset whose power is not within physics is left out; a profile list
    pyasic cannot parse at all (it raises its own validation errors) is none.
    """
    if not miner.supports_presets:
        return []
    try:
        config = await miner.get_config()
        presets = getattr(config.mining_mode, "available_presets", None) or []
        raw = [p.power for p in presets if p.power is not None]
    except APIError:
        return []
    except Exception as err:  # pyasic's validation of an odd profile list
        figures.reject("preset list", err)
        return []
    powers = (figures.number("preset power", p, MAX_POWER_W) for p in raw)
    return [p for p in powers if p]


async def _boser_power_range(miner: BaseMiner, figures: _Figures) -> list[float]:
    """Return the tuner's power target range (Braiins OS+ `GetConstraints`).

    pyasic does not read it; a target outside it is refused. None known: [].
    """
    try:
        reply = await miner.web.get_constraints()
        target = reply["tunerConstraints"]["powerTarget"]
        raw = [target["min"]["watt"], target["max"]["watt"]]
    except APIError, LookupError, TypeError:
        return []
    low, high = (figures.number("power target limit", p, MAX_POWER_W) for p in raw)
    return [low, high] if low and high and low <= high else []


# Canaan's nameplate power of each work mode (`ascset|0,workmode,set,<code>`),
# by the model pyasic names: 0 low (eco), 1 medium (standard), 2 high (super).
AVALON_WORK_MODES: dict[str, tuple[WorkMode, ...]] = {
    "Avalon Nano 3s": (
        WorkMode("low", 70.0, 0),
        WorkMode("medium", 100.0, 1),
        WorkMode("high", 140.0, 2),
    ),
    "Avalon Q Home": (
        WorkMode("low", 800.0, 0),
        WorkMode("medium", 1300.0, 1),
        WorkMode("high", 1674.0, 2),
    ),
}


# btminer's power modes (`set_low_power` / `set_normal_power` /
# `set_high_power`, shown as the summary's "Power Mode"), by the model pyasic
# names. Normal is MicroBT's nameplate power (M30S+: 100 TH/s at 34 J/TH);
# low and high are 80 % and 110 % of it, as HashGrid's simulator models them
# (no MicroBT document gives a mode's power).
WHATSMINER_POWER_MODES: dict[str, tuple[WorkMode, ...]] = {
    "M30S+ VE40": (
        WorkMode("low", 2720.0, 0),
        WorkMode("normal", 3400.0, 1),
        WorkMode("high", 3740.0, 2),
    ),
}
_WHATSMINER_MODE_COMMANDS = ("set_low_power", "set_normal_power", "set_high_power")


def _work_modes(miner: BaseMiner) -> tuple[WorkMode, ...]:
    """Return the firmware's discrete work modes, if HashGrid knows them."""
    if isinstance(miner, AvalonMiner):
        return AVALON_WORK_MODES.get(str(miner.raw_model), ())
    if isinstance(miner, BTMinerV2):
        return WHATSMINER_POWER_MODES.get(str(miner.raw_model), ())
    return ()


# btminer's answers when it cannot read what was signed with our password:
# the sign does not match, or the AES payload does not decrypt to JSON.
_WHATSMINER_TOKEN_ERRORS = ("check token err", "base64 decode error", "invalid json")


def _whatsminer_token_refused(err: BaseException) -> bool:
    """btminer could not read what was signed with our password."""
    return (
        isinstance(err, APIError)
        and str(err.message).lower() in _WHATSMINER_TOKEN_ERRORS
    )


async def _check_whatsminer_password(miner: BaseMiner, password: str | None) -> None:
    """Raise AuthRequired/InvalidAuth when btminer refuses our signed commands.

    A write is signed and encrypted with the API password: the miner answers
    a harmless read sent that way (`get_version`) unless it cannot read it.
    No state changes. With write access off (error 45) nothing is proved.
    """
    try:
        await miner.rpc.send_privileged_command("get_version")
    except APIError as err:
        if _whatsminer_token_refused(err):
            refused = (InvalidAuth if password else AuthRequired)(
                f"{miner.ip}: the API password is refused"
            )
            refused.password_only = True
            raise refused from err


async def _axeos_pauses(miner: BaseMiner) -> bool:
    """Return True when AxeOS pauses and resumes (2.14+ reports `miningPaused`)."""
    if not isinstance(miner, ESPMiner):
        return False
    try:
        info: dict[str, Any] = await miner.web.system_info()
    except APIError:
        return False
    return isinstance(info, dict) and "miningPaused" in info


def _unique_id(identity: Identity) -> str | None:
    if identity.serial:
        return identity.serial.upper()
    return identity.mac


async def _identify(
    host: str,
    username: str | None,
    password: str | None,
    session: aiohttp.ClientSession | None,
) -> tuple[BaseMiner, MinerInfo, Identity, transport.Delivery]:
    if not await _any_port_open(host, PROBE_PORTS):
        raise CannotConnect(f"{host}: nothing answers")
    await transport.probe_reply_sizes(host, PROBE_PORTS)
    miner: BaseMiner | None = await pyasic.get_miner(host)
    if miner is None:
        raise NotAMiner(f"{host}: answers, but not as a known miner")
    if miner.raw_model is None:
        raise UnsupportedMiner(
            f"{host}: {miner.make} on {miner.firmware}, model unknown"
        )
    delivery = transport.keep_alive(miner, session)
    try:
        info, identity = await _identify_miner(host, miner, username, password)
    except BaseException:
        await transport.aclose(miner)
        raise
    return miner, info, identity, delivery


async def _identify_miner(
    host: str, miner: BaseMiner, username: str | None, password: str | None
) -> tuple[MinerInfo, Identity]:
    _apply_credentials(miner, username, password)
    await _check_auth(miner, password)
    figures = _Figures(host)
    data: MinerData = await miner.get_data(include=_IDENTITY_DATA)
    mac, serial = valid_mac(data.mac), valid_serial(data.serial_number)
    if isinstance(miner, LUXMiner):
        lux_mac, lux_serial = await _luxos_identity(miner)
        mac, serial = mac or valid_mac(lux_mac), serial or valid_serial(lux_serial)
    for name, raw, value in (
        ("MAC", data.mac, mac),
        ("serial number", data.serial_number, serial),
    ):
        if raw is not None and value is None:
            figures.reject(name, raw)
    identity = Identity(serial=serial, mac=mac)
    unique_id = _unique_id(identity)
    if unique_id is None:
        raise InvalidResponse(f"{host}: reports neither serial number nor MAC")
    powers = await _preset_powers(miner, figures)
    if isinstance(miner, BOSer):
        powers = await _boser_power_range(miner, figures)
    sets_power = type(miner).set_power_limit is not BaseMiner.set_power_limit
    nominal = figures.number("power limit", data.wattage_limit, MAX_POWER_W)
    modes = _work_modes(miner)
    if isinstance(miner, AvalonMiner):
        # Power targets are work modes here (pyasic's own maps watts to a
        # "worklevel" no Canaan document names): none known, none offered.
        sets_power, powers = bool(modes), [m.power_w for m in modes]
    info = MinerInfo(
        host=host,
        make=str(miner.make),
        model=f"{miner.make} {miner.raw_model}",
        firmware=str(miner.firmware),
        mac=mac,
        serial=serial or mac,
        unique_id=unique_id,
        # Avalon: soft off/on; AxeOS 2.14+: pause/resume (HashGrid's own).
        can_stop=bool(miner.supports_shutdown)
        or isinstance(miner, AvalonMiner)
        or await _axeos_pauses(miner),
        can_set_power=sets_power and (bool(powers) or not miner.supports_presets),
        min_power_w=min(powers) if powers else None,
        max_power_w=max(powers) if powers else None,
        nominal_power_w=nominal or None,
        work_modes=modes,
        power_by_mode=isinstance(miner, AvalonMiner) and bool(modes),
        power_steps_w=tuple(sorted(set(powers)))
        if sets_power and (miner.supports_presets or isinstance(miner, AvalonMiner))
        else (),
        expected_hashrate_ths=_hashrate_ths(
            data.expected_hashrate, figures, "expected hashrate"
        )
        or None,
    )
    return info, identity


async def connect(
    host: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT,
    session: aiohttp.ClientSession | None = None,
    expect: Identity | None = None,
) -> MinerClient:
    """Identify the miner at `host` (once) and return a client for it.

    Its web requests go through `session` (kept-alive connections), or a
    session of its own, closed by `MinerClient.aclose`. With `expect`, a
    miner whose serial or MAC contradicts it raises `WrongMiner`.
    """
    try:
        async with asyncio.timeout(timeout_s):
            miner, info, identity, delivery = await _identify(
                host, username, password, session
            )
    except MinerError:
        raise
    except TimeoutError as err:
        raise CannotConnect(f"{host}: no answer within {timeout_s} s") from err
    except UnicodeDecodeError as err:  # pyasic's probe decodes replies strictly
        raise NotAMiner(f"{host}: answers with undecodable bytes") from err
    except APIError as err:
        raise InvalidResponse(f"{host}: {err}") from err
    except transport.ReplyTooLarge as err:
        raise InvalidResponse(f"{host}: {err}") from err
    except Exception as err:
        # pyasic's own parsing (validation errors, odd types): never past here.
        _LOGGER.debug("%s: identification failed", host, exc_info=True)
        raise InvalidResponse(f"{host}: {type(err).__name__}: {err}") from err
    client = MinerClient(
        miner, info, timeout_s=timeout_s, delivery=delivery, identity=identity
    )
    if expect is not None and (
        expect.conflicts(identity) or not expect.confirms(identity)
    ):
        await client.aclose()
        raise WrongMiner(f"{host}: another miner answers at this address")
    return client


async def identify(
    host: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT,
) -> MinerInfo:
    """Identify the miner at `host`; raise a `MinerError` saying why not."""
    client = await connect(
        host, username=username, password=password, timeout_s=timeout_s
    )
    await client.aclose()
    return client.info


def _hashrate_ths(
    rate: AlgoHashRateType | None, figures: _Figures, name: str = "hashrate"
) -> float | None:
    if rate is None:
        return None
    try:
        value: object = rate.into(SHA256Unit.TH)
    except Exception:  # a rate pyasic cannot convert
        value = rate
    return figures.number(name, value, MAX_HASHRATE_THS)


def _text(value: object) -> str | None:
    return str(value)[:256] if value is not None and value != "" else None


def _reading(
    miner: BaseMiner,
    data: MinerData,
    figures: _Figures,
    extra: dict[str, Any] | None = None,
) -> MinerReading:
    extra = extra or {}
    hashrate = _hashrate_ths(data.hashrate, figures)
    power = figures.number("power", data.wattage, MAX_POWER_W)
    pool = next(
        (p for p in data.pools if p.active), data.pools[0] if data.pools else None
    )
    if _reports(miner, DataOptions.IS_MINING):
        is_mining = bool(data.is_mining)
    elif "paused" in extra:  # Avalon's SoftOFF, AxeOS 2.14's miningPaused
        is_mining = not extra["paused"]
    else:  # LuxOS, Avalon, older AxeOS: pyasic does not say; hashing is mining.
        is_mining = bool(hashrate)
    uptime = figures.number("uptime", data.uptime, MAX_UPTIME_S)
    return MinerReading(
        hashrate_ths=hashrate,
        power_w=power,
        efficiency_j_th=power / hashrate if power is not None and hashrate else None,
        board_temps_c=figures.numbers(
            "board temperature",
            (b.temp for b in data.hashboards),
            MAX_TEMP_C,
            MIN_TEMP_C,
        ),
        chip_temps_c=figures.numbers(
            "chip temperature",
            (b.chip_temp for b in data.hashboards),
            MAX_TEMP_C,
            MIN_TEMP_C,
        ),
        fan_rpms=tuple(
            int(f)
            for f in figures.numbers(
                "fan speed", (f.speed for f in data.fans), MAX_FAN_RPM
            )
        ),
        uptime_s=None if uptime is None else int(uptime),
        pool_url=_text(pool.url) if pool is not None else None,
        pool_user=_text(pool.user) if pool is not None else None,
        errors=tuple(
            str(getattr(e, "error_message", None) or e.error_code)[:256]
            for e in data.errors
        ),
        is_mining=is_mining,
        power_target_w=_target(
            figures.number("power target", data.wattage_limit, MAX_POWER_W),
            extra.get("mode_power_w"),
        ),
        work_mode=extra.get("work_mode"),
    )


def _target(limit: float | None, mode_power: float | None) -> float | None:
    """The power a miner holds to: its limit, or its mode's power if lower."""
    if not limit:
        return mode_power
    return limit if mode_power is None else min(limit, mode_power)


def _status_msg(reply: dict[str, Any]) -> str:
    """Return a cgminer reply's STATUS message ("" when it has none)."""
    try:
        return str(reply["STATUS"][0]["Msg"])
    except LookupError, TypeError:
        return ""


def _boards_carry_hashrate(data: MinerData) -> bool:
    return any(board.hashrate is not None for board in data.hashboards)


def _is_empty(reading: MinerReading) -> bool:
    return (
        reading.hashrate_ths is None
        and reading.power_w is None
        and reading.uptime_s is None
        and not reading.fan_rpms
        and not reading.board_temps_c
    )


class MinerClient:
    """One identified miner: poll it and command it through pyasic."""

    def __init__(
        self,
        miner: BaseMiner,
        info: MinerInfo,
        *,
        timeout_s: float = DEFAULT_TIMEOUT,
        delivery: transport.Delivery | None = None,
        identity: Identity | None = None,
    ) -> None:
        """Wrap an identified pyasic miner object."""
        self._miner = miner
        self.info = info
        self.timeout_s = timeout_s
        self._delivery = delivery or transport.Delivery()
        # Who answered at identification; each full poll must agree.
        self.identity = identity or Identity(serial=info.serial, mac=info.mac)
        self._figures = _Figures(info.host)
        # LuxOS: pyasic drops the MAC of `config` (which a poll reads anyway):
        # read it, and the serial, from that reply (no extra request).
        self._lux_identity: tuple[object, object] = (None, None)
        if isinstance(miner, LUXMiner):
            miner._get_mac = self._luxos_mac
        # What pyasic reads but drops, taken from the replies it asks for
        # anyway (no extra request): Avalon's work mode, AxeOS's pause.
        self._extra: dict[str, Any] = {}
        if isinstance(miner, AvalonMiner):
            self._wrap(
                miner,
                "_get_wattage_limit",
                "rpc_estats",
                self._avalon_estats,
                miner.rpc.estats,
            )
        elif isinstance(miner, ESPMiner) and info.can_stop:
            self._wrap(miner, "_get_hashrate", "web_system_info", self._axeos_info)
        elif isinstance(miner, BTMinerV2) and info.work_modes:
            self._wrap(
                miner,
                "_get_wattage_limit",
                "rpc_summary",
                self._whatsminer_summary,
                miner.rpc.summary,
            )
        # What a state-only read asks for (see _STATE_DATA_FROM_BOARDS): the
        # full list until a full poll shows the boards carry the hashrate.
        self._state_data = (
            _STATE_DATA_WITHOUT_BOARDS if isinstance(miner, BOSer) else _STATE_DATA
        )
        # Credentials that stopped working after identification. pyasic
        # turns a refused login (Braiins OS+) or signed command (Whatsminer)
        # into a missing figure or a False: each refusal is counted here, and
        # the poll or command it happened in raises InvalidAuth instead.
        self._refusals = 0
        self._refused = False
        if isinstance(miner, BOSer):
            self._count_refusals(miner.web, "_get_auth", _boser_login_refused)
        elif isinstance(miner, BTMinerV2):
            self._count_refusals(
                miner.rpc,
                "send_privileged_command",
                _whatsminer_token_refused,
                session="token",
            )

    @property
    def host(self) -> str:
        """Return the miner's address."""
        return self.info.host

    @staticmethod
    def _wrap(
        miner: BaseMiner,
        name: str,
        argument: str,
        take: Callable[[dict[str, Any]], None],
        fetch: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        """Let `take` see the raw reply pyasic hands one of its data functions."""
        original = getattr(miner, name)

        async def wrapped(**kwargs: Any) -> Any:
            reply = kwargs.get(argument)
            if reply is None and fetch is not None:
                # pyasic got none (a one-command read): it would ask itself.
                with contextlib.suppress(APIError):
                    kwargs[argument] = reply = await fetch()
            if isinstance(reply, dict):
                take(reply)
            return await original(**kwargs)

        setattr(miner, name, wrapped)

    def _count_refusals(
        self,
        api: Any,
        name: str,
        refused: Callable[[BaseException], bool],
        *,
        session: str | None = None,
    ) -> None:
        """Count the calls of `api.name` that the miner refuses for our credentials.

        With `session` (the attribute where pyasic keeps one: btminer's token,
        kept 30 min, which a reboot or a new password voids on the miner), a
        refusal under a kept session is tried once more with a new one: only
        a refusal of a new session is one of the password.
        """
        original = getattr(api, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return await original(*args, **kwargs)
            except Exception as err:
                if not refused(err):
                    raise
                if session is None or getattr(api, session) is None:
                    self._refusals += 1
                    raise
            setattr(api, session, None)
            try:
                return await original(*args, **kwargs)
            except Exception as err:
                if refused(err):
                    self._refusals += 1
                raise

        setattr(api, name, counted)

    def _raise_if_refused(self, refusals: int) -> None:
        """Raise InvalidAuth when the miner refused our credentials since then."""
        if self._refusals == refusals:
            return
        self._refused = True
        err = InvalidAuth(f"{self.host}: the miner refuses HashGrid's credentials")
        err.password_only = isinstance(self._miner, BTMinerV2)
        raise err

    async def _recheck_credentials(self) -> None:
        """After a refusal, check again where a poll would not (Whatsminer).

        btminer's reads need no password: its signed harmless read says
        whether ours is still refused (counted like any refusal).
        """
        if self._refused and isinstance(self._miner, BTMinerV2):
            with contextlib.suppress(APIError):
                await self._miner.rpc.send_privileged_command("get_version")

    def _avalon_estats(self, estats: dict[str, Any]) -> None:
        """Keep the work mode and soft off state (Canaan's `MM ID0` block)."""
        try:
            mm = AvalonMiner.parse_estats(estats)["STATS"][0]["MM ID0"]
            code = int(mm["WORKMODE"])
            self._extra["paused"] = int(mm["SoftOFF"]) != 0
        except LookupError, TypeError, ValueError, AttributeError:
            return
        mode = next((m for m in self.info.work_modes if m.code == code), None)
        if mode is not None:
            self._extra["work_mode"] = mode.name

    def _whatsminer_summary(self, summary: dict[str, Any]) -> None:
        """Keep btminer's power mode (the summary's "Power Mode")."""
        try:
            name = str(summary["SUMMARY"][0]["Power Mode"]).lower()
        except LookupError, TypeError:
            return
        mode = next((m for m in self.info.work_modes if m.name == name), None)
        if mode is not None:
            self._extra["work_mode"] = mode.name
            self._extra["mode_power_w"] = mode.power_w

    def _axeos_info(self, info: dict[str, Any]) -> None:
        """Keep AxeOS's `miningPaused` (2.14+)."""
        if isinstance(paused := info.get("miningPaused"), bool):
            self._extra["paused"] = paused

    async def _luxos_mac(self, rpc_config: dict[str, Any] | None = None) -> None:
        """pyasic's LuxOS `_get_mac`: keep the config's MAC and serial aside."""
        try:
            config = rpc_config["CONFIG"][0]  # type: ignore[index]
            self._lux_identity = (config.get("MACAddr"), config.get("SerialNumber"))
        except LookupError, TypeError, AttributeError:
            self._lux_identity = (None, None)

    def _check_identity(self, data: MinerData) -> None:
        """Raise WrongMiner when the serial or MAC read now is another miner's."""
        mac, serial = data.mac, data.serial_number
        if isinstance(self._miner, LUXMiner):
            mac, serial = self._lux_identity
            self._lux_identity = (None, None)
        seen = Identity(serial=valid_serial(serial), mac=valid_mac(mac))
        if self.identity.conflicts(seen):
            raise WrongMiner(f"{self.host}: another miner answers at this address")

    async def aclose(self) -> None:
        """Close the miner's kept-alive connections."""
        await transport.aclose(self._miner)

    async def _raise_if_unreachable(self) -> None:
        """Raise CannotConnect unless the miner's main API port accepts us.

        pyasic turns a refused connection into an empty reply (or a LuxOS
        command that "succeeds"), so a request that went undelivered or came
        back empty is checked this way; one that worked needs no check.
        """
        miner = self._miner
        port = RPC_PORT if miner.rpc is not None else int(miner.web.port)
        if not await _port_open(self.host, port):
            raise CannotConnect(f"{self.host}: connection refused")

    async def poll(self, *, state_only: bool = False) -> MinerReading:
        """Read the miner once; CannotConnect on timeout, InvalidResponse on garbage.

        With `state_only`, read only what a command changes (mining, hashrate,
        power, target): fans, pool, uptime and errors then come back empty.
        """
        include = self._state_data if state_only else _POLL_DATA
        undelivered = self._delivery.undelivered
        refusals = self._refusals
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    await self._recheck_credentials()
                    data: MinerData = await self._miner.get_data(include=include)
                    if not state_only:
                        self._check_identity(data)
                        self._state_data = (
                            _STATE_DATA_WITHOUT_BOARDS
                            if isinstance(self._miner, BOSer)
                            else _STATE_DATA_FROM_BOARDS
                            if _boards_carry_hashrate(data)
                            else _STATE_DATA
                        )
                    elif data.hashrate is None and include is not _STATE_DATA:
                        # The boards no longer carry it: read the miner's total.
                        self._state_data = _STATE_DATA
                        data = await self._miner.get_data(include=_STATE_DATA)
                except (APIError, UnicodeDecodeError) as err:
                    self._raise_if_refused(refusals)
                    await self._raise_if_unreachable()
                    raise InvalidResponse(f"{self.host}: {err}") from err
                self._raise_if_refused(refusals)
                self._refused = False
                reading = _reading(self._miner, data, self._figures, self._extra)
                self._extra = {}
                if self._delivery.undelivered != undelivered or _is_empty(reading):
                    await self._raise_if_unreachable()
        except MinerError:
            raise
        except TimeoutError as err:
            raise CannotConnect(
                f"{self.host}: no answer within {self.timeout_s} s"
            ) from err
        except Exception as err:
            # A reply too large, or pyasic tripping over an odd one: this
            # miner's reading is unknown, nothing else.
            raise InvalidResponse(
                f"{self.host}: {type(err).__name__}: {str(err)[:200]}"
            ) from err
        if _is_empty(reading):
            raise InvalidResponse(f"{self.host}: the reply held no miner data")
        return reading

    async def _command(
        self, send: Callable[[], Awaitable[bool]], expect_mining: bool | None = None
    ) -> bool:
        """Send a command; retry once on a stale LuxOS session; verify if we can.

        InvalidAuth when the miner refused our credentials (nothing was done).
        """
        undelivered = self._delivery.undelivered
        refusals = self._refusals
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    ok = bool(await send())
                finally:
                    self._raise_if_refused(refusals)
                rpc = self._miner.rpc
                if not ok and isinstance(rpc, LUXMinerRPCAPI) and rpc.session_token:
                    rpc.session_token = None  # expired, e.g. by a reboot: log on again
                    ok = bool(await send())
                if ok and expect_mining is not None:
                    if _reports(self._miner, DataOptions.IS_MINING):
                        ok = await self._miner.is_mining() is expect_mining
                    elif isinstance(self._miner, (AvalonMiner, ESPMiner)):
                        # Soft off / pause: the firmware's own flag says.
                        reading = await self.poll(state_only=True)
                        ok = reading.is_mining is expect_mining
                if not ok or self._delivery.undelivered != undelivered:
                    await self._raise_if_unreachable()
        except TimeoutError as err:
            raise CannotConnect(
                f"{self.host}: no answer within {self.timeout_s} s"
            ) from err
        except APIError as err:
            if str(err).startswith("HTTP error"):
                raise CannotConnect(f"{self.host}: {err}") from err
            raise InvalidResponse(f"{self.host}: {err}") from err
        except MinerError:
            raise
        except Exception as err:
            raise InvalidResponse(
                f"{self.host}: {type(err).__name__}: {str(err)[:200]}"
            ) from err
        return ok

    async def stop(self, *, verify: bool = True) -> bool:
        """Stop mining (sleep); False if the miner cannot or did not.

        `verify=False` skips reading the state back (a caller that reads the
        miner back itself saves a round trip).
        """
        if not self.info.can_stop:
            return False
        return await self._command(
            self._stop_sender(stop=True), expect_mining=False if verify else None
        )

    async def resume(self, *, verify: bool = True) -> bool:
        """Resume mining; False if the miner cannot or did not (see `stop`)."""
        if not self.info.can_stop:
            return False
        return await self._command(
            self._stop_sender(stop=False), expect_mining=True if verify else None
        )

    def _stop_sender(self, *, stop: bool) -> Callable[[], Awaitable[bool]]:
        miner = self._miner
        if isinstance(miner, AvalonMiner):
            return lambda: self._avalon_soft(stop=stop)
        if isinstance(miner, ESPMiner):
            return lambda: self._axeos_pause(stop=stop)
        sender: Callable[[], Awaitable[bool]] = (
            miner.stop_mining if stop else miner.resume_mining
        )
        return sender

    async def _avalon_soft(self, *, stop: bool) -> bool:
        """Soft off/on now, by the miner's own clock.

        Canaan's `softoff|softon,1:<time>` acts at that time; pyasic asks for
        5 s from now by our clock, which a read-back would not see. The time
        is the miner's: the `When` of a reply it just sent.
        """
        rpc = self._miner.rpc
        try:
            reply: dict[str, Any] = await rpc.send_command("version")
            when = int(reply["STATUS"][0]["When"])
        except LookupError, TypeError, ValueError:  # nothing (refused) or odd
            return False
        option = "softoff" if stop else "softon"
        reply = await rpc.send_command("ascset", parameters=f"0,{option},1:{when}")
        return "success" in _status_msg(reply)

    async def _axeos_pause(self, *, stop: bool) -> bool:
        """AxeOS 2.14+: POST /api/system/pause or /resume (HashGrid's transport)."""
        command = "system/pause" if stop else "system/resume"
        try:
            await self._miner.web.send_command(command, post=True)
        except APIError as err:
            if "JSON decode error" in str(err):  # delivered (HTTP 200), not JSON
                return True
            raise
        return True

    async def set_power_target(self, watts: float) -> bool:
        """Set the power target.

        LuxOS: the highest profile at or below it; a firmware with work modes
        (Avalon): the highest mode at or below it (False below the lowest).
        """
        if not self.info.can_set_power:
            return False
        if self.info.power_by_mode:
            fitting = [m for m in self.info.work_modes if m.power_w <= watts + 0.5]
            if not fitting:
                return False
            return await self.set_work_mode(max(fitting, key=lambda m: m.power_w).name)
        # A step's power itself selects that step (int() would fall below it).
        target = round(watts) if self.info.power_steps_w else int(watts)
        return await self._command(lambda: self._miner.set_power_limit(target))

    async def set_work_mode(self, name: str) -> bool:
        """Switch to one of the firmware's work modes (see `MinerInfo.work_modes`)."""
        mode = next((m for m in self.info.work_modes if m.name == name), None)
        if mode is None:
            return False
        if isinstance(self._miner, BTMinerV2):
            command = _WHATSMINER_MODE_COMMANDS[mode.code]

            async def signed() -> bool:
                try:
                    reply = await self._miner.rpc.send_privileged_command(command)
                except APIError as err:
                    if _whatsminer_token_refused(err):
                        return False  # another password than ours: counted
                    raise
                return bool(reply.get("Msg") == "API command OK")

            return await self._command(signed)

        async def send() -> bool:
            reply: dict[str, Any] = await self._miner.rpc.send_command(
                "ascset", parameters=f"0,workmode,set,{mode.code}"
            )
            return _status_msg(reply) == "ASC 0 set OK"

        return await self._command(send)

    async def restart(self) -> bool:
        """Reboot the miner."""
        if isinstance(self._miner, ESPMiner):
            return await self._command(self._restart_espminer)
        return await self._command(self._miner.reboot)

    async def _restart_espminer(self) -> bool:
        # AxeOS answers the restart in plain text; pyasic's JSON decode then fails,
        # but the request was delivered and accepted (HTTP 200).
        try:
            await self._miner.web.restart()
        except APIError as err:
            if "JSON decode error" in str(err):
                return True
            raise
        return True
