"""Tell what answers at host:port/unit: a SunSpec device or a Victron GX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import InvalidValue, ModbusDeviceError
from .sunspec import SunSpecDevice
from .transport import ModbusTransport
from .victron import VictronGX


@dataclass(frozen=True, slots=True)
class DetectedDevice:
    """The result of :func:`detect`."""

    kind: Literal["sunspec", "victron"]
    host: str
    port: int
    unit_id: int
    manufacturer: str | None
    model: str | None
    serial: str | None
    version: str | None = None
    #: SunSpec model ids in chain order (empty for a Victron GX).
    models: tuple[int, ...] = ()
    base_address: int | None = None


async def detect_on(transport: ModbusTransport, unit_id: int) -> DetectedDevice:
    """Detect through an open transport (see :func:`detect`)."""
    sunspec = SunSpecDevice(transport, unit_id)
    try:
        models = await sunspec.scan()
    except InvalidValue, ModbusDeviceError:
        pass
    else:
        identity = await sunspec.read_identity()
        return DetectedDevice(
            kind="sunspec",
            host=transport.host,
            port=transport.port,
            unit_id=unit_id,
            manufacturer=identity.manufacturer,
            model=identity.model,
            serial=identity.serial,
            version=identity.version,
            models=tuple(m.model_id for m in models),
            base_address=sunspec.base_address,
        )
    gx = VictronGX(transport, unit_id)
    try:
        serial = await gx.read_serial()
        snapshot = await gx.read_snapshot()
    except ModbusDeviceError as err:
        raise InvalidValue(
            f"unit {unit_id} at {transport.host}:{transport.port} is neither "
            "SunSpec nor a Victron GX"
        ) from err
    if snapshot.battery_voltage_v is None and snapshot.battery_soc_pct is None:
        raise InvalidValue(f"unit {unit_id} does not look like a Victron GX")
    return DetectedDevice(
        kind="victron",
        host=transport.host,
        port=transport.port,
        unit_id=unit_id,
        manufacturer="Victron Energy",
        model="GX",
        serial=serial,
    )


async def detect(
    host: str, port: int = 502, unit_id: int = 1, *, request_timeout: float = 3.0
) -> DetectedDevice:
    """Open a connection, find out what ``unit_id`` is, close.

    Raises :class:`~.errors.CannotConnect` / :class:`~.errors.ModbusTimeout`
    when nothing answers, :class:`~.errors.InvalidValue` when something answers
    that is neither SunSpec nor a Victron GX.
    """
    async with ModbusTransport(host, port, timeout=request_timeout) as transport:
        return await detect_on(transport, unit_id)
