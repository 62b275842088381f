"""Benchmark: curtail a fleet of N simulated miners from a real Home Assistant.

The miners run in their own process (`python -m simulators.miner`), so Home
Assistant's event loop is measured alone. Home Assistant is the test harness's
(`pytest_homeassistant_custom_component.common.async_test_home_assistant`), with
a mining site holding every miner. Measured over the rounds:

- curtail: from `hashgrid.set_power_budget` (0 kW) to every miner confirmed
  stopped (the action returns only then; `stopped_confirmed_min` is the
  fewest miners read back stopped in a round, of `miners_that_can_stop`);
  the fleet is resumed between rounds;
- poll: one full fleet poll (the coordinator's refresh);
- loop block: the longest one callback held the event loop, timed as
  asyncio's slow-callback monitoring (debug mode) times it, and the longest
  CPU time one took; beside them, how many full garbage collections ran
  meanwhile, the longest, and the longest block during which none ran (a
  full collection walks the whole Home Assistant heap, whoever's objects set
  it off); and how late a 5 ms ticker ran at most.

The fleet's firmwares are cycled over the miners: LuxOS, Antminer stock and
Bitaxe by default (`--firmware` names others); `--mixed` runs every simulated
firmware (LuxOS, Antminer stock, Bitaxe/AxeOS, Avalon Nano 3S and Q,
Whatsminer, Braiins OS+), each identified and commanded its own way.

The simulated fleet runs at a lower CPU priority (`nice`): a thousand real
miners bring their own processors, and on a 2-core machine a simulator at the
same priority would take the cores Home Assistant's loop is measured on.

The last line printed is one JSON object of the figures. BENCH_DEBUG=1 turns
on asyncio's debug mode, which logs every step that holds the loop over 0.2 s.
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import suppress
import gc
import ipaddress
import json
import math
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


class LoopBlockMonitor:
    """Measures how long the event loop is held, as asyncio's debug mode does.

    asyncio's slow-callback monitoring (debug mode) times every callback the
    loop runs (`Handle._run`) and warns about those over
    `slow_callback_duration`; this does the same without the rest of debug
    mode's overhead, and keeps the longest: its wall time, and the longest
    CPU time one callback took (the loop's own work, without the time the
    process waited for a core). Beside them:

    - the garbage collector (`gc.callbacks`): how many full collections ran,
      the longest, and the longest callback during which none ran;
    - a 5 ms ticker: the most it was late (the latency a timer saw; it spans
      all the callbacks of one or two loop turns, so it is at least the
      longest callback).
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.max_block_s = 0.0
        self.max_block_cpu_s = 0.0
        self.max_block_outside_full_gc_s = 0.0
        self.max_latency_s = 0.0
        self.full_gcs = 0
        self.max_full_gc_s = 0.0
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._handle_run: Any = None
        self._measuring = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.full_gcs += 1
            self.max_full_gc_s = max(
                self.max_full_gc_s, time.perf_counter() - self._gc_started
            )

    def _record(self, block: float, cpu: float, *, full_gc: bool) -> None:
        self.max_block_s = max(self.max_block_s, block)
        self.max_block_cpu_s = max(self.max_block_cpu_s, cpu)
        if not full_gc:
            self.max_block_outside_full_gc_s = max(
                self.max_block_outside_full_gc_s, block
            )

    def _timed(self, run: Any) -> Any:
        """Wrap `Handle._run`: time each callback as debug mode does."""
        monitor = self

        def _run(handle: asyncio.Handle) -> None:
            full_gcs = monitor.full_gcs
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                run(handle)
            finally:
                # The step that stops measuring goes on to tear down: not counted.
                if monitor._measuring:
                    monitor._record(
                        time.perf_counter() - started,
                        time.thread_time() - cpu_started,
                        full_gc=monitor.full_gcs != full_gcs,
                    )

        return _run

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            late = loop.time() - start - self.interval_s
            self.max_latency_s = max(self.max_latency_s, late)

    def start(self) -> None:
        """Start measuring."""
        self._measuring = True
        gc.callbacks.append(self._on_gc)
        self._handle_run = asyncio.Handle._run  # type: ignore[attr-defined]
        asyncio.Handle._run = self._timed(self._handle_run)  # type: ignore[attr-defined]
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        """Stop measuring."""
        self._measuring = False
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        asyncio.Handle._run = self._handle_run  # type: ignore[attr-defined]
        gc.callbacks.remove(self._on_gc)


# The fleet by default, and every firmware the simulator has (`--mixed`).
DEFAULT_FIRMWARES = ("luxos", "antminer", "bitaxe")
MIXED_FIRMWARES = (
    "luxos",
    "antminer",
    "bitaxe",
    "avalon_nano3s",
    "avalon_q",
    "whatsminer",
    "braiins",
)


async def start_fleet(
    count: int, base: str, firmwares: tuple[str, ...] = DEFAULT_FIRMWARES
) -> asyncio.subprocess.Process:
    """Start the simulated fleet in its own process; wait until it serves."""
    proc = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        "10",
        sys.executable,
        "-m",
        "simulators.miner",
        "--count",
        str(count),
        "--base-address",
        base,
        "--time-scale",
        "100",
        "--firmware",
        ",".join(firmwares),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        while line := await proc.stdout.readline():
            if b"miners running" in line:
                return proc
    raise RuntimeError("the miner simulator did not start")


