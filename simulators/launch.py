"""Start the demo (`scripts/develop`) as a process on free ports.

Used by the demo's tests and by `scripts/demo_watch.py`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import random
import socket
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port(low: int = 20000, high: int = 32000, *, pair: bool = False) -> int:
    """Return a free port (and the next one free too, when pair).

    Taken below Linux's ephemeral range (32768+), where outgoing connections
    may hold any port at any moment.
    """
    for _ in range(200):
        port = random.randrange(low, high)
        try:
            with socket.socket() as one, socket.socket() as two:
                one.bind(("127.0.0.1", port))
                if pair:
                    two.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


async def start_demo(
    config: Path, port: int, base_address: str, **kwargs: Any
) -> asyncio.subprocess.Process:
    """Start `scripts/develop` on free ports; its output is the process's stdout."""
    return await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "develop"),
        "--config",
        str(config),
        "--port",
        str(port),
        "--base-address",
        base_address,
        "--modbus-port",
        str(free_port(pair=True)),
        "--vtn-port",
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )
