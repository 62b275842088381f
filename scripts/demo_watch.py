"""Watch the demo as a person would, and count when the miners leak.

Starts the demo (`scripts/develop`) on free ports with a fresh config folder,
logs in through Home Assistant's REST API and samples what HA shows every few
seconds: the mining site's power, effective budget and binding limit, the
hybrid inverter's PV, load, battery, grid and surplus, and whether a DR event
is active. One JSON object per sample goes to --samples; the last line printed
is one JSON object of figures.

What counts as a leak (mining from the battery or the grid):

    leak_w = min(mining_w, max(0, load_w - pv_w))

The demo's miners are part of the hybrid inverter's load, so load - PV is what
the battery and the grid give the site (PV + battery + grid = load, battery > 0
discharging here); the miners take a share of it as large as they can. A
sample *violates* when leak_w > --tolerance-w while no limit lets the miners
take it: the binding limit is neither manual nor none (a person chose that
budget), and the leak has lasted longer than --grace-s (the response time:
two polls and a command). For --min-limit-s the leak may be as large as
--min-limit-w more: the demo's solar automation holds its minimum limit (1 kW)
through its shortfall delay (30 s) and minimum on time (1 min) before it
stops the miners.
A second count: the miners draw more than the effective budget (beyond the
same tolerance, and longer than --budget-grace-s), which no automation allows.
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import suppress
from dataclasses import dataclass, field
import json
from pathlib import Path
import signal
import sys
import tempfile
import time
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from demo import HomeAssistantAPI  # noqa: E402

from simulators.launch import free_port, start_demo  # noqa: E402

SITE = "demo_mining_site"
#: The office heater's own site (the Avalon Nano 3S alone): not the main
#: site's; its draw is in the inverter's load (the house's, to the main site).
OFFICE_SITE = "office_site"
OFFICE = {
    "office_w": f"sensor.{OFFICE_SITE}_total_power",
    "room_c": "sensor.office_room_temperature",
}
HEATER = "climate.office_heater"
INVERTER = "hashgrid_sim_hg_hybrid_6k"
DR = "binary_sensor.demand_response_hashgrid_demo_dr_event_active"
POWER = {
    "mining": f"sensor.{SITE}_total_power",
    "budget": f"sensor.{SITE}_effective_budget",
    "pv": f"sensor.{INVERTER}_pv_power",
    "load": f"sensor.{INVERTER}_load_power",
    "battery": f"sensor.{INVERTER}_battery_power",
    "grid": f"sensor.{INVERTER}_grid_power",
    "surplus": f"sensor.{INVERTER}_surplus_power",
}
SOC = f"sensor.{INVERTER}_battery_state_of_charge"
BINDING = f"sensor.{SITE}_binding_limit"
SWITCH = f"switch.{SITE}_mining"
#: Binding limits under which a person chose the budget (any draw allowed).
CHOSEN = ("manual", "fleet")


def log(message: str) -> None:
    """One line on stderr, with the wall clock."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def watts(state: dict[str, Any] | None) -> float | None:
    """A power state in W (HA may show it in W, kW or MW)."""
    if state is None:
        return None
    try:
        value = float(state["state"])
    except TypeError, ValueError:
        return None
    unit = state["attributes"].get("unit_of_measurement")
    return value * {"kW": 1000.0, "MW": 1e6}.get(unit, 1.0)


