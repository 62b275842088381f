"""One reused Modbus-TCP connection per device, with timeouts and reconnect backoff.

No Home Assistant imports. Errors are mapped onto :mod:`.errors`:

- the connection cannot be opened, or drops mid-request -> :class:`CannotConnect`
- no answer within ``timeout`` -> :class:`ModbusTimeout` (the connection is closed,
  so a late answer can never be taken for the next request's)
- bytes that are not a Modbus reply -> :class:`MalformedReply` (connection closed)
- exception codes -> their class in :data:`~.errors.EXCEPTION_CLASSES`
  (0x02 :class:`IllegalAddress`, 0x04, 0x06, 0x0A, 0x0B), others
  :class:`ModbusDeviceError`
- a range past register 65535 -> :class:`InvalidValue`, before anything is sent

A request cancelled from outside (a poll's deadline) cancels pymodbus's own
request and closes the connection: nothing is left waiting on the wire.

After a failed connect, further attempts are refused (fast, with
:class:`CannotConnect`) until the backoff has elapsed; the backoff doubles from
``backoff_initial`` up to ``backoff_max`` and resets on success.

pymodbus logs a failed request itself (an ERROR per silent request, a warning
per refused connect, asyncio's traceback for a frame it cannot decode). Records
it logs while serving this module's requests are demoted to DEBUG: the caller
reports the problem once (the coordinator: one line when polls start failing,
one when they recover).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from contextvars import ContextVar
import logging
import time
from types import TracebackType
from typing import Self

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from .errors import (
    EXCEPTION_CLASSES,
    CannotConnect,
    InvalidValue,
    MalformedReply,
    ModbusDeviceError,
    ModbusTimeout,
)

_LOGGER = logging.getLogger(__name__)

#: Most registers one read may ask for (Modbus application protocol limit).
MAX_READ_REGISTERS = 125
#: Most registers one write (function 16) may carry.
MAX_WRITE_REGISTERS = 123
#: Registers are numbered 0..65535.
ADDRESS_SPACE = 0x10000

#: Set while pymodbus works for this module (our task, our receive callback).
_SERVING: ContextVar[bool] = ContextVar("hashgrid_modbus_serving", default=False)


class _DemotePymodbusRecords(logging.Filter):
    """pymodbus's records about our own requests become DEBUG (we report once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SERVING.get() or record.levelno <= logging.DEBUG:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_PYMODBUS_LOGGER = logging.getLogger("pymodbus.logging")
if not any(isinstance(f, _DemotePymodbusRecords) for f in _PYMODBUS_LOGGER.filters):
    _PYMODBUS_LOGGER.addFilter(_DemotePymodbusRecords())


def _check_range(address: int, count: int) -> None:
    if address < 0 or address + count > ADDRESS_SPACE:
        raise InvalidValue(
            f"registers {address}..{address + count - 1} are outside 0..65535"
        )


