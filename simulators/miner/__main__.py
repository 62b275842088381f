"""Run a fleet of simulated miners until interrupted.

    python -m simulators.miner --count 6 --base-address 127.0.1.1 \
        --firmware luxos,antminer,bitaxe --time-scale 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .fleet import FIRMWARES, running_fleet


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.miner",
        description="Simulated ASIC miners (LuxOS, Antminer stock, Bitaxe, Avalon Nano 3S "
        "and Q, Whatsminer, Braiins OS+) on "
        "loopback addresses, speaking the protocols pyasic uses: the JSON API on "
        "TCP 4028, HTTP on port 80 (binding port 80 needs root) and, for Braiins "
        "OS+, gRPC on 50051.",
    )
    parser.add_argument("--count", type=int, default=3, help="number of miners")
    parser.add_argument(
        "--base-address",
        default="127.0.1.1",
        help="address of the first miner; the others follow (default 127.0.1.1)",
    )
    parser.add_argument(
        "--firmware",
        default=",".join(FIRMWARES),
        help=f"comma-separated firmwares, cycled over the miners ({', '.join(FIRMWARES)})",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second (power ramps, uptime, energy)",
    )
    parser.add_argument(
        "--web-password",
        default="root",
        help="Antminer and Braiins OS+ web password (user root)",
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Run the fleet and print what runs where."""
    async with running_fleet(
        args.count,
        args.base_address,
        [f.strip() for f in args.firmware.split(",") if f.strip()],
        time_scale=args.time_scale,
        web_password=args.web_password,
    ) as fleet:
        for miner in fleet.miners:
            print(
                f"{miner.ip:15} {miner.firmware:9} {miner.model:18} "
                f"serial={miner.serial} mac={miner.mac}",
                flush=True,
            )
        print(f"{len(fleet)} miners running; Ctrl-C stops them.", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
