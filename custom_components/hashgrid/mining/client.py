"""The pyasic adapter: identify a miner once, then poll and command it.

Plain asyncio, no Home Assistant. pyasic swallows most transport errors (a
refused connection reads as an empty reply, a LuxOS command "succeeds"), so the
client checks reachability itself and turns pyasic's outcomes into distinct
exceptions from `errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
import re
from typing import Any

import aiohttp
import pyasic
from pyasic import APIError
from pyasic.data import MinerData
from pyasic.device.algorithm import SHA256Unit
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
    NotAMiner,
    UnsupportedMiner,
)

DEFAULT_TIMEOUT = 10.0
# Ports pyasic probes: web UI (HTTP, HTTPS) and the cgminer-style API.
PROBE_PORTS = (80, 443, 4028)
RPC_PORT = 4028

_IDENTITY_DATA = [
    DataOptions.MAC,
    DataOptions.SERIAL_NUMBER,
    DataOptions.FW_VERSION,
    DataOptions.WATTAGE_LIMIT,
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
_POLL_DATA = [
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


def normalize_mac(mac: str) -> str:
    """Return a MAC as lower-case colon-separated pairs."""
    digits = re.sub(r"[^0-9a-f]", "", mac.lower())
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


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
    """Raise AuthRequired/InvalidAuth when the web API rejects us.

    Only Antminer's digest-protected web API lets pyasic's reply tell a
    rejected login (any non-200) from a transport error.
    """
    if not isinstance(miner.web, AntminerModernWebAPI):
        return
    reply: dict[str, Any] = await miner.web.get_system_info()
    if reply.get("success") is not False:
        return
    if "HTTP error" in str(reply.get("message")):
        raise CannotConnect(f"{miner.ip}: web API unreachable")
    raise (InvalidAuth if password else AuthRequired)(f"{miner.ip}: web login refused")


async def _luxos_identity(miner: BaseMiner) -> tuple[str | None, str | None]:
    """Read MAC and serial from LuxOS `config` (pyasic 0.79 drops its MAC)."""
    try:
        reply: dict[str, Any] = await miner.rpc.config()
        config = reply["CONFIG"][0]
    except APIError, LookupError, TypeError:
        return None, None
    return config.get("MACAddr"), config.get("SerialNumber")


async def _preset_powers(miner: BaseMiner) -> list[float]:
    """Return the power of each preset (LuxOS profiles), if the firmware has them."""
    if not miner.supports_presets:
        return []
    try:
        config = await miner.get_config()
    except APIError, LookupError, TypeError:
        return []
    presets = getattr(config.mining_mode, "available_presets", None) or []
    return [float(p.power) for p in presets if p.power]


def _unique_id(serial: str | None, mac: str | None) -> str | None:
    if serial and serial.strip():
        return serial.strip().upper()
    if mac:
        return normalize_mac(mac)
    return None


async def _identify(
    host: str,
    username: str | None,
    password: str | None,
    session: aiohttp.ClientSession | None,
) -> tuple[BaseMiner, MinerInfo, transport.Delivery]:
    if not await _any_port_open(host, PROBE_PORTS):
        raise CannotConnect(f"{host}: nothing answers")
    miner: BaseMiner | None = await pyasic.get_miner(host)
    if miner is None:
        raise NotAMiner(f"{host}: answers, but not as a known miner")
    if miner.raw_model is None:
        raise UnsupportedMiner(
            f"{host}: {miner.make} on {miner.firmware}, model unknown"
        )
    delivery = transport.keep_alive(miner, session)
    try:
        info = await _identify_miner(host, miner, username, password)
    except BaseException:
        await transport.aclose(miner)
        raise
    return miner, info, delivery


async def _identify_miner(
    host: str, miner: BaseMiner, username: str | None, password: str | None
) -> MinerInfo:
    _apply_credentials(miner, username, password)
    await _check_auth(miner, password)
    data: MinerData = await miner.get_data(include=_IDENTITY_DATA)
    mac, serial = data.mac, data.serial_number
    if isinstance(miner, LUXMiner):
        lux_mac, lux_serial = await _luxos_identity(miner)
        mac, serial = mac or lux_mac, serial or lux_serial
    mac = normalize_mac(mac) if mac else None
    unique_id = _unique_id(serial, mac)
    if unique_id is None:
        raise InvalidResponse(f"{host}: reports neither serial number nor MAC")
    powers = await _preset_powers(miner)
    sets_power = type(miner).set_power_limit is not BaseMiner.set_power_limit
    return MinerInfo(
        host=host,
        make=str(miner.make),
        model=f"{miner.make} {miner.raw_model}",
        firmware=str(miner.firmware),
        mac=mac,
        serial=serial or mac,
        unique_id=unique_id,
        can_stop=bool(miner.supports_shutdown),
        can_set_power=sets_power and (bool(powers) or not miner.supports_presets),
        min_power_w=min(powers) if powers else None,
        max_power_w=max(powers) if powers else None,
        nominal_power_w=float(data.wattage_limit) if data.wattage_limit else None,
    )


async def connect(
    host: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT,
    session: aiohttp.ClientSession | None = None,
) -> MinerClient:
    """Identify the miner at `host` (once) and return a client for it.

    Its web requests go through `session` (kept-alive connections), or a
    session of its own, closed by `MinerClient.aclose`.
    """
    try:
        async with asyncio.timeout(timeout_s):
            miner, info, delivery = await _identify(host, username, password, session)
    except TimeoutError as err:
        raise CannotConnect(f"{host}: no answer within {timeout_s} s") from err
    except UnicodeDecodeError as err:  # pyasic's probe decodes replies strictly
        raise NotAMiner(f"{host}: answers with undecodable bytes") from err
    except APIError as err:
        raise InvalidResponse(f"{host}: {err}") from err
    return MinerClient(miner, info, timeout_s=timeout_s, delivery=delivery)


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


def _reading(miner: BaseMiner, data: MinerData) -> MinerReading:
    hashrate = (
        float(data.hashrate.into(SHA256Unit.TH)) if data.hashrate is not None else None
    )
    power = float(data.wattage) if data.wattage is not None else None
    pool = next(
        (p for p in data.pools if p.active), data.pools[0] if data.pools else None
    )
    if _reports(miner, DataOptions.IS_MINING):
        is_mining = bool(data.is_mining)
    else:  # LuxOS, Bitaxe: pyasic does not say; hashing is mining.
        is_mining = bool(hashrate)
    return MinerReading(
        hashrate_ths=hashrate,
        power_w=power,
        efficiency_j_th=power / hashrate if power is not None and hashrate else None,
        board_temps_c=tuple(
            float(b.temp) for b in data.hashboards if b.temp is not None
        ),
        chip_temps_c=tuple(
            float(b.chip_temp) for b in data.hashboards if b.chip_temp is not None
        ),
        fan_rpms=tuple(int(f.speed) for f in data.fans if f.speed is not None),
        uptime_s=data.uptime,
        pool_url=str(pool.url) if pool is not None and pool.url else None,
        pool_user=pool.user if pool is not None else None,
        errors=tuple(
            str(getattr(e, "error_message", None) or e.error_code) for e in data.errors
        ),
        is_mining=is_mining,
        power_target_w=float(data.wattage_limit) if data.wattage_limit else None,
    )


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
    ) -> None:
        """Wrap an identified pyasic miner object."""
        self._miner = miner
        self.info = info
        self.timeout_s = timeout_s
        self._delivery = delivery or transport.Delivery()
        # What a state-only read asks for (see _STATE_DATA_FROM_BOARDS): the
        # full list until a full poll shows the boards carry the hashrate.
        self._state_data = _STATE_DATA

    @property
    def host(self) -> str:
        """Return the miner's address."""
        return self.info.host

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
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    data: MinerData = await self._miner.get_data(include=include)
                    if not state_only:
                        self._state_data = (
                            _STATE_DATA_FROM_BOARDS
                            if _boards_carry_hashrate(data)
                            else _STATE_DATA
                        )
                    elif data.hashrate is None and include is not _STATE_DATA:
                        # The boards no longer carry it: read the miner's total.
                        self._state_data = _STATE_DATA
                        data = await self._miner.get_data(include=_STATE_DATA)
                except (APIError, UnicodeDecodeError) as err:
                    await self._raise_if_unreachable()
                    raise InvalidResponse(f"{self.host}: {err}") from err
                reading = _reading(self._miner, data)
                if self._delivery.undelivered != undelivered or _is_empty(reading):
                    await self._raise_if_unreachable()
        except TimeoutError as err:
            raise CannotConnect(
                f"{self.host}: no answer within {self.timeout_s} s"
            ) from err
        if _is_empty(reading):
            raise InvalidResponse(f"{self.host}: the reply held no miner data")
        return reading

    async def _command(
        self, send: Callable[[], Awaitable[bool]], expect_mining: bool | None = None
    ) -> bool:
        """Send a command; retry once on a stale LuxOS session; verify if we can."""
        undelivered = self._delivery.undelivered
        try:
            async with asyncio.timeout(self.timeout_s):
                ok = bool(await send())
                rpc = self._miner.rpc
                if not ok and isinstance(rpc, LUXMinerRPCAPI) and rpc.session_token:
                    rpc.session_token = None  # expired, e.g. by a reboot: log on again
                    ok = bool(await send())
                if (
                    ok
                    and expect_mining is not None
                    and _reports(self._miner, DataOptions.IS_MINING)
                ):
                    ok = await self._miner.is_mining() is expect_mining
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
        return ok

    async def stop(self, *, verify: bool = True) -> bool:
        """Stop mining (sleep); False if the miner cannot or did not.

        `verify=False` skips reading the state back (a caller that reads the
        miner back itself saves a round trip).
        """
        if not self.info.can_stop:
            return False
        return await self._command(
            self._miner.stop_mining, expect_mining=False if verify else None
        )

    async def resume(self, *, verify: bool = True) -> bool:
        """Resume mining; False if the miner cannot or did not (see `stop`)."""
        if not self.info.can_stop:
            return False
        return await self._command(
            self._miner.resume_mining, expect_mining=True if verify else None
        )

    async def set_power_target(self, watts: float) -> bool:
        """Set the power target (LuxOS: the highest profile at or below it)."""
        if not self.info.can_set_power:
            return False
        return await self._command(lambda: self._miner.set_power_limit(int(watts)))

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
