"""A fleet of simulated miners in one process, one loopback address each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
import ipaddress
import time

from .antminer import Antminer
from .avalon import AvalonNano3S, AvalonQ
from .bitaxe import Bitaxe
from .braiins import BraiinsOS
from .firmware import Firmware
from .luxos import LuxOS
from .miner import SimulatedMiner
from .model import (
    AVALON_NANO3S,
    AVALON_Q,
    BITAXE_GAMMA,
    S19J_PRO,
    S21,
    WHATSMINER_M30S_PLUS,
    MinerSpec,
)
from .whatsminer import Whatsminer

FIRMWARES: dict[str, type[Firmware]] = {
    "luxos": LuxOS,
    "antminer": Antminer,
    "bitaxe": Bitaxe,
    "avalon_nano3s": AvalonNano3S,
    "avalon_q": AvalonQ,
    "whatsminer": Whatsminer,
    "braiins": BraiinsOS,
}
DEFAULT_SPECS: dict[str, MinerSpec] = {
    "luxos": S19J_PRO,
    "antminer": S21,
    "bitaxe": BITAXE_GAMMA,
    "avalon_nano3s": AVALON_NANO3S,
    "avalon_q": AVALON_Q,
    "whatsminer": WHATSMINER_M30S_PLUS,
    "braiins": S19J_PRO,
}


def scaled_clock(time_scale: float = 1.0) -> Callable[[], float]:
    """Return a clock of simulated seconds running `time_scale` times real time."""
    start = time.monotonic()
    return lambda: (time.monotonic() - start) * time_scale


class Fleet:
    """The running miners; look one up by address with `fleet[ip]`."""

    def __init__(self, miners: list[SimulatedMiner]) -> None:
        """Hold the miners (not yet listening)."""
        self.miners = miners
        self._by_ip = {m.ip: m for m in miners}

    def __getitem__(self, ip: str) -> SimulatedMiner:
        """Return the miner at an address."""
        return self._by_ip[ip]

    def __len__(self) -> int:
        """Return the number of miners."""
        return len(self.miners)

    def by_firmware(self, firmware: str) -> list[SimulatedMiner]:
        """Return the miners running a firmware."""
        return [m for m in self.miners if m.firmware == firmware]

    async def swap_addresses(self, a: SimulatedMiner, b: SimulatedMiner) -> None:
        """Give two miners each other's address (as DHCP may, after a restart)."""
        ip_a, ip_b = a.ip, b.ip
        a.unreachable = b.unreachable = True
        await a.readdress(ip_b)
        await b.readdress(ip_a)
        a.unreachable = b.unreachable = False
        await asyncio.gather(a.settle(), b.settle())
        self._by_ip[ip_b], self._by_ip[ip_a] = a, b

    async def start(self) -> None:
        """Start every miner listening."""
        await asyncio.gather(*(m.start() for m in self.miners))

    async def stop(self) -> None:
        """Stop every miner and drop every connection."""
        await asyncio.gather(*(m.stop() for m in self.miners))


def build_fleet(
    count: int,
    base_address: str = "127.0.1.1",
    firmwares: Iterable[str] = ("luxos", "antminer", "bitaxe"),
    *,
    time_scale: float = 1.0,
    clock: Callable[[], float] | None = None,
    specs: Mapping[str, MinerSpec] | None = None,
    web_password: str = "root",
) -> Fleet:
    """Make `count` miners on consecutive addresses, cycling through firmwares."""
    names = list(firmwares)
    unknown = set(names) - FIRMWARES.keys()
    if unknown or not names:
        raise ValueError(
            f"unknown firmware(s) {sorted(unknown)}; know {list(FIRMWARES)}"
        )
    clock = clock or scaled_clock(time_scale)
    chosen = {**DEFAULT_SPECS, **(specs or {})}
    base = ipaddress.IPv4Address(base_address)
    if not base.is_loopback or not (base + max(count - 1, 0)).is_loopback:
        raise ValueError("simulated miners live on loopback addresses (127.0.0.0/8)")
    miners = []
    for index in range(count):
        firmware = names[index % len(names)]
        ip = base + index
        octets = ip.packed
        mac = "02:48:47:" + ":".join(f"{b:02x}" for b in octets[1:])
        serial = (
            None
            if firmware == "bitaxe"
            else f"HGS{octets[1]:02X}{octets[2]:02X}{octets[3]:02X}{index:06d}"
        )
        miners.append(
            SimulatedMiner(
                str(ip),
                FIRMWARES[firmware],
                chosen[firmware],
                clock,
                serial=serial,
                mac=mac,
                web_password=web_password,
            )
        )
    return Fleet(miners)


@asynccontextmanager
async def running_fleet(
    count: int,
    base_address: str = "127.0.1.1",
    firmwares: Iterable[str] = ("luxos", "antminer", "bitaxe"),
    *,
    time_scale: float = 1.0,
    clock: Callable[[], float] | None = None,
    specs: Mapping[str, MinerSpec] | None = None,
    web_password: str = "root",
) -> AsyncIterator[Fleet]:
    """Run a fleet for as long as the context lasts; stop it cleanly after."""
    fleet = build_fleet(
        count,
        base_address,
        firmwares,
        time_scale=time_scale,
        clock=clock,
        specs=specs,
        web_password=web_password,
    )
    try:
        await fleet.start()
        yield fleet
    finally:
        await fleet.stop()
