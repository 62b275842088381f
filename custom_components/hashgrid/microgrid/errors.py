"""Errors of the microgrid readers (no Home Assistant imports)."""

from __future__ import annotations


class MicrogridError(Exception):
    """Base class of every microgrid reader error."""


class CannotConnect(MicrogridError):
    """The TCP connection could not be opened, or was lost (reset) mid-request."""


class ModbusTimeout(MicrogridError):
    """The device did not answer a request in time."""


class ModbusDeviceError(MicrogridError):
    """The device answered with a Modbus exception other than illegal address."""

    def __init__(self, message: str, code: int) -> None:
        """Keep the Modbus exception code."""
        super().__init__(message)
        self.code = code


class IllegalAddress(ModbusDeviceError):
    """The device answered exception 0x02: the register range does not exist."""


class InvalidValue(MicrogridError):
    """The device sent a value that cannot be right (or a map that is not SunSpec)."""


class OutOfRange(MicrogridError, ValueError):
    """A value to write is outside what the device accepts; nothing was written."""
