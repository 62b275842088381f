"""Tell what answers at host:port/unit: a SunSpec device or a Victron GX."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from .errors import (
    GatewayPathUnavailable,
    IllegalAddress,
    InvalidValue,
    MalformedMap,
    ModbusTimeout,
)
from .sunspec import SunSpecDevice
from .transport import ModbusTransport
from .victron import VICTRON_SYSTEM_UNIT, VictronGX

#: Unit ids tried, in order, when the one entered answers "gateway path
#: unavailable" (what a GX answers at a unit id without a D-Bus service; its
#: system service is unit 100, Victron's register list).
FALLBACK_UNITS: tuple[int, ...] = (VICTRON_SYSTEM_UNIT,)


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


#: SunSpec models of a device with a DC side or a grid meter; a SunSpec device
#: with none of them (only AC output, e.g. models 1 + 103) is taken as a genset.
_INVERTER_MODELS = frozenset({124, 160, 203, 714, 802})


def is_generator(model_ids: tuple[int, ...]) -> bool:
    """Whether a SunSpec device with these models is a genset (AC output only)."""
    return bool(model_ids) and not set(model_ids) & _INVERTER_MODELS


def device_name(device: DetectedDevice) -> str:
    """The product, as a person names it: "Victron GX", "<make> <model>".

    Never an address (it changes, and nobody says it).
    """
    if device.kind == "victron":
        return "Victron GX"
    product = " ".join(p for p in (device.manufacturer, device.model) if p)
    if product:
        return product
    return "SunSpec generator" if is_generator(device.models) else "SunSpec inverter"


def entry_title(device: DetectedDevice) -> str:
    """The entry's title: what kind of device it is, and which one.

    "Victron GX <serial>" (its VRM portal id), "SunSpec inverter <make>
    <model>", "SunSpec generator <make> <model>" (the serial when the device
    names no product).
    """
    if device.kind == "victron":
        return f"Victron GX {device.serial}" if device.serial else "Victron GX"
    kind = "SunSpec generator" if is_generator(device.models) else "SunSpec inverter"
    product = " ".join(p for p in (device.manufacturer, device.model) if p)
    which = product or device.serial
    return f"{kind} {which}" if which else kind


def _is_gx_serial(serial: str | None) -> bool:
    """A GX's register 800: its VRM portal id, printable ASCII (its MAC in hex)."""
    return bool(serial) and all(32 < ord(c) < 127 for c in serial or "")


async def detect_on(transport: ModbusTransport, unit_id: int) -> DetectedDevice:
    """Detect through an open transport (see :func:`detect`)."""
    sunspec = SunSpecDevice(transport, unit_id)
    try:
        models = await sunspec.scan()
    except MalformedMap:
        raise  # SunSpec (it has the marker), but its chain cannot be read
    except InvalidValue, IllegalAddress:
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
        await gx.read_firmware()
        snapshot = await gx.read_snapshot()
    except IllegalAddress as err:
        raise InvalidValue(
            f"unit {unit_id} at {transport.host}:{transport.port} is neither "
            "SunSpec nor a Victron GX"
        ) from err
    # A GX serves what it lacks as 0 (a GX without a battery has no battery
    # values): it is told by its serial (VRM id) and its firmware version.
    if not _is_gx_serial(serial) or (
        gx.firmware is None and snapshot.consumption_w is None
    ):
        raise InvalidValue(f"unit {unit_id} does not look like a Victron GX")
    return DetectedDevice(
        kind="victron",
        host=transport.host,
        port=transport.port,
        unit_id=unit_id,
        manufacturer="Victron Energy",
        model="GX",
        serial=serial,
        version=gx.firmware_text,
    )


async def detect_units(transport: ModbusTransport, unit_id: int) -> DetectedDevice:
    """:func:`detect_on` at ``unit_id``; then a GX's unit 100 if that fails.

    On a GX every unit id but those of its services answers "gateway path
    unavailable" (unit 1 among them), so the GX's system unit is tried before
    giving up; the first error stands when no fallback answers either.
    """
    try:
        return await detect_on(transport, unit_id)
    except GatewayPathUnavailable:
        if unit_id in FALLBACK_UNITS:
            raise
        for fallback in FALLBACK_UNITS:
            try:
                found = await detect_on(transport, fallback)
            except GatewayPathUnavailable, InvalidValue, IllegalAddress:
                continue
            if found.kind == "victron":
                return found
        raise


async def detect(
    host: str,
    port: int = 502,
    unit_id: int = 1,
    *,
    request_timeout: float = 3.0,
    deadline: float = 60.0,
) -> DetectedDevice:
    """Open a connection, find out what ``unit_id`` is, close.

    Raises :class:`~.errors.CannotConnect` / :class:`~.errors.ModbusTimeout`
    when nothing answers, :class:`~.errors.InvalidValue` when something answers
    that is neither SunSpec nor a Victron GX (:class:`~.errors.MalformedMap`:
    SunSpec, with a model chain that cannot be right), the device's own
    exception (:class:`~.errors.DeviceBusy`, :class:`~.errors.DeviceFailure`,
    the gateway's :class:`~.errors.GatewayPathUnavailable` /
    :class:`~.errors.GatewayTargetFailed`) when it refuses to say, and
    :class:`~.errors.MalformedReply` when it answers what is not Modbus.
    Detection as a whole ends after ``deadline`` seconds
    (:class:`~.errors.ModbusTimeout`), whatever the device's chain holds.
    """
    async with ModbusTransport(host, port, timeout=request_timeout) as transport:
        try:
            async with asyncio.timeout(deadline):
                return await detect_units(transport, unit_id)
        except TimeoutError as err:
            raise ModbusTimeout(f"detection took longer than {deadline} s") from err
