"""Run a simulated Lightning network until interrupted.

    python -m simulators.lightning --rpc-socket /tmp/ln/lightning-rpc \
        --rest-port 3010 --neighbours 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile

from .sim import running_lightning


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.lightning",
        description="Simulated Core Lightning nodes (ours, a router and N "
        "neighbours) joined by channels. Our node serves lightningd's JSON-RPC on "
        "a unix socket (what pyln-client speaks) and CLNRest over HTTPS with a "
        "self-signed certificate and rune checking.",
    )
    parser.add_argument(
        "--rpc-socket",
        default=None,
        help="path of our node's lightning-rpc socket "
        "(default: <dir>/ours/regtest/lightning-rpc)",
    )
    parser.add_argument(
        "--rest-port",
        type=int,
        default=3010,
        help="CLNRest HTTPS port on 127.0.0.1 (0: any free port; -1: no REST)",
    )
    parser.add_argument(
        "--neighbours", type=int, default=2, help="number of neighbour nodes"
    )
    parser.add_argument(
        "--dir",
        default=None,
        help="directory for the other nodes' sockets and the certificate "
        "(default: a temporary directory)",
    )
    parser.add_argument("--network", default="regtest", help="network name")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Run the network and print what runs where."""
    with contextlib.ExitStack() as stack:
        directory = args.dir or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="hashgrid-ln-")
        )
        async with running_lightning(
            directory,
            neighbours=args.neighbours,
            rest_port=None if args.rest_port < 0 else args.rest_port,
            rpc_socket=args.rpc_socket,
            network=args.network,
        ) as net:
            print(f"our node   {net.node_id}", flush=True)
            print(f"rpc socket {net.rpc_socket}", flush=True)
            if args.rest_port >= 0:
                print(f"rest       {net.rest_url}", flush=True)
                print(f"cert       {net.ca_cert_path}", flush=True)
                print(f"sha256     {net.cert_fingerprint}", flush=True)
                print(f"rune       {net.rune}", flush=True)
            for n in net.neighbours:
                print(f"{n.name:12} {n.node_id} socket={n.rpc_socket}", flush=True)
                print(f"{'':12} offer={n.offer}", flush=True)
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
