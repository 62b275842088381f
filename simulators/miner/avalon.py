"""Canaan Avalon home miners (Avalon Nano 3S, Avalon Q): Canaan's cgminer 4.11.1.

The cgminer API on TCP 4028, one request per connection, every reply ending in
a NUL byte, plus Canaan's extensions through `ascset|0,<option>,<value>`:
work mode (`workmode,set,<0|1|2>`: low, medium, high), soft off and on
(`softoff|softon,1:<unix time>`: act at that time of the miner's clock, hash
power off while the controller, fan and API stay up), LED and reboot. The
extended statistics (`estats`) carry Canaan's `MM ID0` block of `Key[value]`
pairs (WORKMODE, SoftOFF, GHSspd, MPO, PS[...], WALLPOWER, Fan1, TMax ...).

Sources (facts, not code):
- Canaan, "Avalon A10 API manual" v0.3 (Canaan-Creative/avalon10-docs,
  Universal API/Avalon A10 API manual-EN.md): one TCP connection per command,
  `version` fields (PROD, MODEL, HWTYPE, DNA, MAC), `ascset` replies
  ("ASC 0 set OK" / "ASC 0 set info: ..."), the `estats` MM ID0 format,
  `PS[...]` power supply figures;
- "Avalon Crypto Miner API Documentation" (LW10583/AvalonMinerTools, tested on
  an Avalon Nano3s, firmware 25021401_56abae7, cgminer 4.11.1, API 3.7): the
  NUL terminator, the Nano3s `version` reply, `ascset|0,workmode,set,<mode>`
  with 0 Low/Eco, 1 Medium/Standard, 2 High/Super, WORKMODE and SoftOFF in
  `estats`, PS index 6 as output power;
- pyasic 0.79 (`miners/backends/avalonminer.py`, `miners/avalonminer/cgminer/
  nano/nano3.py`, `.../Q/Q.py`, `miners/factory.py`): identification by
  "AVALON" in the `version` reply and the class from PROD ("Avalon Nano3s",
  "Avalon Q"), what it reads where, `softoff`/`softon` with `1:<time now + 5 s>`
  and success when the reply's Msg contains "success" (the exact wording of
  that reply is not in any document we have: ours says "success softoff").
  pyasic's `set_power_limit` sends `worklevel,set,<n>`, an option no Canaan
  document names: answered here as an unknown option.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from aiohttp import web

from .firmware import Firmware
from .rpc import POOL_URL, cgminer_pool
from .web import not_found

CGMINER_VERSION = "4.11.1"
API_VERSION = "3.7"
WORK_MODES = {0: "Low", 1: "Medium", 2: "High"}
SOFT_ON, SOFT_OFF = 0, 1


class Avalon(Firmware):
    """Canaan's cgminer on an Avalon home miner (base of Nano 3S and Q)."""

    name: ClassVar[str] = "avalon"
    description: ClassVar[str] = f"cgminer {CGMINER_VERSION}"
    rpc_terminator: ClassVar[bytes] = b"\x00"
    prod: ClassVar[str] = ""
    model_id: ClassVar[str] = ""
    hwtype: ClassVar[str] = ""
    swtype: ClassVar[str] = ""
    firmware_version: ClassVar[str] = ""
    # Nameplate power of each work mode (0 low, 1 medium, 2 high), in W.
    mode_watts: ClassVar[tuple[float, float, float]] = (0.0, 0.0, 0.0)
    default_mode: ClassVar[int] = 2

    def __init__(self, miner: Any) -> None:
        """Start mining in the default work mode, LED off."""
        super().__init__(miner)
        self.work_mode = self.default_mode
        self.soft_off = SOFT_ON
        self.led = 0
        self._pending: asyncio.TimerHandle | None = None
        self._apply_mode(self.work_mode)

    # ---- state -------------------------------------------------------------

    def mode_power_w(self, mode: int) -> float:
        """Return what the miner draws mining in a work mode."""
        return self.mode_watts[mode] or round(self.miner.spec.nominal_w)

    def _apply_mode(self, mode: int) -> None:
        self.work_mode = mode
        self.miner.physics.set_power_target(self.mode_power_w(mode))

    def _apply_soft(self, state: int) -> None:
        self.soft_off = state
        self.miner.physics.set_mining(state == SOFT_ON)

    def on_reboot(self) -> None:
        """A reboot wakes the miner from soft off; the work mode is kept."""
        self._apply_soft(SOFT_ON)

    # ---- RPC ---------------------------------------------------------------

    def _ok(self, code: int, msg: str, **body: Any) -> dict[str, Any]:
        return {"STATUS": self.status(code, msg), **body, "id": 1}

    def _info(self, msg: str) -> dict[str, Any]:
        """An `ascset` info reply (STATUS I, code 118)."""
        status = self.status(118, f"ASC 0 set info: {msg}")
        status[0]["STATUS"] = "I"
        return {"STATUS": status, "id": 1}

    def rpc_command(self, command: str, params: list[str]) -> dict[str, Any]:
        """Answer one command (cgminer error 14 for the unknown)."""
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return super().rpc_command(command, params)
        reply: dict[str, Any] = handler(params)
        return reply

    def _cmd_version(self, _: list[str]) -> dict[str, Any]:
        miner = self.miner
        mac = str(miner.reported("mac", miner.mac)).replace(":", "").lower()
        return self._ok(
            22,
            "CGMiner versions",
            VERSION=[
                {
                    "CGMiner": CGMINER_VERSION,
                    "API": API_VERSION,
                    "PROD": self.prod,
                    "MODEL": self.model_id,
                    "HWTYPE": self.hwtype,
                    "SWTYPE": self.swtype,
                    "LVERSION": self.firmware_version,
                    "BVERSION": self.firmware_version,
                    "CGVERSION": self.firmware_version,
                    "DNA": str(miner.reported("serial", miner.serial or "")).lower(),
                    "MAC": mac,
                    "UPAPI": "2",
                }
            ],
        )

    def _ghs(self) -> Any:
        return self.miner.reported_ghs(self.miner.physics.hashrate_ths)

    def _cmd_summary(self, _: list[str]) -> dict[str, Any]:
        physics = self.miner.physics
        ghs = self._ghs()
        mhs = ghs * 1000 if isinstance(ghs, (int, float)) else ghs
        return self._ok(
            11,
            "Summary",
            SUMMARY=[
                {
                    "Elapsed": physics.uptime_s,
                    "MHS av": mhs,
                    "MHS 5s": mhs,
                    "MHS 1m": mhs,
                    "MHS 5m": mhs,
                    "MHS 15m": mhs,
                    "Found Blocks": 0,
                    "Accepted": physics.accepted_shares,
                    "Rejected": 0,
                    "Hardware Errors": 0,
                    "Best Share": 0,
                    "Pool Rejected%": 0.0,
                    "Pool Stale%": 0.0,
                }
            ],
        )

    def _cmd_devs(self, params: list[str]) -> dict[str, Any]:
        reply = self._cmd_summary(params)
        summary = reply.pop("SUMMARY")[0]
        reply["STATUS"] = self.status(9, "1 ASC(s)")
        reply["DEVS"] = [
            {
                "ASC": 0,
                "Name": "AVA10",
                "ID": 0,
                "Enabled": "Y",
                "Status": "Alive",
                "Temperature": self.miner.physics.board_temps_c()[0],
                **{k: v for k, v in summary.items() if k.startswith("MHS")},
                "Device Elapsed": summary["Elapsed"],
            }
        ]
        return reply

    def mm_id0(self) -> str:
        """Return Canaan's `MM ID0` block: `Key[value]` pairs, space-separated."""
        miner, physics, spec = self.miner, self.miner.physics, self.miner.spec
        ghs = self._ghs()
        power = miner.reported("power_w", round(physics.power_w))
        board, chip = physics.board_temps_c()[0], physics.chip_temps_c()[0]
        fans = physics.fan_rpms()
        volts = 1200 if self.soft_off == SOFT_ON else 0
        amps = round(power * 100 / 12) if isinstance(power, (int, float)) else 0
        fields = {
            "Ver": f"{self.model_id}-{self.firmware_version}",
            "LVer": self.firmware_version,
            "BVer": self.firmware_version,
            "DNA": str(miner.serial or "").lower(),
            "STATE": 0,
            "MEMFREE": 102400,
            "NETFAIL": "0 0 0 0 0 0 0 0",
            "SSID": "hashgrid",
            "RSSI": -51,
            "NetDevType": 1,
            "SYSTEMSTATU": "Work: In Work, Hash Board: 1",
            "Elapsed": physics.uptime_s,
            "BOOTBY": "0x01.00000000",
            "LW": int(physics.total_th),
            "MH": 0,
            "DHW": 0,
            "HW": 0,
            "DH": "0.000%",
            "ITemp": round(board - 15),
            "HBITemp": round(board - 5),
            "HBOTemp": round(board),
            "TMax": round(chip),
            "TAvg": round(chip - 3),
            "TarT": 80,
            **{f"Fan{i}": rpm for i, rpm in enumerate(fans, start=1)},
            "FanR": f"{min(100, fans[0] // 60)}%",
            "SoftOFF": self.soft_off,
            "Temp": round(board - 15),
            "PS": f"0 1209 {volts} {amps} 0 {volts} {power} 1050 1300",
            "WALLPOWER": power,
            "GHSspd": ghs,
            "DHspd": "0.000%",
            "GHSmm": round(spec.hashrate_ths_at(physics.power_target_w) * 1000, 2),
            "GHSavg": ghs,
            "MGHS": ghs,
            "MTmax": round(chip),
            "MTavg": round(chip - 3),
            "Freq": 525 if self.soft_off == SOFT_ON else 0,
            "Led": self.led,
            "WORKMODE": self.work_mode,
            "WORKLEVEL": 0,
            "MPO": round(self.mode_power_w(self.work_mode)),
            "CALIALL": 7,
            "ADJ": 1,
        }
        return " ".join(f"{key}[{value}]" for key, value in fields.items())

    def _cmd_estats(self, _: list[str]) -> dict[str, Any]:
        physics = self.miner.physics
        return self._ok(
            70,
            "CGMiner stats",
            STATS=[
                {
                    "STATS": 0,
                    "ID": "AVA100",
                    "Elapsed": physics.uptime_s,
                    "Calls": 0,
                    "Wait": 0.0,
                    "Max": 0.0,
                    "Min": 99999999.0,
                    "MM ID0": self.mm_id0(),
                }
            ],
        )

    def _cmd_stats(self, params: list[str]) -> dict[str, Any]:
        reply = self._cmd_estats(params)
        elapsed = self.miner.physics.uptime_s
        reply["STATS"].append(
            {
                "STATS": 1,
                "ID": "POOL0",
                "Elapsed": elapsed,
                "Calls": 0,
                "Wait": 0.0,
                "Max": 0.0,
                "Min": 99999999.0,
            }
        )
        return reply

    def _cmd_pools(self, _: list[str]) -> dict[str, Any]:
        miner = self.miner
        return self._ok(
            7,
            "1 Pool(s)",
            POOLS=[
                cgminer_pool(
                    miner.hostname,
                    miner.mining,
                    miner.physics.accepted_shares,
                    Quota=1,
                    **{"Has Stratum": True, "Stratum URL": "pool.hashgrid.invalid"},
                )
            ],
        )

    def _cmd_lcd(self, _: list[str]) -> dict[str, Any]:
        ghs = self._ghs()
        return self._ok(
            125,
            "LCD",
            LCD=[
                {
                    "Elapsed": self.miner.physics.uptime_s,
                    "GHS av": ghs,
                    "GHS 5m": ghs,
                    "GHS 5s": ghs,
                    "Current Pool": POOL_URL,
                    "User": f"hashgrid.{self.miner.hostname}",
                }
            ],
        )

    def _cmd_ascset(self, params: list[str]) -> dict[str, Any]:
        if not params or params[0] != "0":
            return self.error(15, "Invalid ASC id")
        option = params[1] if len(params) > 1 else ""
        values = params[2:]
        ignore = self.miner.ignore_commands
        if option == "workmode":
            # `workmode,set,<mode>` sets; `workmode` alone (or 255) queries.
            if values and values[0] == "set" and len(values) > 1:
                try:
                    mode = int(values[1])
                except ValueError:
                    mode = -1
                if mode not in WORK_MODES:
                    return self.error(16, f"ASC 0 set failed: invalid workmode {mode}")
                if not ignore:
                    self._apply_mode(mode)
                return self._ok(119, "ASC 0 set OK")
            return self._info(f"WORKMODE[{self.work_mode}]")
        if option in ("softoff", "softon"):
            state = SOFT_OFF if option == "softoff" else SOFT_ON
            enable, _, when = (values[0] if values else "").partition(":")
            try:
                at = int(when)
            except ValueError:
                return self.error(16, f"ASC 0 set failed: invalid {option} time")
            if enable != "1":
                return self.error(16, f"ASC 0 set failed: invalid {option} value")
            if not ignore:
                self._schedule(state, at)
            return self._info(f"success {option} 1:{at}")
        if option == "led":
            value = values[0] if values else ""
            if value.endswith("-255"):
                return self._info(f"LED[{self.led}]")
            if not ignore and value in ("1-0", "1-1"):
                self.led = int(value[-1])
            return self._ok(119, "ASC 0 set OK")
        if option == "reboot":
            if not ignore:
                self.miner.reboot()
            return self._info("reboot in 0 seconds")
        if option == "voltage" and not values:
            return self._info(f"PS[{self.mm_id0().split('PS[')[1].split(']')[0]}]")
        return self.error(16, f"ASC 0 set failed: unknown option {option}")

    def on_stop(self) -> None:
        """Forget a soft off/on still to come."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _schedule(self, state: int, at: int) -> None:
        """Act at `at` (unix time, the miner's clock); now if it has passed."""
        self.on_stop()
        delay = at - time.time()
        if delay <= 0:
            self._apply_soft(state)
            return
        self._pending = asyncio.get_running_loop().call_later(
            delay, self._apply_soft, state
        )

    # ---- HTTP --------------------------------------------------------------

    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve the web UI's login page (its API is not what pyasic uses)."""
        if request.path in ("/", "/index.html", "/login.cgi"):
            return web.Response(
                text=f"<!doctype html><html><head><title>{self.prod}</title></head>"
                '<body><form action="login.cgi" method="post">'
                '<input name="username"><input name="passwd" type="password">'
                "</form></body></html>",
                content_type="text/html",
            )
        return not_found()


class AvalonNano3S(Avalon):
    """Avalon Nano 3S: 6 TH/s at 140 W (high); a heater-sized home miner."""

    name: ClassVar[str] = "avalon_nano3s"
    prod: ClassVar[str] = "Avalon Nano3s"
    model_id: ClassVar[str] = "Nano3s"
    hwtype: ClassVar[str] = "N_MM1v1_X1"
    swtype: ClassVar[str] = "MM319"
    firmware_version: ClassVar[str] = "25021401_56abae7"
    mode_watts: ClassVar[tuple[float, float, float]] = (70.0, 100.0, 140.0)


class AvalonQ(Avalon):
    """Avalon Q: 90 TH/s at 1674 W (super); eco and standard below."""

    name: ClassVar[str] = "avalon_q"
    prod: ClassVar[str] = "Avalon Q"
    model_id: ClassVar[str] = "Q"
    hwtype: ClassVar[str] = "Q_MM1v1_X1"
    swtype: ClassVar[str] = "MM321"
    firmware_version: ClassVar[str] = "25052801_97e23a6"
    mode_watts: ClassVar[tuple[float, float, float]] = (800.0, 1300.0, 1674.0)
