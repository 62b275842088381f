"""Command line: ``python -m simulators.microgrid --host H --port P``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .model import ModelParams
from .server import running_microgrid


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.microgrid",
        description=(
            "Simulated DC microgrid over Modbus-TCP: SunSpec hybrid inverter "
            "(unit 1), SunSpec genset (unit 2), Victron GX (unit 100)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=int, default=5020, help="Modbus-TCP port (0: any)"
    )
    parser.add_argument(
        "--victron-port",
        type=int,
        default=None,
        help="also serve every unit (Victron GX on unit 100) on this port",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second (144: a day in 10 minutes)",
    )
    parser.add_argument("--seed", type=int, default=1, help="weather RNG seed")
    parser.add_argument(
        "--start-hour", type=float, default=12.0, help="simulated time of day at start"
    )
    parser.add_argument(
        "--generator-on", action="store_true", help="start with the genset running"
    )
    parser.add_argument(
        "--short-model",
        action="append",
        default=[],
        metavar="ID=L",
        help="declare the inverter's model ID only L registers long (repeatable)",
    )
    parser.add_argument(
        "--no-end-model",
        action="store_true",
        help="end the inverter's SunSpec map without an end model",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _lengths(values: list[str]) -> dict[int, int]:
    lengths: dict[int, int] = {}
    for value in values:
        model_id, _, length = value.partition("=")
        lengths[int(model_id)] = int(length)
    return lengths


async def _run(args: argparse.Namespace) -> None:
    params = ModelParams(seed=args.seed, start_time_of_day_s=args.start_hour * 3600)
    async with running_microgrid(
        args.host,
        args.port,
        victron_port=args.victron_port,
        time_scale=args.time_scale,
        params=params,
        inverter_lengths=_lengths(args.short_model),
        inverter_terminated=not args.no_end_model,
    ) as site:
        site.model.controls.generator_running = args.generator_on
        ports = f"port {site.port}"
        if site.victron_port is not None:
            ports += f", victron port {site.victron_port}"
        print(f"microgrid simulator on {site.host} {ports}", flush=True)
        while True:
            await asyncio.sleep(10)
            m = site.model
            logging.getLogger(__name__).info(
                "t=%.0fs pv=%.0fW load=%.0fW battery=%.0fW soc=%.1f%% grid=%.0fW",
                m.time_of_day_s,
                m.pv_w,
                m.load_w,
                m.battery_w,
                m.soc * 100,
                m.grid_w,
            )


def main() -> None:
    """Entry point."""
    args = _parser().parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()
