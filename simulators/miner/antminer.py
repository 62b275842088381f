"""Bitmain stock firmware on a modern Antminer (S19/S21 generation).

The cgminer-style bmminer API on TCP 4028 (read only) and the lighttpd web
API under /cgi-bin/*.cgi behind HTTP digest auth (root/root by default), where
the miner's configuration holds the work mode: 0 normal, 1 sleep, 3 low power.
pyasic identifies it by the 401's `realm="antMiner Configuration"` and picks
the class from `minertype` (web) or the `version` reply's `Type` (RPC).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from aiohttp import web

from .firmware import Firmware
from .web import digest_challenge, digest_ok, not_found

REALM = "antMiner Configuration"
USER = "root"
BMMINER_VERSION = "1.0.0"
COMPILE_TIME = "Tue Jan  7 10:13:38 CST 2025"
FILESYSTEM_VERSION = "Tue Jan  7 10:13:38 CST 2025"
WORK_MODE_NORMAL, WORK_MODE_SLEEP, WORK_MODE_LOW = 0, 1, 3
LOW_POWER_FRACTION = 0.75

HOME_PAGE = """<!doctype html><html><head><title>Antminer</title></head>
<body><div id="app">Miner Configuration</div></body></html>"""


class Antminer(Firmware):
    """Stock firmware: sleep and power modes through the miner configuration."""

    name: ClassVar[str] = "antminer"
    description: ClassVar[str] = f"bmminer {BMMINER_VERSION}"
    rpc_terminator: ClassVar[bytes] = b"\x00"

    def __init__(self, miner: Any) -> None:
        """Start in normal work mode with one pool."""
        super().__init__(miner)
        self.work_mode = WORK_MODE_NORMAL
        self.blink = False
        self.pools = [
            {
                "url": "stratum+tcp://pool.hashgrid.invalid:3333",
                "user": f"hashgrid.{miner.hostname}",
                "pass": "x",
            },
            {"url": "", "user": "", "pass": ""},
            {"url": "", "user": "", "pass": ""},
        ]

    def _apply_work_mode(self, mode: int) -> None:
        self.work_mode = mode
        physics = self.miner.physics
        physics.set_mining(mode != WORK_MODE_SLEEP)
        fraction = LOW_POWER_FRACTION if mode == WORK_MODE_LOW else 1.0
        physics.set_power_target(self.miner.spec.nominal_w * fraction)

    def on_reboot(self) -> None:
        """The work mode is saved configuration: it survives a reboot."""
        self._apply_work_mode(self.work_mode)

    # ---- RPC (bmminer) -----------------------------------------------------

    def rpc_command(self, command: str, params: list[str]) -> dict[str, Any]:
        """Answer one bmminer command."""
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return super().rpc_command(command, params)
        reply: dict[str, Any] = {"STATUS": self.status(0, ""), **handler()}
        reply["id"] = 1
        return reply

    def _version_block(self) -> dict[str, Any]:
        return {
            "BMMiner": BMMINER_VERSION,
            "API": "3.1",
            "Miner": "uart_trans.1.3",
            "CompileTime": COMPILE_TIME,
            "Type": self.miner.model,
        }

    def _cmd_version(self) -> dict[str, Any]:
        return {"VERSION": [self._version_block()]}

    def _cmd_devdetails(self) -> dict[str, Any]:
        spec = self.miner.spec
        return {
            "DEVDETAILS": [
                {"DEVDETAILS": i, "Name": "BTM", "ID": i, "Driver": "bitmain"}
                | {"Kernel": "", "Model": spec.model, "Device Path": ""}
                for i in range(spec.hashboards)
            ]
        }

    def _cmd_summary(self) -> dict[str, Any]:
        physics = self.miner.physics
        ghs = self.miner.reported_ghs(physics.hashrate_ths)
        return {
            "SUMMARY": [
                {
                    "Elapsed": physics.uptime_s,
                    "GHS 5s": ghs,
                    "GHS av": ghs,
                    "Found Blocks": 0,
                    "Accepted": physics.accepted_shares,
                    "Rejected": 0,
                    "Hardware Errors": 0,
                    "Best Share": 0,
                }
            ]
        }

    def _cmd_stats(self) -> dict[str, Any]:
        physics, spec = self.miner.physics, self.miner.spec
        board_ghs = physics.hashrate_ths * 1000 / spec.hashboards
        body: dict[str, Any] = {
            "STATS": 0,
            "ID": "BTM_SOC0",
            "Elapsed": physics.uptime_s,
            "GHS 5s": round(board_ghs * spec.hashboards, 2),
            "rate_unit": "GH",
            "total_rateideal": round(
                spec.hashrate_ths_at(physics.power_target_w) * 1000, 2
            ),
            "total_rate": round(board_ghs * spec.hashboards, 2),
            "fan_num": spec.fans,
            "temp_num": spec.hashboards,
            "miner_count": spec.hashboards,
        }
        for i, rpm in enumerate(physics.fan_rpms(), start=1):
            body[f"fan{i}"] = rpm
        boards = zip(physics.board_temps_c(), physics.chip_temps_c(), strict=True)
        for n, (pcb, chip) in enumerate(boards, start=1):
            body[f"chain_acn{n}"] = spec.chips_per_board
            body[f"chain_acs{n}"] = "o" * spec.chips_per_board
            body[f"chain_rate{n}"] = f"{board_ghs:.2f}"
            body[f"temp{n}"] = round(pcb)
            body[f"temp2_{n}"] = round(chip)
        return {"STATS": [self._version_block(), body]}

    def _cmd_pools(self) -> dict[str, Any]:
        miner = self.miner
        return {
            "POOLS": [
                {
                    "POOL": i,
                    "URL": pool["url"],
                    "User": pool["user"],
                    "Status": "Alive",
                    "Priority": i,
                    "Stratum Active": miner.mining and i == 0,
                    "Accepted": miner.physics.accepted_shares if i == 0 else 0,
                    "Rejected": 0,
                    "Get Failures": 0,
                    "Remote Failures": 0,
                }
                for i, pool in enumerate(self.pools)
                if pool["url"]
            ]
        }

    # ---- web (cgi behind digest auth) --------------------------------------

    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve the web UI and its cgi API, after digest authentication."""
        if not digest_ok(request, REALM, USER, self.miner.web_password):
            return digest_challenge(REALM)
        if request.path in ("/", "/index.html"):
            return web.Response(text=HOME_PAGE, content_type="text/html")
        name = request.path.removeprefix("/cgi-bin/").removesuffix(".cgi")
        handler = getattr(self, f"_cgi_{name}", None)
        if not request.path.startswith("/cgi-bin/") or handler is None:
            return not_found()
        body: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                return web.json_response({"stats": "error", "code": "E001"})
        return web.json_response(handler(body))

    def _cgi_get_system_info(self, _: dict[str, Any]) -> dict[str, Any]:
        miner = self.miner
        return {
            "minertype": miner.model,
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": miner.reported("mac", miner.mac.upper()),
            "hostname": miner.hostname,
            "ipaddress": miner.ip,
            "netmask": "255.255.255.0",
            "gateway": "",
            "dnsservers": "",
            "system_mode": "GNU/Linux",
            "system_kernel_version": "Linux 4.9.38 #1 SMP PREEMPT",
            "system_filesystem_version": FILESYSTEM_VERSION,
            "firmware_type": "Release",
            "serinum": miner.reported("serial", miner.serial),
        }

    def _cgi_get_network_info(self, _: dict[str, Any]) -> dict[str, Any]:
        miner = self.miner
        return {
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": miner.reported("mac", miner.mac.upper()),
            "hostname": miner.hostname,
            "ipaddress": miner.ip,
            "netmask": "255.255.255.0",
            "conf_nettype": "DHCP",
            "conf_hostname": miner.hostname,
            "conf_ipaddress": "",
            "conf_netmask": "",
            "conf_gateway": "",
            "conf_dnsservers": "",
        }

    def _cgi_get_miner_conf(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "pools": self.pools,
            "api-listen": True,
            "api-network": True,
            "api-groups": "A:stats:pools:devs:summary:version",
            "api-allow": "A:0/0,W:*",
            "bitmain-fan-ctrl": False,
            "bitmain-fan-pwm": "100",
            "bitmain-use-vil": True,
            "bitmain-freq": "",
            "bitmain-voltage": "",
            "bitmain-ccdelay": "0",
            "bitmain-pwth": "0",
            "bitmain-work-mode": str(self.work_mode),
            "bitmain-freq-level": "100",
        }

    def _cgi_set_miner_conf(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            mode = int(body.get("miner-mode", self.work_mode))
        except TypeError, ValueError:
            return {"stats": "error", "code": "M001", "msg": "Invalid miner-mode"}
        if mode not in (WORK_MODE_NORMAL, WORK_MODE_SLEEP, WORK_MODE_LOW):
            return {"stats": "error", "code": "M001", "msg": "Invalid miner-mode"}
        if not self.miner.ignore_commands:
            pools = body.get("pools")
            if isinstance(pools, list) and pools:
                self.pools = [
                    {k: str(p.get(k, "")) for k in ("url", "user", "pass")}
                    for p in pools
                ]
            self._apply_work_mode(mode)
        return {"stats": "success", "code": "M000", "msg": "OK!"}

    def _cgi_summary(self, _: dict[str, Any]) -> dict[str, Any]:
        physics = self.miner.physics
        return {
            "STATUS": {
                "STATUS": "S",
                "when": 0,
                "Msg": "summary",
                "api_version": "1.0.0",
            },
            "INFO": {"miner_version": "uart_trans.1.3", "CompileTime": COMPILE_TIME},
            "SUMMARY": [
                {
                    "elapsed": physics.uptime_s,
                    "rate_5s": round(physics.hashrate_ths * 1000, 2),
                    "rate_unit": "GH/s",
                    "status": [
                        {"type": kind, "status": "s", "code": 0, "msg": ""}
                        for kind in ("rate", "network", "fans", "temp")
                    ],
                }
            ],
        }

    def _cgi_stats(self, _: dict[str, Any]) -> dict[str, Any]:
        physics, spec, miner = self.miner.physics, self.miner.spec, self.miner
        board_ghs = physics.hashrate_ths * 1000 / spec.hashboards
        ideal = spec.hashrate_ths_at(physics.power_target_w) * 1000 / spec.hashboards
        boards = zip(physics.board_temps_c(), physics.chip_temps_c(), strict=True)
        return {
            "STATUS": {
                "STATUS": "S",
                "when": 0,
                "Msg": "stats",
                "api_version": "1.0.0",
            },
            "INFO": {"miner_version": "uart_trans.1.3", "type": miner.model},
            "STATS": [
                {
                    "elapsed": physics.uptime_s,
                    "rate_5s": round(board_ghs * spec.hashboards, 2),
                    "rate_ideal": round(ideal * spec.hashboards, 2),
                    "rate_unit": "GH/s",
                    "chain_num": spec.hashboards,
                    "fan_num": spec.fans,
                    "fan": physics.fan_rpms(),
                    "hwp_total": 0.0,
                    "chain": [
                        {
                            "index": n,
                            "freq_avg": 490,
                            "rate_ideal": round(ideal, 2),
                            "rate_real": round(board_ghs, 2),
                            "asic_num": spec.chips_per_board,
                            "temp_pic": [round(pcb)] * 4,
                            "temp_pcb": [
                                round(pcb - 2),
                                round(pcb),
                                round(pcb + 1),
                                round(pcb - 1),
                            ],
                            "temp_chip": [
                                round(chip),
                                round(chip + 2),
                                round(chip + 1),
                                round(chip),
                            ],
                            "hw": 0,
                            "eeprom_loaded": True,
                            "sn": f"{miner.serial}B{n}",
                        }
                        for n, (pcb, chip) in enumerate(boards)
                    ],
                }
            ],
        }

    def _cgi_get_blink_status(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"blink": self.blink}

    def _cgi_blink(self, body: dict[str, Any]) -> dict[str, Any]:
        on = str(body.get("blink", "false")) == "true"
        if not self.miner.ignore_commands:
            self.blink = on
        return {"code": "B000" if on else "B100"}

    def _cgi_reboot(self, _: dict[str, Any]) -> dict[str, Any]:
        if not self.miner.ignore_commands:
            self.miner.reboot()
        return {"code": "R000"}
