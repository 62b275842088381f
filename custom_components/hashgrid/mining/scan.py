"""Find the miners on a subnet (pyasic's network scan), identified like any other."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from pyasic.network import MinerNetwork

from .client import MinerInfo, identify
from .errors import MinerError

_LOGGER = logging.getLogger(__name__)

# Scan at most this many addresses (a /22); larger subnets are refused.
MAX_SCAN_HOSTS = 1024
# The whole scan, finding and identifying, ends within this time.
SCAN_TIMEOUT_S = 60.0


async def _identify(host: str) -> MinerInfo | None:
    """Identify one miner found; any failure leaves that one address out."""
    try:
        return await identify(host)
    except MinerError as err:
        _LOGGER.debug("Scan: %s left out: %s", host, err)
    except Exception as err:  # one device never stops the scan of the others
        _LOGGER.warning("Scan: %s left out: %s: %s", host, type(err).__name__, err)
    return None


async def scan_subnet(
    subnet: str, *, timeout_s: float = SCAN_TIMEOUT_S
) -> list[MinerInfo]:
    """Return the miners found on `subnet`, sorted by address.

    Raise ValueError for a subnet that is not one (or too large to scan), and
    TimeoutError when the scan takes longer than `timeout_s` in all.
    """
    network = ipaddress.ip_network(subnet, strict=False)
    if network.num_addresses > MAX_SCAN_HOSTS:
        raise ValueError(f"{subnet} is larger than {MAX_SCAN_HOSTS} addresses")
    async with asyncio.timeout(timeout_s):
        found = await MinerNetwork.from_subnet(str(network)).scan()
        results = await asyncio.gather(*(_identify(str(miner.ip)) for miner in found))
    infos = [info for info in results if info is not None]
    return sorted(infos, key=lambda info: ipaddress.ip_address(info.host))
