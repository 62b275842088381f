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


class DeviceFailure(ModbusDeviceError):
    """Exception 0x04: the device failed while answering (server failure)."""


class DeviceBusy(ModbusDeviceError):
    """Exception 0x06: the device is busy with a long command; try again later."""


class GatewayPathUnavailable(ModbusDeviceError):
    """Exception 0x0A: the gateway has no path to this unit id."""


class GatewayTargetFailed(ModbusDeviceError):
    """Exception 0x0B: the gateway's target device (this unit id) did not answer."""


#: Exception classes by Modbus exception code (others: :class:`ModbusDeviceError`).
EXCEPTION_CLASSES: dict[int, type[ModbusDeviceError]] = {
    0x02: IllegalAddress,
    0x04: DeviceFailure,
    0x06: DeviceBusy,
    0x0A: GatewayPathUnavailable,
    0x0B: GatewayTargetFailed,
}


class MalformedReply(MicrogridError):
    """The device sent bytes that are not a Modbus reply (the connection is closed)."""


class InvalidValue(MicrogridError):
    """The device sent a value that cannot be right (or a map that is not SunSpec)."""


class MalformedMap(InvalidValue):
    """The SunSpec model chain cannot be right (runs past 65535, never ends ...)."""


class ChainChanged(InvalidValue):
    """The SunSpec model chain no longer ends where the scan found its end."""


class OutOfRange(MicrogridError, ValueError):
    """A value to write is outside what the device accepts; nothing was written."""