def sample(states: dict[str, dict[str, Any]], t: float) -> dict[str, Any]:
    """One sample of what HA shows (powers in W; battery > 0 charging)."""
    row: dict[str, Any] = {"t": round(t, 1), "clock": time.strftime("%H:%M:%S")}
    for name, entity_id in POWER.items():
        value = watts(states.get(entity_id))
        row[name] = None if value is None else round(value, 1)
    binding = states.get(BINDING) or {"state": None, "attributes": {}}
    row["binding"] = binding["state"]
    row["limits"] = {
        source: limit.get("power_kw")
        for source, limit in (binding["attributes"].get("limits") or {}).items()
    }
    row["switch"] = (states.get(SWITCH) or {}).get("state")
    row["dr"] = (states.get(DR) or {}).get("state")
    soc = states.get(SOC)
    row["soc"] = None if soc is None else soc["state"]
    # The office: its site's draw (W), the room (°C), what holds its heater off.
    office_w = watts(states.get(OFFICE["office_w"]))
    row["office_w"] = None if office_w is None else round(office_w, 1)
    try:
        row["room_c"] = float(states[OFFICE["room_c"]]["state"])
    except KeyError, TypeError, ValueError:
        row["room_c"] = None
    heater = states.get(HEATER) or {"state": None, "attributes": {}}
    row["heater"] = [heater["state"], heater["attributes"].get("blocked_by")]
    # Each miner as HA shows it: mining (its switch; Bitaxes by hashrate),
    # power (W), hashrate (TH/s).
    row["miners"] = {
        entity_id.removeprefix("sensor.").removesuffix("_hashrate"): [
            (states.get(switch) or {}).get("state"),
            watts(states.get(entity_id.removesuffix("_hashrate") + "_power")),
            state["state"],
        ]
        for entity_id, state in sorted(states.items())
        if entity_id.startswith("sensor.")
        and entity_id.endswith("_hashrate")
        and not entity_id.startswith((f"sensor.{SITE}_", f"sensor.{OFFICE_SITE}_"))
        for switch in [
            "switch."
            + entity_id.removeprefix("sensor.").removesuffix("_hashrate")
            + "_mining"
        ]
    }
    m, pv, load = row["mining"], row["pv"], row["load"]
    bat, grid = row["battery"], row["grid"]
    if None not in (pv, load, bat, grid, m):
        # PV + grid = load + battery (charging); the miners are in the load.
        row["balance_w"] = round(pv + grid - load - bat, 1)
        row["house"] = round(load - m, 1)
        row["leak"] = round(min(m, max(0.0, load - pv)), 1)
    return row


@dataclass
class Figures:
    """What the watch counts."""

    tolerance_w: float
    grace_s: float
    budget_grace_s: float
    interval_s: float
    min_limit_w: float = 1000.0
    min_limit_s: float = 90.0
    samples: int = 0
    complete: int = 0
    mining_samples: int = 0
    leak_samples: int = 0
    violations: int = 0
    over_budget_samples: int = 0
    over_budget_violations: int = 0
    mined_kwh: float = 0.0
    leak_kwh: float = 0.0
    violation_kwh: float = 0.0
    max_abs_balance_w: float = 0.0
    bindings: dict[str, int] = field(default_factory=dict)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    _leak_since: float | None = None
    _over_since: float | None = None
    _episode: dict[str, Any] | None = None

    def add(self, row: dict[str, Any]) -> None:
        """Count one sample."""
        self.samples += 1
        binding = row["binding"] or "unknown"
        self.bindings[binding] = self.bindings.get(binding, 0) + 1
        if "leak" not in row:
            return
        self.complete += 1
        h = self.interval_s / 3600.0
        t, m, leak = row["t"], row["mining"], row["leak"]
        self.max_abs_balance_w = max(self.max_abs_balance_w, abs(row["balance_w"]))
        if m > self.tolerance_w:
            self.mining_samples += 1
        self.mined_kwh += m * h / 1000
        chosen = binding in CHOSEN
        if leak > self.tolerance_w:
            self.leak_samples += 1
            self.leak_kwh += leak * h / 1000
            if self._leak_since is None:
                self._leak_since = t
            lasted = t - self._leak_since
            allowed = self.min_limit_w if lasted <= self.min_limit_s else 0.0
            violates = (
                not chosen
                and lasted > self.grace_s
                and leak > self.tolerance_w + allowed
            )
            if violates:
                self.violations += 1
                self.violation_kwh += leak * h / 1000
            ep = self._episode
            if ep is None:
                ep = self._episode = {
                    "start": row["clock"],
                    "t": t,
                    "samples": 0,
                    "violating": 0,
                    "max_leak_w": 0.0,
                    "bindings": [],
                    "first": row,
                }
            ep["samples"] += 1
            ep["violating"] += violates
            ep["max_leak_w"] = max(ep["max_leak_w"], leak)
            ep["lasted_s"] = round(lasted + self.interval_s, 1)
            if binding not in ep["bindings"]:
                ep["bindings"].append(binding)
            ep["last"] = row
        else:
            self._leak_since = None
            if self._episode is not None:
                self.episodes.append(self._episode)
                self._episode = None
        budget = row["budget"]
        if budget is not None and m > budget + self.tolerance_w:
            self.over_budget_samples += 1
            if self._over_since is None:
                self._over_since = t
            if t - self._over_since > self.budget_grace_s:
                self.over_budget_violations += 1
        else:
            self._over_since = None

    def summary(self) -> dict[str, Any]:
        """The figures, as one JSON-able dict."""
        episodes = self.episodes + ([self._episode] if self._episode else [])
        return {
            "samples": self.samples,
            "complete_samples": self.complete,
            "mining_samples": self.mining_samples,
            "leak_samples": self.leak_samples,
            "violations": self.violations,
            "over_budget_samples": self.over_budget_samples,
            "over_budget_violations": self.over_budget_violations,
            "mined_kwh": round(self.mined_kwh, 3),
            "leak_kwh": round(self.leak_kwh, 3),
            "violation_kwh": round(self.violation_kwh, 3),
            "max_abs_balance_w": round(self.max_abs_balance_w, 1),
            "bindings": self.bindings,
            "leak_episodes": [
                {k: v for k, v in e.items() if k not in ("first", "last", "t")}
                for e in episodes
            ],
            "violating_episodes": [e for e in episodes if e["violating"]],
            "tolerance_w": self.tolerance_w,
            "grace_s": self.grace_s,
            "min_limit_w": self.min_limit_w,
            "min_limit_s": self.min_limit_s,
        }


