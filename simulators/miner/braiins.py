"""Braiins OS+ (BOSer) on an Antminer: cgminer-style API on 4028, gRPC on 50051.

Built from:
- braiins/bos-plus-api, Braiins OS Public API 1.11.0 (Braiins OS 26.05; commit
  efa32c7): `proto/bos/version.proto`, `proto/bos/v1/{authentication,actions,
  miner,cooling,performance,pool,units,work,common}.proto` — service and method
  names, message field numbers and types. Its README: the API listens on port
  50051; a `Login` gives a token sent as `authorization` metadata.
- The `bosminer` package's README on PyPI (0.1.0, 1.0.0): what BOSer answers on
  the cgminer-style API (`version`: Code 22 "BOSer versions", `VERSION[0]`
  with `BOSer` and `API` "3.7"; the Description names BOSer).
- pyasic 0.79 (what it reads, not its code): `MinerFactory` identifies Braiins
  OS by "Braiins OS" on the web page or "BOSer"/"BOSminer" in a `version` or
  `devdetails` reply, and the model by `devdetails[0].Model` less "Bitmain "
  (its S19/S21 classes are then the gRPC backend, `BOSer`). `BOSer` reads
  hashrate/uptime from `summary` (`MHS 1m`, `Elapsed`), mining from `devs`
  (`MHS 5s`), errors from `tunerstatus`, and over gRPC: MinerService
  GetMinerDetails/GetMinerStats/GetHashboards, CoolingService GetCoolingState,
  PerformanceService GetActivePerformanceMode (and, on request,
  ConfigurationService GetConstraints); it stops and resumes with
  ActionsService PauseMining/ResumeMining and sets the power with
  PerformanceService SetPowerTarget (SAVE_AND_FORCE_APPLY), logging in first
  (token taken from the Login reply's initial metadata).
- braiins/bos-plus-api issue #33 (Braiins OS 25.05): a `Login` with wrong
  credentials is answered UNAUTHENTICATED, "Bad credentials".

The protobuf messages are written and read here with a small wire codec
(field numbers from the protos above), served by grpclib's HTTP/2 server.
Not simulated (answered UNIMPLEMENTED, as for an unknown method): pool changes,
the configuration, constraints other than the tuner's power target, licence,
upgrades, the REST API on port 80. Assumed (no document says): a call without
a valid token is answered UNAUTHENTICATED; a new password (`web_password`,
user root) ends every session, as the reboot does; the tuner's
power target range is [50 %, 110 %] of the nameplate (GetConstraints), a
target outside it refused with INVALID_ARGUMENT; the web page's only needed
fact is its title. The fault knobs `slow`, `garbage` and `flood` act on 4028
and 80 only; `unreachable` closes the gRPC port too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
import secrets
import struct
from typing import Any, ClassVar

from aiohttp import web
from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler
from grpclib.encoding.base import CodecBase
from grpclib.server import Server, Stream

from .firmware import Firmware
from .rpc import POOL_URL
from .web import not_found

GRPC_PORT = 50051
API_VERSION = (1, 11, 0)  # bos-plus-api release for Braiins OS 26.05
BOS_VERSION = "2026-05-11-0-efa32c74-26.05-plus"
BOSER = "boser-buildroot 0.1.0-0ce150e9"
MIN_TARGET, MAX_TARGET = 0.5, 1.1
HOME_PAGE = """<!doctype html><html><head><title>Braiins OS</title></head>
<body><div id="root"></div></body></html>"""

# enums (miner.proto, cooling.proto, common.proto)
MINER_BRAND_ANTMINER = 1
PLATFORM_CVITEK_BM1_AM2 = 6
BOS_MODE_NAND = 4
MINER_STATUS_NORMAL, MINER_STATUS_PAUSED = 2, 3
SENSOR_LOCATION_CHIP = 1
SAVE_ACTION_SAVE_AND_FORCE_APPLY = 3

# ---- protobuf wire format (just what these messages use) -------------------

Fields = list[tuple[int, Any]]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode(fields: Fields) -> bytes:
    """Encode (field number, value) pairs; a list value is a nested message.

    bool/int: varint; float: double; str/bytes: length-delimited; None: absent.
    """
    out = bytearray()
    for number, value in fields:
        if value is None:
            continue
        if isinstance(value, (bool, int)):
            out += _varint(number << 3) + _varint(int(value))
        elif isinstance(value, float):
            out += _varint(number << 3 | 1) + struct.pack("<d", value)
        else:
            raw = (
                encode(value)
                if isinstance(value, list)
                else value.encode()
                if isinstance(value, str)
                else bytes(value)
            )
            out += _varint(number << 3 | 2) + _varint(len(raw)) + raw
    return bytes(out)


def decode(data: bytes) -> dict[int, Any]:
    """Decode a message: field number -> last value (int, or raw bytes)."""
    fields: dict[int, Any] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        result = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number] = varint()
        elif wire == 2:
            length = varint()
            fields[number] = data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            fields[number] = data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"wire type {wire}")
    return fields


class WireCodec(CodecBase):
    """grpclib codec: requests arrive as decoded fields, replies go as Fields."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        """Encode a reply."""
        return encode(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        """Decode a request."""
        try:
            return decode(data)
        except (IndexError, ValueError) as err:
            raise GRPCError(Status.INVALID_ARGUMENT, "malformed message") from err


def _ghs(value: Any) -> Fields:
    return [(1, float(value))]  # GigaHashrate.gigahash_per_second


def _celsius(value: float) -> Fields:
    return [(1, float(round(value, 1)))]  # Temperature.degree_c


class BraiinsOS(Firmware):
    """Braiins OS+ with BOSer: gRPC actions, tuner power target, token login."""

    name: ClassVar[str] = "braiins"
    description: ClassVar[str] = f"BOSer {BOSER}"

    def __init__(self, miner: Any) -> None:
        """No session yet; the tuner at the nameplate power."""
        super().__init__(miner)
        self.tokens: set[str] = set()
        self.logins = 0
        self.grpc_calls = 0  # gRPC requests, and the connections they came on
        self.grpc_methods: Counter[str] = Counter()  # requests by method name
        self.grpc_connections = 0
        self.refused = 0  # calls refused for want of a valid token
        self.refused_logins = 0
        self.locate = False
        self._grpc: Server | None = None

    # ---- RPC (TCP 4028) ----------------------------------------------------

    def rpc_command(self, command: str, params: list[str]) -> dict[str, Any]:
        """Answer one BOSer cgminer-style command."""
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return super().rpc_command(command, params)
        code, msg, body = handler()
        return {"STATUS": self.status(code, msg), **body, "id": 1}

    def _cmd_version(self) -> tuple[int, str, dict[str, Any]]:
        return 22, "BOSer versions", {"VERSION": [{"API": "3.7", "BOSer": BOSER}]}

    def _cmd_devdetails(self) -> tuple[int, str, dict[str, Any]]:
        spec = self.miner.spec
        details = [
            {
                "DEVDETAILS": i,
                "Name": "",
                "ID": i,
                "Driver": "",
                "Kernel": "",
                "Model": f"Bitmain {spec.model}",
                "Device Path": "",
                "Chips": spec.chips_per_board,
            }
            for i in range(spec.hashboards)
        ]
        return 69, "Device Details", {"DEVDETAILS": details}

    def _mhs(self) -> Any:
        ghs = self.miner.reported_ghs(self.miner.physics.hashrate_ths)
        return ghs * 1000 if isinstance(ghs, (int, float)) else ghs

    def _cmd_summary(self) -> tuple[int, str, dict[str, Any]]:
        physics, mhs = self.miner.physics, self._mhs()
        summary = {
            "Elapsed": physics.uptime_s,
            "MHS av": mhs,
            "MHS 5s": mhs,
            "MHS 1m": mhs,
            "MHS 5m": mhs,
            "MHS 15m": mhs,
            "Accepted": physics.accepted_shares,
            "Rejected": 0,
            "Hardware Errors": 0,
        }
        return 11, "Summary", {"SUMMARY": [summary]}

    def _cmd_devs(self) -> tuple[int, str, dict[str, Any]]:
        spec, mhs = self.miner.spec, self._mhs()
        per_board = mhs / spec.hashboards if isinstance(mhs, (int, float)) else mhs
        devs = [
            {"ASC": i, "Name": "", "ID": i, "Enabled": "Y", "Status": "Alive"}
            | {"MHS av": per_board, "MHS 5s": per_board, "MHS 1m": per_board}
            for i in range(spec.hashboards)
        ]
        return 9, f"{spec.hashboards} ASC(s)", {"DEVS": devs}

    def _cmd_tunerstatus(self) -> tuple[int, str, dict[str, Any]]:
        spec, physics = self.miner.spec, self.miner.physics
        status = "Stable" if physics.mining else "Paused"
        chains = [
            {"HashchainIndex": 6 + i, "Status": status} for i in range(spec.hashboards)
        ]
        tuner = {
            "PowerLimit": round(physics.power_target_w),
            "TunerChainStatus": chains,
        }
        return 41, "Tuner Status", {"TUNERSTATUS": [tuner]}

    # ---- HTTP (TCP 80) -------------------------------------------------------

    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """The web UI's page (pyasic looks for "Braiins OS" in it)."""
        if request.path in ("/", "/index.html"):
            return web.Response(text=HOME_PAGE, content_type="text/html")
        return not_found()

    # ---- gRPC (TCP 50051) ----------------------------------------------------

    def extra_listeners(self) -> list[tuple[int, Callable[[], Any]]]:
        """The Public API's gRPC port (grpclib's HTTP/2 server protocol)."""
        if self._grpc is None:
            self._grpc = Server([self], codec=WireCodec())
        # grpclib serves a socket we bind ourselves through its protocol
        # factory (Server.start would bind its own).
        factory = self._grpc._protocol_factory

        def counted() -> Any:
            self.grpc_connections += 1
            return factory()

        return [(GRPC_PORT, counted)]

    def __mapping__(self) -> dict[str, Handler]:
        """grpclib's handler table: path -> (func, cardinality, types)."""
        methods: dict[str, Callable[[dict[int, Any]], Fields]] = {
            "/braiins.bos.ApiVersionService/GetApiVersion": self._api_version,
            "/braiins.bos.v1.ActionsService/PauseMining": self._pause,
            "/braiins.bos.v1.ActionsService/ResumeMining": self._resume,
            "/braiins.bos.v1.ActionsService/Reboot": self._reboot,
            "/braiins.bos.v1.ActionsService/GetLocateDeviceStatus": self._locate,
            "/braiins.bos.v1.ActionsService/SetLocateDeviceStatus": self._set_locate,
            "/braiins.bos.v1.MinerService/GetMinerStatus": self._miner_status,
            "/braiins.bos.v1.MinerService/GetMinerDetails": self._miner_details,
            "/braiins.bos.v1.MinerService/GetMinerStats": self._miner_stats,
            "/braiins.bos.v1.MinerService/GetHashboards": self._hashboards,
            "/braiins.bos.v1.CoolingService/GetCoolingState": self._cooling,
            "/braiins.bos.v1.PoolService/GetPoolGroups": self._pool_groups,
            "/braiins.bos.v1.PerformanceService/SetPowerTarget": self._set_target,
            "/braiins.bos.v1.ConfigurationService/GetConstraints": self._constraints,
            "/braiins.bos.v1.PerformanceService/GetActivePerformanceMode": (
                self._performance_mode
            ),
        }
        mapping = {
            path: Handler(
                self._unary(
                    method, public="ApiVersion" in path, name=path.rsplit("/", 1)[1]
                ),
                *_UNARY,
            )
            for path, method in methods.items()
        }
        mapping["/braiins.bos.v1.AuthenticationService/Login"] = Handler(
            self._login, *_UNARY
        )
        return mapping

    def _unary(
        self, method: Callable[[dict[int, Any]], Fields], *, public: bool, name: str
    ) -> Callable[[Stream[Any, Any]], Awaitable[None]]:
        async def handle(stream: Stream[Any, Any]) -> None:
            request = await stream.recv_message()
            self.grpc_calls += 1
            self.grpc_methods[name] += 1
            token = stream.metadata.get("authorization") if stream.metadata else None
            if not public and token not in self.tokens:
                self.refused += 1
                raise GRPCError(Status.UNAUTHENTICATED, "missing or invalid token")
            await stream.send_message(method(request or {}))

        return handle

    async def _login(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message() or {}
        self.grpc_calls += 1
        self.grpc_methods["Login"] += 1
        user = bytes(request.get(1, b"")).decode(errors="replace")
        password = bytes(request.get(2, b"")).decode(errors="replace")
        if user != "root" or not secrets.compare_digest(
            password, self.miner.web_password
        ):
            self.refused_logins += 1
            raise GRPCError(Status.UNAUTHENTICATED, "Bad credentials")
        token = secrets.token_urlsafe(12)
        self.tokens.add(token)
        self.logins += 1
        await stream.send_initial_metadata(metadata={"authorization": token})
        await stream.send_message([(1, token), (2, 3600)])  # token, timeout_s

    # ApiVersionService
    def _api_version(self, _request: dict[int, Any]) -> Fields:
        major, minor, patch = API_VERSION
        return [(1, major), (2, minor), (3, patch)]

    # ActionsService
    def _pause(self, _request: dict[int, Any]) -> Fields:
        already = not self.miner.physics.mining
        if not self.miner.ignore_commands:
            self.miner.physics.set_mining(False)
        return [(1, already)]  # already_paused

    def _resume(self, _request: dict[int, Any]) -> Fields:
        already = self.miner.physics.mining
        if not self.miner.ignore_commands:
            self.miner.physics.set_mining(True)
        return [(1, already)]  # already_mining

    def _reboot(self, _request: dict[int, Any]) -> Fields:
        if not self.miner.ignore_commands:
            self.miner.reboot()
        return []

    def _locate(self, _request: dict[int, Any]) -> Fields:
        return [(1, self.locate)]

    def _set_locate(self, request: dict[int, Any]) -> Fields:
        self.locate = bool(request.get(1, 0))
        return [(1, self.locate)]

    # MinerService
    def _miner_status(self, _request: dict[int, Any]) -> Fields:
        mining = self.miner.physics.mining
        return [(1, MINER_STATUS_NORMAL if mining else MINER_STATUS_PAUSED)]

    def _miner_details(self, _request: dict[int, Any]) -> Fields:
        miner, spec, physics = self.miner, self.miner.spec, self.miner.physics
        identity: Fields = [
            (1, MINER_BRAND_ANTMINER),
            (3, spec.model),
            (4, spec.model),
        ]
        version: Fields = [(1, BOS_VERSION), (2, BOS_VERSION[:7]), (3, True)]
        serial = miner.reported("serial", miner.serial)
        return [
            (1, f"uid{(miner.serial or miner.mac).replace(':', '')}"),
            (2, identity),
            (3, PLATFORM_CVITEK_BM1_AM2),
            (4, BOS_MODE_NAND),
            (5, version),
            (6, miner.hostname),
            (7, str(miner.reported("mac", miner.mac)).lower()),
            (9, _ghs(spec.nominal_ths * 1000)),
            (10, physics.uptime_s),
            (11, physics.uptime_s),
            (12, MINER_STATUS_NORMAL if physics.mining else MINER_STATUS_PAUSED),
            (16, None if serial is None else str(serial)),
        ]

    def _solver_stats(self, ghs: Any, nominal_ghs: float) -> Fields:
        rate = _ghs(ghs) if isinstance(ghs, (int, float)) else []
        real: Fields = [(field, rate) for field in (1, 2, 3, 4, 5)]
        return [(1, real), (2, _ghs(nominal_ghs))]

    def _miner_stats(self, _request: dict[int, Any]) -> Fields:
        miner, physics = self.miner, self.miner.physics
        ghs = miner.reported_ghs(physics.hashrate_ths)
        watts = miner.reported("power_w", round(physics.power_w))
        power = (
            [(1, int(watts))]
            if isinstance(watts, (int, float)) and 0 <= watts < 2**63
            else []
        )
        nominal = miner.spec.nominal_ths * 1000
        return [(2, self._solver_stats(ghs, nominal)), (3, [(1, power)])]

    def _hashboards(self, _request: dict[int, Any]) -> Fields:
        miner, spec, physics = self.miner, self.miner.spec, self.miner.physics
        ghs = miner.reported_ghs(physics.hashrate_ths)
        board_ghs = ghs / spec.hashboards if isinstance(ghs, (int, float)) else ghs
        boards = []
        for i, (board_c, chip_c) in enumerate(
            zip(physics.board_temps_c(), physics.chip_temps_c(), strict=True)
        ):
            sensor: Fields = [(2, SENSOR_LOCATION_CHIP), (3, _celsius(chip_c))]
            boards.append(
                (
                    1,
                    [
                        (1, str(i + 1)),
                        (2, True),
                        (3, [(1, spec.chips_per_board)]),  # UInt32Value
                        (6, sensor),
                        (7, _celsius(board_c)),
                        (8, self._solver_stats(board_ghs, spec.nominal_ths * 1000)),
                    ],
                )
            )
        return boards

    # PoolService
    def _pool_groups(self, _request: dict[int, Any]) -> Fields:
        physics = self.miner.physics
        stats: Fields = [
            (1, physics.accepted_shares),
            (4, int(self.miner.spec.pool_difficulty)),
        ]
        pool: Fields = [
            (1, "1"),
            (2, POOL_URL),
            (3, f"hashgrid.{self.miner.hostname}"),
            (4, True),
            (5, True),
            (6, physics.mining),
            (7, stats),
        ]
        return [(1, [(1, "Default"), (2, [(1, 1)]), (4, pool), (5, "1")])]

    # CoolingService
    def _cooling(self, _request: dict[int, Any]) -> Fields:
        physics = self.miner.physics
        fans: Fields = [
            (1, [(1, i), (2, rpm)]) for i, rpm in enumerate(physics.fan_rpms())
        ]
        hottest = max(physics.chip_temps_c(), default=0.0)
        sensor: Fields = [(2, SENSOR_LOCATION_CHIP), (3, _celsius(hottest))]
        return [*fans, (2, sensor)]

    # PerformanceService
    def _set_target(self, request: dict[int, Any]) -> Fields:
        power = decode(bytes(request.get(2, b"")))
        watts = int(power.get(1, 0))
        low, high = self._power_range()
        if not low <= watts <= high:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"power target {watts} W out of range [{low}, {high}] W",
            )
        if not self.miner.ignore_commands:
            self.miner.physics.set_power_target(float(watts))
        return [(1, [(1, round(self.miner.physics.power_target_w))])]

    def _power_range(self) -> tuple[int, int]:
        nominal = self.miner.spec.nominal_w
        return round(nominal * MIN_TARGET), round(nominal * MAX_TARGET)

    # ConfigurationService
    def _constraints(self, _request: dict[int, Any]) -> Fields:
        low, high = self._power_range()
        nominal = round(self.miner.spec.nominal_w)
        power: Fields = [(1, [(1, nominal)]), (2, [(1, low)]), (3, [(1, high)])]
        return [(1, [(1, power)])]  # tuner_constraints.power_target

    def _performance_mode(self, _request: dict[int, Any]) -> Fields:
        target: Fields = [(1, [(1, round(self.miner.physics.power_target_w))])]
        return [(2, [(1, target)])]  # tuner_mode.power_target.power_target

    # ---- lifecycle -----------------------------------------------------------

    def on_reboot(self) -> None:
        """A reboot forgets the sessions (tokens)."""
        self.tokens.clear()

    def on_password_change(self) -> None:
        """A new password ends every session: each client logs in again."""
        self.tokens.clear()

    def on_stop(self) -> None:
        """Cancel the gRPC requests still being handled."""
        if self._grpc is not None:
            for handler in list(self._grpc._handlers):
                handler.close()


_UNARY = (Cardinality.UNARY_UNARY, None, None)
