"""openleadr's VTN in its own process, so that building a huge message costs the
test's (Home Assistant's) process nothing: ``python -m tests.grid_signal.bulk_vtn
PORT VEN``. Each line ``N`` on stdin adds N events for the VEN (one message on its
next poll); it answers ``added N`` once done."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import sys

from simulators.grid_signal import running_vtn


async def _main(port: int, ven: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    async with running_vtn(port=port, poll_interval=timedelta(hours=1)) as vtn:
        print("ready", flush=True)
        while line := await reader.readline():
            count = int(line)
            now = datetime.now(UTC).replace(microsecond=0)
            for n in range(count):
                vtn.add_event(
                    ven,
                    start=now + timedelta(minutes=10 + n),
                    duration=timedelta(minutes=30),
                    level=1 + n % 3,
                )
            print(f"added {count}", flush=True)


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), sys.argv[2]))
