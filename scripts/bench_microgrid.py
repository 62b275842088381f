"""Benchmark: full SunSpec read cycles of the simulated inverter (all models).

    .venv/bin/python scripts/bench_microgrid.py [--cycles 200]

Prints p50/p90 cycle time (ms) and Modbus requests per cycle; the last line is
one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.hashgrid.microgrid.sunspec import SunSpecDevice
from custom_components.hashgrid.microgrid.transport import ModbusTransport
from custom_components.hashgrid.microgrid.victron import VictronGX
from simulators.microgrid import running_microgrid


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[idx]


async def _bench(cycles: int) -> dict[str, float | int]:
    async with (
        running_microgrid(time_scale=144.0, tick_interval=0.5) as site,
        ModbusTransport("127.0.0.1", site.port, timeout=2.0) as transport,
    ):
        device = SunSpecDevice(transport, 1)
        t0 = time.perf_counter()
        models = await device.scan()
        scan_ms = (time.perf_counter() - t0) * 1000
        scan_requests = transport.requests
        registers = sum(m.length + 2 for m in models)
        times: list[float] = []
        requests: list[int] = []
        for _ in range(cycles):
            before = transport.requests
            t0 = time.perf_counter()
            snapshot = await device.read_snapshot()
            times.append((time.perf_counter() - t0) * 1000)
            requests.append(transport.requests - before)
        assert snapshot.battery_soc_pct is not None
        gx = VictronGX(transport)
        gx_times: list[float] = []
        for _ in range(max(1, cycles // 4)):
            t0 = time.perf_counter()
            await gx.read_snapshot()
            gx_times.append((time.perf_counter() - t0) * 1000)
    return {
        "cycles": cycles,
        "models": len(models),
        "registers_per_cycle": registers,
        "requests_per_cycle": max(requests),
        "min_requests_possible": math.ceil(registers / 125),
        "cycle_p50_ms": round(statistics.median(times), 3),
        "p90_ms": round(_pct(times, 0.9), 3),
        "max_ms": round(max(times), 3),
        "scan_ms": round(scan_ms, 3),
        "scan_requests": scan_requests,
        "victron_p50_ms": round(statistics.median(gx_times), 3),
        "victron_requests_per_cycle": gx.last_read_requests,
        "connects": transport.connects,
    }


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    figures = asyncio.run(_bench(args.cycles))
    print(
        f"SunSpec full read cycle ({figures['models']} models, "
        f"{figures['registers_per_cycle']} registers): "
        f"p50 {figures['cycle_p50_ms']} ms, p90 {figures['p90_ms']} ms, "
        f"{figures['requests_per_cycle']} requests/cycle "
        f"(minimum possible {figures['min_requests_possible']})"
    )
    print(
        f"scan: {figures['scan_ms']} ms, {figures['scan_requests']} requests; "
        f"Victron GX cycle p50 {figures['victron_p50_ms']} ms, "
        f"{figures['victron_requests_per_cycle']} requests"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