class ModbusTransport:
    """A lazily opened, reused connection to one Modbus-TCP endpoint."""

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        timeout: float = 3.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure; nothing is opened until the first request or :meth:`connect`."""
        self.host = host
        self.port = port
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._clock = clock
        self._client: AsyncModbusTcpClient | None = None
        self._lost = asyncio.Event()
        self._malformed: list[str] = []
        self._lock = asyncio.Lock()
        self._backoff = 0.0
        self._next_attempt = 0.0
        #: Requests sent (reads + writes), for benchmarks and tests.
        self.requests = 0
        #: Connections opened.
        self.connects = 0

    # ---------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """Open the connection now (raises :class:`CannotConnect`)."""
        async with self._lock:
            await self._ensure()

    async def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        self._drop()

    async def __aenter__(self) -> Self:
        """Connect on entry."""
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close on exit."""
        await self.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _ensure(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        now = self._clock()
        if now < self._next_attempt:
            raise CannotConnect(
                f"{self.host}:{self.port} unreachable; next attempt in "
                f"{self._next_attempt - now:.1f} s"
            )
        lost = asyncio.Event()
        self._lost = lost
        malformed: list[str] = []
        self._malformed = malformed
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            # pymodbus's own timer runs longer than ours: ours decides, and
            # cancels pymodbus's request (no retries, no error of its own)
            timeout=self.timeout + 1.0,
            retries=0,
            reconnect_delay=0,
            # bound to this connection's event: a late callback from an old
            # connection can never mark a newer one as lost
            trace_connect=lambda up: None if up else lost.set(),
        )
        _contain_receive_errors(client, lost, malformed)
        token = _SERVING.set(True)
        try:
            ok = await asyncio.wait_for(client.connect(), self.timeout)
        except TimeoutError, OSError, ModbusException:
            ok = False
        finally:
            _SERVING.reset(token)
        if not ok or not client.connected:
            client.close()
            self._backoff = (
                self.backoff_initial
                if self._backoff == 0
                else min(self.backoff_max, self._backoff * 2)
            )
            self._next_attempt = self._clock() + self._backoff
            raise CannotConnect(f"cannot connect to {self.host}:{self.port}")
        self._backoff = 0.0
        self._next_attempt = 0.0
        lost.clear()
        self._client = client
        self.connects += 1
        return client

    # ---------------------------------------------------------------- requests

    async def _execute(
        self,
        call: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]],
        what: str,
    ) -> ModbusPDU:
        async with self._lock:
            client = await self._ensure()
            lost, malformed = self._lost, self._malformed
            self.requests += 1
            token = _SERVING.set(True)
            try:
                task = asyncio.ensure_future(call(client))
            finally:
                _SERVING.reset(token)
            waiter = asyncio.ensure_future(lost.wait())
            try:
                done, _ = await asyncio.wait(
                    {task, waiter},
                    timeout=self.timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            except BaseException:
                # cancelled from outside (a poll's deadline): stop pymodbus's
                # request too, and never reuse a connection with an answer due
                task.cancel()
                task.add_done_callback(_consume)
                self._drop()
                raise
            finally:
                waiter.cancel()
            if task not in done:
                task.cancel()
                with suppress(asyncio.CancelledError, ModbusException):
                    await task
                self._drop()
                if malformed:
                    raise MalformedReply(f"{what}: {malformed[0]}")
                if lost.is_set():
                    raise CannotConnect(f"{what}: connection lost")
                raise ModbusTimeout(f"{what}: no answer in {self.timeout} s")
            try:
                response = task.result()
            except ConnectionException as err:
                self._drop()
                raise CannotConnect(f"{what}: {err}") from err
            except ModbusException as err:
                self._drop()
                if malformed:
                    raise MalformedReply(f"{what}: {malformed[0]}") from err
                if lost.is_set():
                    raise CannotConnect(f"{what}: connection lost") from err
                raise ModbusTimeout(f"{what}: {err}") from err
        if response.isError():
            code = int(response.exception_code)
            error = EXCEPTION_CLASSES.get(code, ModbusDeviceError)
            raise error(f"{what}: Modbus exception {code:#04x}", code)
        return response

    async def read_registers(self, unit_id: int, address: int, count: int) -> list[int]:
        """Read holding registers (function 3)."""
        if not 1 <= count <= MAX_READ_REGISTERS:
            raise ValueError(f"count {count} outside 1..{MAX_READ_REGISTERS}")
        _check_range(address, count)
        what = f"read {unit_id}/{address}+{count}"
        response = await self._execute(
            lambda c: c.read_holding_registers(address, count=count, device_id=unit_id),
            what,
        )
        registers = list(response.registers)
        if len(registers) != count:
            raise ModbusDeviceError(f"{what}: got {len(registers)} registers", 0)
        return registers

    async def write_registers(
        self, unit_id: int, address: int, values: list[int]
    ) -> None:
        """Write holding registers (function 16)."""
        if not 1 <= len(values) <= MAX_WRITE_REGISTERS:
            raise ValueError(
                f"{len(values)} registers outside 1..{MAX_WRITE_REGISTERS}"
            )
        if any(not 0 <= v <= 0xFFFF for v in values):
            raise ValueError("register values are 16-bit unsigned")
        _check_range(address, len(values))
        await self._execute(
            lambda c: c.write_registers(address, values, device_id=unit_id),
            f"write {unit_id}/{address}+{len(values)}",
        )


def _consume(task: asyncio.Future[ModbusPDU]) -> None:
    """Retrieve a cancelled request's outcome (pymodbus raises on cancel)."""
    if not task.cancelled():
        task.exception()


def _contain_receive_errors(
    client: AsyncModbusTcpClient, lost: asyncio.Event, malformed: list[str]
) -> None:
    """Bytes pymodbus cannot decode close the connection quietly.

    pymodbus raises inside its receive callback; asyncio would log that with a
    traceback ("Fatal error: protocol.data_received() call failed") on every
    poll. Instead the reason is kept for the request waiting (which raises
    :class:`MalformedReply`) and the connection is closed.
    """
    protocol = client.ctx
    receive = protocol.callback_data

    def callback_data(data: bytes, addr: tuple[str, int] | None = None) -> int:
        token = _SERVING.set(True)
        try:
            used: int = receive(data, addr)
        except Exception as err:  # anything pymodbus raises in its callback
            if not malformed:
                malformed.append(str(err) or type(err).__name__)
            lost.set()
            asyncio.get_running_loop().call_soon(client.close)
            return len(data)
        finally:
            _SERVING.reset(token)
        return used

    protocol.callback_data = callback_data  # type: ignore[method-assign]
