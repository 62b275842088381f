"""Helpers of the tests that run the demo (`scripts/develop`) as a process."""

from __future__ import annotations

import asyncio

from simulators.launch import free_port, start_demo

__all__ = ["free_port", "start_demo", "wait_for_line"]


async def wait_for_line(stream: asyncio.StreamReader, text: str) -> str:
    """Read the demo's output until a line contains text; return all read."""
    seen: list[str] = []
    while line := await stream.readline():
        seen.append(line.decode())
        if text in seen[-1]:
            return "".join(seen)
    raise AssertionError("the demo exited:\n" + "".join(seen))
