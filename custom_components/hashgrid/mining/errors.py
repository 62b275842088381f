"""What can go wrong talking to a miner, as distinct exceptions."""

from __future__ import annotations


class MinerError(Exception):
    """Base of every miner error."""


class CannotConnect(MinerError):
    """Nothing answers at the address, or it stopped answering (timeout)."""


class NotAMiner(MinerError):
    """Something answers at the address, but it is not a miner pyasic knows."""


class UnsupportedMiner(MinerError):
    """A miner's firmware is recognised, but pyasic has no class for the model."""


class AuthRequired(MinerError):
    """The miner wants credentials and none were given (or defaults failed)."""

    # Whatsminer: an API password, no user name (the account is always admin).
    password_only: bool = False


class InvalidAuth(MinerError):
    """The miner rejected the credentials given (or those it took before)."""

    # As for AuthRequired: the firmware takes a password only (Whatsminer).
    password_only: bool = False


class InvalidResponse(MinerError):
    """The miner answered with something malformed."""


class WrongMiner(MinerError):
    """Another miner answers at the address: its serial or MAC is not this one's."""