def _figures(args: argparse.Namespace) -> Figures:
    return Figures(
        args.tolerance_w,
        args.grace_s,
        args.budget_grace_s,
        args.interval,
        args.min_limit_w,
        args.min_limit_s,
    )


async def _start(args: argparse.Namespace, config: Path) -> asyncio.subprocess.Process:
    return await start_demo(config, args.port, args.base_address)


async def _echo_until(stream: asyncio.StreamReader, text: str) -> None:
    while line := await stream.readline():
        log("demo: " + line.decode().rstrip())
        if text in line.decode():
            return
    raise RuntimeError("the demo exited before it was up")


async def watch(args: argparse.Namespace) -> dict[str, Any]:
    """Run the demo, sample it for --minutes, return the figures."""
    config = Path(args.config or tempfile.mkdtemp(prefix="hashgrid-watch-")) / "config"
    proc = await _start(args, config)
    assert proc.stdout is not None
    figures = _figures(args)
    out = open(args.samples, "w") if args.samples else None  # noqa: SIM115, ASYNC230
    try:
        async with asyncio.timeout(300):
            await _echo_until(proc.stdout, "Ctrl-C stops everything")
        # Keep reading the demo's output (its pipe must not fill).
        drain = asyncio.create_task(_echo_until(proc.stdout, "\0never"))
        url = f"http://127.0.0.1:{args.port}"
        async with aiohttp.ClientSession() as session:
            api = HomeAssistantAPI(session, url)
            await api.login()
            start = time.monotonic()
            log(
                f"watching {url} for {args.minutes} min, a sample every {args.interval} s"
            )
            next_at = start
            while (now := time.monotonic()) - start < args.minutes * 60:
                if drain.done():
                    raise RuntimeError("the demo exited while watched")
                try:
                    states = await api.states()
                except (aiohttp.ClientError, TimeoutError) as err:
                    log(f"states: {err!r}")
                    await api.login()
                    continue
                row = sample(states, now - start)
                figures.add(row)
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                if figures.samples % 12 == 1:
                    log(
                        f"{figures.samples} samples, {figures.leak_samples} leaking, "
                        f"{figures.violations} violations; now {row}"
                    )
                next_at += args.interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        drain.cancel()
    finally:
        if out:
            out.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            with suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 90)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return figures.summary()


def analyse(args: argparse.Namespace) -> dict[str, Any]:
    """Count the samples an earlier watch wrote (other tolerances, say)."""
    counted = _figures(args)
    for line in Path(args.analyse).read_text().splitlines():
        counted.add(json.loads(line))
    return counted.summary()


def main() -> int:
    """Parse the command line, watch, print the figures (the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--tolerance-w", type=float, default=200.0)
    parser.add_argument(
        "--grace-s",
        type=float,
        default=30.0,
        help="a leak shorter than this is the response time (polls, a command)",
    )
    parser.add_argument("--min-limit-w", type=float, default=1000.0)
    parser.add_argument("--min-limit-s", type=float, default=90.0)
    parser.add_argument("--budget-grace-s", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=0, help="HA's port (0: a free one)")
    parser.add_argument("--base-address", default="127.0.12.1")
    parser.add_argument(
        "--config", help="a folder for HA's config (default: a new one)"
    )
    parser.add_argument("--samples", help="write each sample to this file (JSON lines)")
    parser.add_argument(
        "--analyse",
        metavar="SAMPLES",
        help="count the samples of an earlier watch (JSON lines) instead of watching",
    )
    args = parser.parse_args()
    if args.analyse:
        figures = analyse(args)
    else:
        args.port = args.port or free_port()
        figures = asyncio.run(watch(args))
    print(json.dumps(figures))
    return (
        0
        if figures["violations"] == 0 and figures["over_budget_violations"] == 0
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
