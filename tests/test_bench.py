"""The mining benchmark: its monitor measures blocks, and it prints its figures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import sys
import time

import pytest

from tests.net import addr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_mining import LoopBlockMonitor  # noqa: E402


async def test_monitor_times_the_longest_callback_and_its_cpu() -> None:
    """A callback that holds the loop 60 ms (sleeping, not computing) is seen."""
    monitor = LoopBlockMonitor()
    monitor.start()
    await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_soon(time.sleep, 0.06)
    await asyncio.sleep(0.02)
    await monitor.stop()

    assert monitor.max_block_s >= 0.06
    # It slept: the block is not the loop's own work.
    assert monitor.max_block_cpu_s < monitor.max_block_s / 2
    assert monitor.max_block_outside_full_gc_s == monitor.max_block_s
    assert monitor.max_latency_s >= 0.05
    # Measuring stopped: the loop's own callbacks are no longer timed.
    asyncio.get_running_loop().call_soon(time.sleep, 0.1)
    await asyncio.sleep(0.01)
    assert monitor.max_block_s < 0.1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "miners", "firmwares"),
    [
        ((), 3, "luxos,antminer,bitaxe"),
        # A mixed fleet: one miner of every simulated firmware.
        (
            ("--mixed",),
            7,
            "luxos,antminer,bitaxe,avalon_nano3s,avalon_q,whatsminer,braiins",
        ),
    ],
    ids=["default", "mixed"],
)
async def test_bench_prints_its_figures_last(
    socket_enabled: None, options: tuple[str, ...], miners: int, firmwares: str
) -> None:
    """`scripts/bench mining`: the last line is one JSON object of the figures;
    every miner of the fleet was set up and confirmed stopped each round."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "scripts" / "bench_mining.py"),
        "--miners",
        str(miners),
        "--rounds",
        "2",
        "--base-address",
        addr("21.1"),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(180):
        out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()[-2000:]
    figures = json.loads(out.decode().strip().splitlines()[-1])

    assert figures["miners"] == miners
    assert figures["firmwares"] == firmwares
    assert figures["command_failures"] == 0
    # Every miner but the Bitaxe (AxeOS 2.6: no pause) confirmed stopped.
    assert figures["miners_that_can_stop"] == miners - 1
    assert figures["stopped_confirmed_min"] == miners - 1
    assert figures["unavailable_at_setup"] == 0
    for key in ("curtail_p50_s", "curtail_p95_s", "poll_s", "loop_block_max_ms"):
        assert figures[key] > 0, key
    assert figures["curtail_p50_s"] <= figures["curtail_p95_s"]
