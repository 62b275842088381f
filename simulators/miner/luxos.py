"""LuxOS (Luxor firmware) on an Antminer: cgminer-style API with sessions,
curtail sleep/wakeup, and power targets through frequency profiles.

pyasic identifies it by "LUXminer" in the `version` reply (or "Luxor Firmware"
on the web page), then picks the class from the `version` reply's `Type`.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from aiohttp import web

from .firmware import Firmware
from .rpc import cgminer_pool
from .web import not_found

VERSION = "2025.3.27.213607-7a4b8b4a"
# Profiles as fractions of nominal power; 1.0 is the "default" profile.
PROFILE_STEPS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
BASE_FREQUENCY_MHZ = 500
BASE_VOLTAGE = 13.5

# Commands that need the session id as their first parameter.
PRIVILEGED = frozenset(
    {
        "atmset",
        "curtail",
        "ledset",
        "logoff",
        "profileset",
        "rebootdevice",
        "resetminer",
    }
)

HOME_PAGE = """<!doctype html><html><head><title>LuxOS</title></head>
<body><div id="app">Luxor Firmware</div></body></html>"""


def _watts(reported: Any) -> float:
    """A profile's watts as the physics takes them (a lying one counts as 0)."""
    try:
        watts = float(reported)
    except TypeError, ValueError:
        return 0.0
    return watts if 0.0 <= watts < float("inf") else 0.0


