"""Command line: ``python -m simulators.grid_signal --port P [--event-every S]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
import logging

from .vtn import SimulatedVtn, running_vtn


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.grid_signal",
        description=(
            "A real OpenADR 2.0b VTN (openleadr's OpenADRServer) that registers any "
            "VEN and can issue SIMPLE demand-response events periodically."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (0: any)")
    parser.add_argument(
        "--poll-interval", type=float, default=10, help="seconds between VEN polls"
    )
    parser.add_argument(
        "--event-every",
        type=float,
        default=None,
        metavar="S",
        help="issue a SIMPLE event to every registered VEN every S seconds",
    )
    parser.add_argument(
        "--event-duration", type=float, default=60, metavar="S", help="event length"
    )
    parser.add_argument(
        "--event-lead",
        type=float,
        default=15,
        metavar="S",
        help="seconds between issuing an event and its start",
    )
    parser.add_argument(
        "--level", type=int, default=2, choices=(1, 2, 3), help="SIMPLE level"
    )
    parser.add_argument(
        "--telemetry", action="store_true", help="request the VENs' power reports"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


async def _issue_events(vtn: SimulatedVtn, args: argparse.Namespace) -> None:
    log = logging.getLogger("simulators.grid_signal")
    while True:
        await asyncio.sleep(args.event_every)
        start = datetime.now(UTC) + timedelta(seconds=args.event_lead)
        for ven in list(vtn.ven_ids):
            event_id = vtn.add_event(
                ven,
                start=start,
                duration=timedelta(seconds=args.event_duration),
                level=args.level,
            )
            log.info(
                "Event %s for %s: level %s at %s for %ss",
                event_id,
                ven,
                args.level,
                start.isoformat(timespec="seconds"),
                args.event_duration,
            )
        if not vtn.ven_ids:
            log.info("No VEN registered yet; no event issued")


async def _run(args: argparse.Namespace) -> None:
    async with running_vtn(
        args.host,
        args.port,
        poll_interval=timedelta(seconds=args.poll_interval),
        request_telemetry=args.telemetry,
    ) as vtn:
        print(f"OpenADR VTN at {vtn.url}", flush=True)
        if args.event_every:
            await _issue_events(vtn, args)
        else:
            await asyncio.Event().wait()


def main() -> None:
    """Run the VTN until interrupted."""
    args = _parser().parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("openleadr").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()