async def run(
    count: int,
    rounds: int,
    base: str,
    gc_freeze: bool,
    firmwares: tuple[str, ...] = DEFAULT_FIRMWARES,
) -> dict[str, Any]:
    """Set up the site in HA, then measure."""
    from homeassistant import loader
    from homeassistant.config_entries import ConfigSubentryData
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    from custom_components.hashgrid.const import DOMAIN
    from custom_components.hashgrid.mining.client import MinerInfo, identify

    fleet = await start_fleet(count, base, firmwares)
    first = ipaddress.ip_address(base)
    hosts = [str(first + i) for i in range(count)]
    try:
        with tempfile.TemporaryDirectory() as config_dir:
            (Path(config_dir) / "custom_components").mkdir()
            (Path(config_dir) / "custom_components" / "hashgrid").symlink_to(
                ROOT / "custom_components" / "hashgrid"
            )
            async with async_test_home_assistant(config_dir=config_dir) as hass:
                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
                # The harness runs asyncio in debug mode; production does not.
                asyncio.get_running_loop().set_debug(
                    bool(os.environ.get("BENCH_DEBUG"))
                )
                asyncio.get_running_loop().slow_callback_duration = 0.2
                limit = asyncio.Semaphore(50)

                async def _identify(host: str) -> MinerInfo:
                    async with limit:
                        return await identify(host)

                infos = await asyncio.gather(*(_identify(h) for h in hosts))
                stoppable = sum(info.can_stop for info in infos)
                entry = MockConfigEntry(
                    domain=DOMAIN,
                    title="Bench",
                    data={"kind": "mining_site", "name": "Bench"},
                    subentries_data=[
                        ConfigSubentryData(
                            data={"host": info.host, "priority": i % 100},
                            subentry_type="miner",
                            title=info.host,
                            unique_id=info.unique_id,
                        )
                        for i, info in enumerate(infos)
                    ],
                )
                entry.add_to_hass(hass)
                started = time.perf_counter()
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
                setup_s = time.perf_counter() - started
                coordinator = entry.runtime_data.coordinator
                unavailable = coordinator.data.unavailable
                if gc_freeze:
                    gc.collect()
                    gc.freeze()
                monitor = LoopBlockMonitor()
                monitor.start()
                curtail_s: list[float] = []
                poll_s: list[float] = []
                failures = 0
                confirmed: list[int] = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    await coordinator.async_refresh()
                    poll_s.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    response = await hass.services.async_call(
                        DOMAIN,
                        "set_power_budget",
                        {"config_entry_id": entry.entry_id, "power_kw": 0},
                        blocking=True,
                        return_response=True,
                    )
                    curtail_s.append(time.perf_counter() - started)
                    failures += sum(not m["success"] for m in response["miners"])
                    confirmed.append(
                        sum(
                            m["success"] and m["action"] == "stop"
                            for m in response["miners"]
                        )
                    )
                    await hass.services.async_call(
                        DOMAIN,
                        "resume",
                        {"config_entry_id": entry.entry_id, "stagger": 0},
                        blocking=True,
                    )
                await monitor.stop()
                await hass.config_entries.async_unload(entry.entry_id)
    finally:
        fleet.terminate()
        await fleet.wait()
    return {
        "miners": count,
        "firmwares": ",".join(firmwares),
        "rounds": rounds,
        "setup_s": round(setup_s, 3),
        "unavailable_at_setup": unavailable,
        "curtail_p50_s": round(statistics.median(curtail_s), 4),
        "curtail_p95_s": round(percentile(curtail_s, 95), 4),
        "poll_s": round(statistics.median(poll_s), 4),
        "poll_p95_s": round(percentile(poll_s, 95), 4),
        "loop_block_max_ms": round(monitor.max_block_s * 1000, 1),
        "loop_block_max_cpu_ms": round(monitor.max_block_cpu_s * 1000, 1),
        "loop_block_max_ms_outside_full_gc": round(
            monitor.max_block_outside_full_gc_s * 1000, 1
        ),
        "loop_latency_max_ms": round(monitor.max_latency_s * 1000, 1),
        "gc_full_collections": monitor.full_gcs,
        "gc_full_collection_max_ms": round(monitor.max_full_gc_s * 1000, 1),
        "command_failures": failures,
        # Miners whose firmware stops (a Bitaxe on AxeOS before 2.14 does not),
        # and the fewest of them read back stopped in a round.
        "miners_that_can_stop": stoppable,
        "stopped_confirmed_min": min(confirmed),
        "gc_freeze": gc_freeze,
    }


def main() -> None:
    """Parse the command line, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--base-address", default="127.0.20.1")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="move everything set up so far out of the garbage collector's "
        "reach before measuring (shows how much of the loop block is GC)",
    )
    firmware = parser.add_mutually_exclusive_group()
    firmware.add_argument(
        "--firmware",
        default=",".join(DEFAULT_FIRMWARES),
        help="comma-separated firmwares, cycled over the miners "
        f"(default {','.join(DEFAULT_FIRMWARES)})",
    )
    firmware.add_argument(
        "--mixed",
        action="store_true",
        help=f"a mixed fleet of every simulated firmware ({','.join(MIXED_FIRMWARES)})",
    )
    args = parser.parse_args()
    firmwares = (
        MIXED_FIRMWARES
        if args.mixed
        else tuple(f.strip() for f in args.firmware.split(",") if f.strip())
    )
    figures = asyncio.run(
        run(args.miners, args.rounds, args.base_address, args.gc_freeze, firmwares)
    )
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
