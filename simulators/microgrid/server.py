"""The Modbus-TCP server of the simulated microgrid, with fault injection.

Unit ids on every port:

- 1: SunSpec hybrid inverter (models 1, 103, 160, 124, 802, 701, 702, 704, 714, 203)
- 2: SunSpec flare-gas genset (models 1, 103)
- 100: Victron GX (its unit 100 from Victron's own register table)

Any other unit id is answered with exception 0x0B (gateway target failed to
respond), as a Modbus-TCP gateway does; on a port that is the GX alone
(``gx_port``) with 0x0A (gateway path unavailable), as a GX does.

Misbehaviours, one unit at a time (:class:`DeviceFaults`, changed at run
time): silence, connection resets, one exception code for everything (0x02,
0x04 server failure, 0x06 busy, 0x0A/0x0B gateway), queued transient
exceptions at an address, raw values at addresses, one raw value everywhere
(0xFFFF or 0), delays, and frames that are not Modbus. The inverter's shape
(models cut short, a larger chain, no end model, counters set back) is chosen
when the site is built (``inverter_*`` arguments of :class:`MicrogridSite`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
import logging
import socket
import struct
import time
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from .devices import (
    GATEWAY_PATH_UNAVAILABLE,
    INVERTER_MODELS,
    VICTRON_UNIT_ID,
    Device,
    Genset,
    HybridInverter,
    VictronGX,
)
from .model import MicrogridModel, ModelClock, ModelParams

_LOGGER = logging.getLogger(__name__)

INVERTER_UNIT_ID = 1
GENERATOR_UNIT_ID = 2


@dataclass
class DeviceFaults:
    """Faults of one unit id; change them at run time."""

    #: Swallow every request: the client times out.
    timeout: bool = False
    #: Reset (RST) the TCP connection on every request to this unit.
    reset: bool = False
    #: Answer every read and write with exception 0x02 (illegal data address).
    illegal_address: bool = False
    #: Serve these raw values instead of the real ones: {register address: raw}.
    garbage: dict[int, int] = field(default_factory=dict)
    #: Answer this many (real) seconds late.
    delay_s: float = 0.0
    #: Answer every read and write with this exception code (e.g. 0x06 busy).
    exception: int | None = None
    #: Transient exceptions: a read covering an address answers the next code
    #: queued for it ({address: [code, ...]}), then the address reads normally.
    flaky: dict[int, list[int]] = field(default_factory=dict)
    #: Serve this raw value for every register read (0xFFFF, or 0).
    fill: int | None = None
    #: Answer with a frame that is not a Modbus reply (unknown function code).
    malformed: bool = False

    def clear(self) -> None:
        """Back to a healthy device."""
        self.timeout = self.reset = self.illegal_address = self.malformed = False
        self.garbage.clear()
        self.flaky.clear()
        self.delay_s = 0.0
        self.exception = self.fill = None


class _SiteContext(ModbusServerContext):
    """Datastore that routes each unit id to a simulated device."""

    def __init__(  # no super(): it is deprecated
        self, site: MicrogridSite, *, gx_only: bool = False
    ) -> None:
        self.site = site
        self.simdevices = []
        self._devices = {}
        #: A GX's own port: every other unit id is a D-Bus service it lacks.
        self.gx_only = gx_only

    def _device(self, device_id: int) -> Device | None:
        if self.gx_only and device_id != VICTRON_UNIT_ID:
            return None  # dbus_modbustcp: no service at this unit id
        device = self.site.devices.get(device_id)
        if device is None:
            raise NoSuchIdException(f"unit {device_id}")  # type: ignore[no-untyped-call]
        return device

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        device = self._device(device_id)
        if device is None:
            return ExcCodes(GATEWAY_PATH_UNAVAILABLE)
        if func_code not in (3, 4, 6, 16, 23):
            return ExcCodes.ILLEGAL_FUNCTION
        faults = self.site.faults[device_id]
        if faults.illegal_address:
            return ExcCodes.ILLEGAL_ADDRESS
        if faults.exception is not None:
            return ExcCodes(faults.exception)
        if func_code in (3, 4):
            self.site.reads[device_id] += 1
            for addr, codes in faults.flaky.items():
                if codes and address <= addr < address + count:
                    return ExcCodes(codes.pop(0))
        if faults.fill is not None:
            return [faults.fill & 0xFFFF] * count
        result = device.read(address, count)
        if isinstance(result, int):
            return ExcCodes(result)
        for addr, raw in faults.garbage.items():
            if address <= addr < address + count:
                result[addr - address] = raw & 0xFFFF
        return result

    async def async_setValues(
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: list[int] | list[bool],
    ) -> ExcCodes | None:
        device = self._device(device_id)
        if device is None:
            return ExcCodes(GATEWAY_PATH_UNAVAILABLE)
        if func_code not in (6, 16, 23):
            return ExcCodes.ILLEGAL_FUNCTION
        faults = self.site.faults[device_id]
        if faults.illegal_address:
            return ExcCodes.ILLEGAL_ADDRESS
        if faults.exception is not None:
            return ExcCodes(faults.exception)
        self.site.writes[device_id] += 1
        error = device.write(address, [int(v) for v in values])
        return None if error is None else ExcCodes(error)

    def device_ids(self) -> list[int]:
        if self.gx_only:
            return list(range(248))
        return list(self.site.devices)


class _FaultyRequestHandler(ServerRequestHandler):
    """Per-connection handler that applies the unit's faults first."""

    async def handle_request(self) -> None:
        pdu = self.last_pdu
        if pdu is None:
            return
        site: MicrogridSite = self.server.site
        faults = site.faults.get(pdu.dev_id)
        if faults is not None:
            if faults.reset:
                site.resets += 1
                self._reset()
                return
            if faults.timeout:
                site.dropped += 1
                return
            if faults.delay_s > 0:
                await asyncio.sleep(faults.delay_s)
            if faults.malformed:
                site.malformed += 1
                # a well-framed reply (MBAP header matches) with function code
                # 0x63, which no Modbus client can decode
                frame = struct.pack(
                    ">HHHBBB", pdu.transaction_id, 0, 3, pdu.dev_id, 0x63, 0
                )
                self.send(frame)
                return
        await super().handle_request()  # type: ignore[no-untyped-call]

    def _reset(self) -> None:
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        transport.abort()  # type: ignore[attr-defined]


