"""The loopback network of this test run: 127.N.0.0/16, N chosen per run.

Simulated miners listen on fixed ports (80, 4028) of their own loopback address,
so two test runs on one machine (or two pytest-xdist workers) that used the same
addresses would take each other's miners. Every test therefore builds its
addresses with `addr("2.1")` (→ "127.N.2.1") instead of writing "127.0.2.1".

N is random per process, never 0 (127.0.x.x is the demo's), and claimed for the
whole run by a socket on 127.N.255.254, so a second run that draws the same N
sees it taken and draws again. `HASHGRID_TEST_NET=N` fixes it (N + the xdist
worker's number under pytest-xdist), e.g. to reproduce a failure.
"""

from __future__ import annotations

import errno
import os
import random
import re
import socket

import pytest_socket

ENV = "HASHGRID_TEST_NET"
_CLAIM = (255, 254, 4027)  # third octet, fourth octet, port: held for the run
# Addresses and ports the tests bind: a /16 where one is taken is no use.
_PROBES = ((2, 1, 80), (2, 1, 4028), (3, 251, 80))


def _worker() -> int:
    """This pytest-xdist worker's number (0 without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _bindable(sock: socket.socket, host: str, port: int) -> bool:
    try:
        sock.bind((host, port))
    except OSError as err:
        if err.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    return True


def _claim(second: int) -> socket.socket | None:
    """Hold 127.<second>.255.254 for this run; None if another run has it."""
    third, fourth, port = _CLAIM
    claim = pytest_socket._true_socket(socket.AF_INET, socket.SOCK_STREAM)
    if not _bindable(claim, f"127.{second}.{third}.{fourth}", port):
        claim.close()
        return None
    claim.listen(1)
    for third, fourth, port in _PROBES:
        with pytest_socket._true_socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if not _bindable(probe, f"127.{second}.{third}.{fourth}", port):
                claim.close()
                return None
    return claim


def _choose() -> tuple[int, socket.socket | None]:
    if (fixed := os.environ.get(ENV)) is not None:
        second = (int(fixed) + _worker()) % 256
        return second, _claim(second)
    rng = random.SystemRandom()
    for _ in range(64):
        second = rng.randrange(1, 255)
        if (claim := _claim(second)) is not None:
            return second, claim
    raise RuntimeError("no free 127.N.0.0/16 for the simulators after 64 draws")


SECOND, _HOLD = _choose()
PREFIX = f"127.{SECOND}."


def addr(tail: str) -> str:
    """This run's address (or network) for "127.0.<tail>": addr("2.1")."""
    return f"{PREFIX}{tail}"


_SERIAL = re.compile(rf"HGS{SECOND:02X}(?=[0-9A-F]{{4}}\d{{6}})")


def canonical(text: str) -> str:
    """Text with this run's network written as 127.0.x.x (for snapshots).

    Covers the forms an address takes in what HA shows: dotted, slugged into
    an entity id (127_n_2_1), in a simulated miner's MAC and serial.
    """
    text = text.replace(PREFIX, "127.0.")
    text = text.replace(f"127_{SECOND}_", "127_0_")
    text = text.replace(f"02:48:47:{SECOND:02x}:", "02:48:47:00:")
    text = text.replace(f"02:48:47:{SECOND:02X}:", "02:48:47:00:")
    return _SERIAL.sub("HGS00", text)
