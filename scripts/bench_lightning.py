"""Benchmark: settle a neighbour over Lightning, many times, from a real Home Assistant.

The simulated network (``simulators.lightning``: our node, a router, neighbours)
runs in this process. Home Assistant is the test harness's
(``pytest_homeassistant_custom_component.common.async_test_home_assistant``) with a
``lightning_node`` entry on our node (its unix socket through ``pyln-client``, or
CLNRest over HTTPS) and one neighbour we pay by its BOLT12 offer at a fixed price.
Each round the neighbour's meter sensor advances, then ``hashgrid.settle_neighbour``
runs the whole settlement path: the ledger decides what is owed and saves a pending
record (HA's ``Store``, on disk), ``fetchinvoice`` + ``xpay`` pay it, the record is
marked paid and saved again.

Measured over the rounds: the action's latency (call to response) and the
throughput (settlements per second of wall time). At the end the totals are
checked exactly: the neighbour received what the ledger paid, which is the exact
amount owed rounded down to the sat, every payment was made once, and the carry
holds the rest. The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from decimal import ROUND_FLOOR, Decimal
import json
import math
from pathlib import Path
import random
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METER = "sensor.bench_neighbour_energy"
PRICE = Decimal("123.4")  # sats/kWh: most settlements leave a fraction to carry
START_KWH = Decimal("1000")


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def set_meter(hass: Any, kwh: Decimal) -> None:
    """The neighbour's energy meter (a total_increasing kWh sensor)."""
    hass.states.async_set(
        METER,
        str(kwh),
        {
            "unit_of_measurement": "kWh",
            "device_class": "energy",
            "state_class": "total_increasing",
        },
    )


async def run(rounds: int, transport: str, seed: int) -> dict[str, Any]:
    """Set up the node entry in HA, then settle ``rounds`` times and check."""
    from homeassistant import loader
    from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
    from homeassistant.setup import async_setup_component
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    from custom_components.hashgrid.const import DOMAIN
    from custom_components.hashgrid.lightning.ledger import State
    from simulators.lightning import running_lightning

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="hashgrid-bench-ln-") as tmp:
        config_dir = Path(tmp) / "config"
        (config_dir / "custom_components").mkdir(parents=True)
        (config_dir / "custom_components" / "hashgrid").symlink_to(
            ROOT / "custom_components" / "hashgrid"
        )
        async with (
            running_lightning(
                Path(tmp) / "ln",
                neighbours=1,
                rest_port=0 if transport == "rest" else None,
            ) as net,
            async_test_home_assistant(config_dir=str(config_dir)) as hass,
        ):
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
            # The harness runs asyncio in debug mode; production does not.
            asyncio.get_running_loop().set_debug(False)
            # HA's shared aiohttp session (CLNRest) resolves names through
            # zeroconf, which needs the network integration, as in a real HA.
            assert await async_setup_component(hass, "network", {})
            neighbour = net.neighbours[0]
            node: dict[str, Any] = (
                {"transport": "socket", "socket_path": net.rpc_socket}
                if transport == "socket"
                else {
                    "transport": "rest",
                    "url": net.rest_url,
                    "rune": net.rune,
                    "fingerprint": net.cert_fingerprint,
                }
            )
            entry = MockConfigEntry(
                domain=DOMAIN,
                title="HASHGRID",
                data={"kind": "lightning_node", **node},
                unique_id=net.node_id,
                subentries_data=[
                    ConfigSubentryData(
                        data={
                            "name": "Alice",
                            "direction": "we_pay",
                            "offer": neighbour.offer,
                            "pay_method": "offer",
                            "meter_entity": METER,
                            "price_sats_per_kwh": float(PRICE),
                            "price_mode": "fixed",
                            "min_settlement_sats": 1,
                        },
                        subentry_type="neighbour",
                        title="Alice",
                        unique_id=f"we_pay:{neighbour.node_id}",
                    )
                ],
            )
            entry.add_to_hass(hass)
            meter = START_KWH
            set_meter(hass, meter)
            started = time.perf_counter()
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            setup_s = time.perf_counter() - started
            assert entry.state is ConfigEntryState.LOADED, entry.state

            async def settle() -> dict[str, Any]:
                response = await hass.services.async_call(
                    DOMAIN,
                    "settle_neighbour",
                    {"config_entry_id": entry.entry_id, "neighbour": "Alice"},
                    blocking=True,
                    return_response=True,
                )
                assert isinstance(response, dict)
                return response

            first = await settle()
            assert first.get("reason") == "baseline_set", first

            latencies: list[float] = []
            amounts = 0
            wall = time.perf_counter()
            for _ in range(rounds):
                # 0.01-5 kWh: >= 1 sat every time, ~0.3 M sat in 1000 rounds
                # (the router can forward 1 M sat to the neighbour).
                meter += Decimal(rng.randint(10, 5000)) / 1000
                set_meter(hass, meter)
                started = time.perf_counter()
                out = await settle()
                latencies.append(time.perf_counter() - started)
                assert out["status"] == "paid", out
                amounts += out["amount_sat"]
            wall_s = time.perf_counter() - wall

            # The totals, exactly.
            settler = entry.runtime_data.settler
            sid = next(iter(entry.subentries))
            account = settler.ledger.account(sid)
            exact_msat = (meter - START_KWH) * PRICE * 1000
            floor_msat = int((exact_msat / 1000).to_integral_value(ROUND_FLOOR)) * 1000
            received_msat = net.received_msat(neighbour)
            labels = Counter(net.paid_labels())
            paid = [r for r in settler.ledger.records if r.state is State.PAID]
            assert settler.ledger.pending() == []
            assert account.meter_last_settled_kwh == meter
            assert account.paid_msat == floor_msat, (account.paid_msat, floor_msat)
            assert received_msat == floor_msat, (received_msat, floor_msat)
            assert amounts * 1000 == floor_msat, (amounts, floor_msat)
            assert account.paid_msat + account.carry_msat == exact_msat
            assert 0 <= account.carry_msat < 1000
            assert len(labels) == rounds, labels
            assert set(labels.values()) == {1}, labels  # each paid once
            assert {r.key for r in paid} == set(labels)
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
    return {
        "transport": transport,
        "settlements": rounds,
        "setup_s": round(setup_s, 3),
        "settle_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "settle_p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "settle_max_ms": round(max(latencies) * 1000, 2),
        "settlements_per_s": round(rounds / wall_s, 1),
        "paid_sat": floor_msat // 1000,
        "fees_msat": account.fees_msat,
        "totals_exact": True,
    }


def main() -> None:
    """Parse the command line, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settlements", type=int, default=300)
    parser.add_argument(
        "--transport",
        choices=("socket", "rest"),
        default="socket",
        help="how HA reaches our node: lightningd's unix socket or CLNRest",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.settlements <= 2000:
        parser.error("--settlements must be 1-2000 (the channel's liquidity)")
    figures = asyncio.run(run(args.settlements, args.transport, args.seed))
    for key, value in figures.items():
        print(f"{key:>18}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