class _SiteServer(ModbusTcpServer):
    def __init__(
        self, site: MicrogridSite, context: _SiteContext, host: str, port: int
    ):
        super().__init__(context, address=(host, port))
        self.site = site

    def callback_new_connection(self) -> ServerRequestHandler:
        return _FaultyRequestHandler(  # type: ignore[no-untyped-call]
            self, self.trace_packet, self.trace_pdu, self.trace_connect
        )

    @property
    def bound_port(self) -> int:
        server: Any = self.transport
        port: int = server.sockets[0].getsockname()[1]
        return port


class MicrogridSite:
    """The simulated site: physical model, devices, faults and Modbus servers."""

    def __init__(
        self,
        *,
        params: ModelParams | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        with_generator: bool = True,
        setpoint_timeout_s: float | None = None,
        inverter_chain: Sequence[tuple[int, dict[str, int] | None]] | None = None,
        inverter_lengths: Mapping[int, int] | None = None,
        inverter_terminated: bool = True,
        victron_firmware: tuple[int, int] = (3, 60),
        victron_battery: str = "monitor",
        external_load: Callable[[], float] | None = None,
    ) -> None:
        """Build model and devices; nothing listens until :meth:`start`.

        ``external_load`` (W, read every step) joins the site's AC load: loads
        simulated elsewhere, such as the demo's miners.

        ``inverter_chain``, ``inverter_lengths`` and ``inverter_terminated``
        shape the inverter's SunSpec map (see :class:`HybridInverter`).
        """
        self.model = MicrogridModel(params)
        if external_load is not None:
            self.model.external_loads.append(external_load)
        self.clock = clock
        self.model_clock = ModelClock(self.model, clock, time_scale)
        self.inverter = HybridInverter(
            self.model,
            chain=INVERTER_MODELS if inverter_chain is None else inverter_chain,
            lengths=inverter_lengths,
            terminated=inverter_terminated,
        )
        self.generator = Genset(self.model) if with_generator else None
        self.victron = VictronGX(
            self.model,
            clock,
            setpoint_timeout_s=setpoint_timeout_s,
            firmware=victron_firmware,
            battery=victron_battery,
        )
        self.devices: dict[int, Device] = {INVERTER_UNIT_ID: self.inverter}
        if self.generator is not None:
            self.devices[GENERATOR_UNIT_ID] = self.generator
        self.devices[VICTRON_UNIT_ID] = self.victron
        self.faults: dict[int, DeviceFaults] = {u: DeviceFaults() for u in self.devices}
        self.reads: Counter[int] = Counter()
        self.writes: Counter[int] = Counter()
        self.resets = 0
        self.dropped = 0
        self.malformed = 0
        self.host = ""
        self.port = 0
        self.victron_port: int | None = None
        #: A port that is the GX alone (other unit ids: 0x0A, as on a GX).
        self.gx_port: int | None = None
        self._servers: list[_SiteServer] = []
        self._tick_task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- model

    @property
    def time_scale(self) -> float:
        """Simulated seconds per real second."""
        return self.model_clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self.tick()
        self.model_clock.time_scale = value

    def tick(self) -> None:
        """Advance the model to the clock's present and refresh all registers."""
        self.model_clock.tick()
        self.refresh()

    def refresh(self) -> None:
        """Re-encode every device's registers from the model as it is."""
        for device in self.devices.values():
            device.refresh()

    def advance(self, sim_seconds: float) -> None:
        """Advance the model by simulated seconds (independent of the clock)."""
        self.model.advance(sim_seconds)
        self.refresh()

    def fault(self, unit_id: int) -> DeviceFaults:
        """The live fault knobs of a unit id."""
        return self.faults[unit_id]

    def clear_faults(self) -> None:
        """Heal every device."""
        for faults in self.faults.values():
            faults.clear()

    # ---------------------------------------------------------------- serving

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        victron_port: int | None = None,
        gx_port: int | None = None,
        tick_interval: float | None = 0.5,
    ) -> None:
        """Listen (port 0 picks a free port) and start ticking."""
        context = _SiteContext(self)
        main = _SiteServer(self, context, host, port)
        await main.serve_forever(background=True)
        self._servers.append(main)
        self.host, self.port = host, main.bound_port
        if victron_port is not None:
            extra = _SiteServer(self, context, host, victron_port)
            await extra.serve_forever(background=True)
            self._servers.append(extra)
            self.victron_port = extra.bound_port
        if gx_port is not None:
            gx_server = _SiteServer(
                self, _SiteContext(self, gx_only=True), host, gx_port
            )
            await gx_server.serve_forever(background=True)
            self._servers.append(gx_server)
            self.gx_port = gx_server.bound_port
        if tick_interval:
            self._tick_task = asyncio.create_task(self._ticker(tick_interval))

    async def _ticker(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.tick()
            except Exception:  # keep serving whatever happens in the model
                _LOGGER.exception("microgrid model tick failed")

    async def stop(self) -> None:
        """Stop ticking and close every listener and connection."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        for server in self._servers:
            await server.shutdown()  # type: ignore[no-untyped-call]
        self._servers.clear()


@asynccontextmanager
async def running_microgrid(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    victron_port: int | None = None,
    gx_port: int | None = None,
    time_scale: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    tick_interval: float | None = 0.5,
    params: ModelParams | None = None,
    with_generator: bool = True,
    setpoint_timeout_s: float | None = None,
    inverter_chain: Sequence[tuple[int, dict[str, int] | None]] | None = None,
    inverter_lengths: Mapping[int, int] | None = None,
    inverter_terminated: bool = True,
    victron_firmware: tuple[int, int] = (3, 60),
    victron_battery: str = "monitor",
    external_load: Callable[[], float] | None = None,
) -> AsyncIterator[MicrogridSite]:
    """Run a simulated microgrid for the duration of the ``async with`` block.

    ``site.port`` (and ``site.victron_port``) are the bound ports; ``site.model``
    is the physical model, ``site.fault(unit_id)`` the fault knobs.
    ``tick_interval=None`` disables the background ticker (call ``site.tick()``
    or ``site.advance()`` yourself for deterministic tests).
    """
    site = MicrogridSite(
        params=params,
        time_scale=time_scale,
        clock=clock,
        with_generator=with_generator,
        setpoint_timeout_s=setpoint_timeout_s,
        inverter_chain=inverter_chain,
        inverter_lengths=inverter_lengths,
        inverter_terminated=inverter_terminated,
        victron_firmware=victron_firmware,
        victron_battery=victron_battery,
        external_load=external_load,
    )
    await site.start(
        host,
        port,
        victron_port=victron_port,
        gx_port=gx_port,
        tick_interval=tick_interval,
    )
    try:
        yield site
    finally:
        await site.stop()
