"""Find the miners on a subnet (pyasic's network scan), identified like any other."""

from __future__ import annotations

import asyncio
import ipaddress

from pyasic.network import MinerNetwork

from .client import MinerInfo, identify
from .errors import MinerError

# Scan at most this many addresses (a /22); larger subnets are refused.
MAX_SCAN_HOSTS = 1024
SCAN_TIMEOUT_S = 60.0


async def scan_subnet(subnet: str) -> list[MinerInfo]:
    """Return the miners found on `subnet`, sorted by address."""
    network = ipaddress.ip_network(subnet, strict=False)
    if network.num_addresses > MAX_SCAN_HOSTS:
        raise ValueError(f"{subnet} is larger than {MAX_SCAN_HOSTS} addresses")
    async with asyncio.timeout(SCAN_TIMEOUT_S):
        found = await MinerNetwork.from_subnet(str(network)).scan()
    results = await asyncio.gather(
        *(identify(str(miner.ip)) for miner in found), return_exceptions=True
    )
    infos = [info for info in results if isinstance(info, MinerInfo)]
    for error in results:
        if isinstance(error, BaseException) and not isinstance(error, MinerError):
            raise error
    return sorted(infos, key=lambda info: ipaddress.ip_address(info.host))