class LuxOS(Firmware):
    """LuxOS: `curtail sleep|wakeup`, `profileset`, `atm`, session tokens."""

    name: ClassVar[str] = "luxos"
    description: ClassVar[str] = f"LUXminer {VERSION}"

    def __init__(self, miner: Any) -> None:
        """Start in the default profile, ATM on, no session."""
        super().__init__(miner)
        self.profile = "default"
        self.atm_enabled = True
        self.session_id = ""
        self.red_led = "off"

    # ---- profiles ----------------------------------------------------------

    def profiles(self) -> list[dict[str, Any]]:
        """Return the frequency profiles this model offers."""
        spec = self.miner.spec
        result = []
        for step in PROFILE_STEPS:
            watts = round(spec.nominal_w * step)
            if step == PROFILE_STEPS[0]:
                watts = self.miner.reported("preset_w", watts)
            result.append(
                {
                    "Profile Name": "default"
                    if step == 1.0
                    else f"{round(BASE_FREQUENCY_MHZ * step)}MHz",
                    "Frequency": round(BASE_FREQUENCY_MHZ * step),
                    "Voltage": round(BASE_VOLTAGE * (0.85 + 0.15 * step), 2),
                    "Watts": watts,
                    "Hashrate": round(spec.hashrate_ths_at(_watts(watts)), 2),
                    "IsTuned": False,
                    "IsDynamic": False,
                    "Step": str(PROFILE_STEPS.index(step) - PROFILE_STEPS.index(1.0)),
                }
            )
        return result

    # ---- RPC ---------------------------------------------------------------

    def on_reboot(self) -> None:
        """A reboot ends the session and wakes the miner."""
        self.session_id = ""
        self.miner.physics.set_mining(True)

    def rpc_command(self, command: str, params: list[str]) -> dict[str, Any]:
        """Answer one LuxOS command."""
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return super().rpc_command(command, params)
        if command in PRIVILEGED:
            if not params or not self.session_id or params[0] != self.session_id:
                return self.error(47, "Invalid session id")
            params = params[1:]
        reply: dict[str, Any] = handler(params)
        reply["id"] = 1
        return reply

    def _ok(self, code: int, msg: str, **body: Any) -> dict[str, Any]:
        return {"STATUS": self.status(code, msg), **body}

    def _cmd_version(self, _: list[str]) -> dict[str, Any]:
        return self._ok(
            22,
            "LUXminer versions",
            VERSION=[
                {
                    "API": "3.7",
                    "CompileTime": "Thu Mar 27 21:36:07 UTC 2025",
                    "LUXminer": VERSION,
                    "Miner": VERSION,
                    "Type": self.miner.model,
                }
            ],
        )

    def _cmd_devdetails(self, _: list[str]) -> dict[str, Any]:
        spec = self.miner.spec
        return self._ok(
            69,
            "Device Details",
            DEVDETAILS=[
                {
                    "ASC": i,
                    "Chips": spec.chips_per_board,
                    "Cores": spec.chips_per_board * 4,
                    "DEVDETAILS": i,
                    "Driver": "bitmain",
                    "Kernel": "",
                    "Model": spec.model.removeprefix("Antminer "),
                    "Name": "BC5",
                    "Path": "",
                }
                for i in range(spec.hashboards)
            ],
        )

    def _cmd_summary(self, _: list[str]) -> dict[str, Any]:
        physics = self.miner.physics
        ghs = self.miner.reported_ghs(physics.hashrate_ths)
        return self._ok(
            11,
            "Summary",
            SUMMARY=[
                {
                    "Elapsed": physics.uptime_s,
                    "GHS 5s": ghs,
                    "GHS av": ghs,
                    "GHS 30m": ghs,
                    "Accepted": physics.accepted_shares,
                    "Rejected": 0,
                    "Hardware Errors": 0,
                    "Utility": 0.0,
                    "Best Share": 0,
                    "Pool Rejected%": 0.0,
                }
            ],
        )

    def _cmd_stats(self, _: list[str]) -> dict[str, Any]:
        physics, spec = self.miner.physics, self.miner.spec
        board_ghs = physics.hashrate_ths * 1000 / spec.hashboards
        body: dict[str, Any] = {
            "STATS": 0,
            "ID": "BC50",
            "Elapsed": physics.uptime_s,
            "GHS 5s": round(board_ghs * spec.hashboards, 2),
            "total_rate": round(board_ghs * spec.hashboards, 2),
            "total_rateideal": round(
                spec.hashrate_ths_at(physics.power_target_w) * 1000, 2
            ),
            "rate_unit": "GH",
            "fan_num": spec.fans,
            "temp_num": spec.hashboards,
            "miner_count": spec.hashboards,
        }
        for i, rpm in enumerate(physics.fan_rpms(), start=1):
            body[f"fan{i}"] = rpm
        boards = zip(physics.board_temps_c(), physics.chip_temps_c(), strict=True)
        for n, (pcb, chip) in enumerate(boards, start=1):
            body[f"chain_acn{n}"] = spec.chips_per_board
            body[f"chain_rate{n}"] = f"{board_ghs:.2f}"
            body[f"temp_pcb{n}"] = "-".join(str(round(pcb + d)) for d in (-2, 0, 1, -1))
            body[f"temp_chip{n}"] = "-".join(str(round(chip + d)) for d in (0, 2, 1, 0))
        header = {"Type": self.miner.model, "Miner": VERSION, "LUXminer": VERSION}
        return self._ok(70, "LUXminer stats", STATS=[header, body])

    def _cmd_power(self, _: list[str]) -> dict[str, Any]:
        return self._ok(
            330,
            "Power",
            POWER=[
                {
                    "Watts": self.miner.reported("power_w", round(self.miner.power_w)),
                    "PSU": True,
                }
            ],
        )

    def _cmd_config(self, _: list[str]) -> dict[str, Any]:
        miner = self.miner
        return self._ok(
            33,
            "LUXminer config",
            CONFIG=[
                {
                    "ASC Count": miner.spec.hashboards,
                    "Profile": self.profile,
                    "IsAtmEnabled": self.atm_enabled,
                    "MACAddr": miner.reported("mac", miner.mac.lower()),
                    "IPAddr": miner.ip,
                    "Hostname": miner.hostname,
                    "SerialNumber": miner.reported("serial", miner.serial),
                    "RedLed": self.red_led,
                    "GreenLed": "on" if miner.mining else "off",
                    "Pool Count": 1,
                    "Strategy": "Failover",
                    "ControlBoardType": "XilinxZynq",
                    "NumBoards": miner.spec.hashboards,
                    "IsCurtailed": not miner.mining,
                }
            ],
        )

    def _cmd_profiles(self, _: list[str]) -> dict[str, Any]:
        return self._ok(332, "Profiles", PROFILES=self.profiles())

    def _cmd_profileset(self, params: list[str]) -> dict[str, Any]:
        wanted = params[0] if params else ""
        profile = next(
            (p for p in self.profiles() if p["Profile Name"] == wanted), None
        )
        if profile is None:
            return self.error(333, f"Profile {wanted} not found")
        if not self.miner.ignore_commands:
            self.profile = wanted
            self.miner.physics.set_power_target(_watts(profile["Watts"]))
        return self._ok(
            334, "Profile set", PROFILE=[{"Profile": wanted, "Board": "all"}]
        )

    def _cmd_fans(self, _: list[str]) -> dict[str, Any]:
        rpms = self.miner.physics.fan_rpms()
        return self._ok(
            202,
            "Fans",
            FANS=[
                {"ID": i, "RPM": rpm, "Speed": min(100, rpm // 60)}
                for i, rpm in enumerate(rpms)
            ],
            FANCTRL=[{"MinFans": len(rpms), "Mode": "Auto"}],
        )

    def _cmd_tempctrl(self, _: list[str]) -> dict[str, Any]:
        return self._ok(
            203,
            "Temperature control",
            TEMPCTRL=[{"Mode": "Auto", "Target": 75, "Hot": 85, "Dangerous": 95}],
        )

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
                    GROUP=0,
                )
            ],
        )

    def _cmd_groups(self, _: list[str]) -> dict[str, Any]:
        return self._ok(
            500, "Groups", GROUPS=[{"GROUP": 0, "Name": "Default", "Quota": 1}]
        )

    def _cmd_atm(self, _: list[str]) -> dict[str, Any]:
        return self._ok(
            339,
            "ATM configuration values",
            ATM=[
                {
                    "Enabled": self.atm_enabled,
                    "MaxProfile": "default",
                    "MinProfile": self.profiles()[0]["Profile Name"],
                    "PostRampMinutes": 15,
                    "StartupMinutes": 15,
                    "TempWindow": 7,
                }
            ],
        )

    def _cmd_atmset(self, params: list[str]) -> dict[str, Any]:
        for param in params:
            key, _, value = param.partition("=")
            if key == "enabled" and not self.miner.ignore_commands:
                self.atm_enabled = value == "true"
        return self._ok(340, "Advanced Thermal Management configuration updated")

    def _cmd_session(self, _: list[str]) -> dict[str, Any]:
        return self._ok(230, "Session", SESSION=[{"SessionID": self.session_id}])

    def _cmd_logon(self, _: list[str]) -> dict[str, Any]:
        if self.session_id:
            return self.error(231, "Another session is active")
        self.session_id = secrets.token_hex(4)
        return self._ok(232, "Logon", SESSION=[{"SessionID": self.session_id}])

    def _cmd_logoff(self, _: list[str]) -> dict[str, Any]:
        self.session_id = ""
        return self._ok(233, "Logoff")

    def _cmd_curtail(self, params: list[str]) -> dict[str, Any]:
        mode = params[0] if params else ""
        if mode not in ("sleep", "wakeup"):
            return self.error(335, f"Invalid curtail mode {mode}")
        if not self.miner.ignore_commands:
            self.miner.physics.set_mining(mode == "wakeup")
        return self._ok(336, f"Curtail {mode}")

    def _cmd_rebootdevice(self, _: list[str]) -> dict[str, Any]:
        if not self.miner.ignore_commands:
            self.miner.reboot()
        return self._ok(337, "Rebooting device")

    def _cmd_resetminer(self, _: list[str]) -> dict[str, Any]:
        if not self.miner.ignore_commands:
            self.miner.physics.reboot()
        return self._ok(338, "Resetting LUXminer")

    def _cmd_ledset(self, params: list[str]) -> dict[str, Any]:
        if len(params) >= 2 and params[0] == "red" and not self.miner.ignore_commands:
            self.red_led = params[1]
        return self._ok(341, "LED set")

    # ---- HTTP --------------------------------------------------------------

    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve the web UI's page (the API is RPC only)."""
        if request.path in ("/", "/index.html"):
            return web.Response(text=HOME_PAGE, content_type="text/html")
        return not_found()
