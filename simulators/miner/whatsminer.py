"""MicroBT Whatsminer (M30S+ class) on btminer with API 2.0.5, TCP 4028.

Reads are plain JSON (`{"cmd"|"command": "summary"}`), cgminer-style for
summary/devs/pools/devdetails (`+` joins several) and MicroBT's own shape for
get_version, status, get_miner_info, get_psu, get_error_code and get_token
(`{"STATUS": "S", "Code": 131, "Msg": {...}}`). Writes are encrypted: the
client asks `get_token` for `time`, `salt` and `newsalt`; it derives
`host_passwd_md5` = md5-crypt(password, salt) and the sign = md5-crypt(
host_passwd_md5 + time, newsalt) (the hash part of each); it sends
`{"enc": 1, "data": base64(AES-256-ECB(key = sha256(host_passwd_md5),
zero-padded JSON with "token": sign))}` and gets `{"enc": base64(...)}` back,
encrypted the same way. Token errors come back in plain text.

Writes simulated: power_off / power_on (hash boards off, API up),
set_low_power / set_normal_power / set_high_power (the power mode shown in
the summary), adjust_power_limit (the miner's power ceiling; btminer
restarts to apply it), restart_btminer, reboot, set_led.

Sources (facts, not code):
- MicroBT, "WhatsMiner API V2.0.5" (the v2 API document: command list,
  reply shapes, status codes 131 OK, 132 error, 134 token, 135 check token
  error, 136 token over max times, 14 invalid command, 23 invalid JSON, 45
  permission denied; token and AES-ECB scheme; power_off `respbefore`;
  adjust_power_limit "cannot be higher than the ordinary power", btminer
  restarts after it);
- pyasic 0.79 (`rpc/btminer.py`: `get_token`, `create_privileged_cmd`,
  `parse_btminer_priviledge_data`, the "can't access write cmd" refusal;
  `miners/backends/btminer.py` BTMinerV2: what it reads where, firmware
  dates up to 2024-11 select API v2; `miners/factory.py`: identified by
  "bitmicro"/"btminer" in `devdetails`, the model from its `Model`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from typing import Any, ClassVar

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.hash import md5_crypt

from .firmware import Firmware
from .rpc import cgminer_pool

API_VERSION = "2.0.5"
FW_VERSION = "20230911.12.Rel"
MODEL = "M30S+_VE40"
TOKEN_LIFETIME_S = 30 * 60
MAX_TOKENS = 32
POWER_MODES = {"Low": 0.8, "Normal": 1.0, "High": 1.1}
_SALT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _salt() -> str:
    return "".join(secrets.choice(_SALT_CHARS) for _ in range(8))


def _crypt_hash(word: str, salt: str) -> str:
    """The hash part of md5-crypt ($1$salt$hash)."""
    return str(md5_crypt.using(salt=salt).hash(word)).split("$")[3]


def _aes(host_passwd_md5: str) -> Cipher[modes.ECB]:
    key = binascii.unhexlify(hashlib.sha256(host_passwd_md5.encode()).hexdigest())
    return Cipher(algorithms.AES(key), modes.ECB())


def _pad16(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 16)


class Whatsminer(Firmware):
    """btminer's API v2: plain reads, token-signed AES-encrypted writes."""

    name: ClassVar[str] = "whatsminer"
    description: ClassVar[str] = "btminer"

    def __init__(self, miner: Any) -> None:
        """Start mining in normal power mode; write access on, password admin."""
        super().__init__(miner)
        # Issued tokens: sign -> (host_passwd_md5, issued at).
        self._tokens: dict[str, tuple[str, float]] = {}
        # Knobs: the API password (as set with WhatsminerTool), write access.
        self._password = "admin"
        self.write_enabled = True
        self.power_mode = "Normal"
        self.power_limit_w = round(miner.spec.nominal_w * POWER_MODES["High"])
        self.led_auto = True
        self._apply_power()

    @property
    def password(self) -> str:
        """Return the API password."""
        return self._password

    @password.setter
    def password(self, value: str) -> None:
        """Change the password: every token issued so far is void."""
        self._password = value
        self._tokens.clear()

    def _apply_power(self) -> None:
        nominal = self.miner.spec.nominal_w
        target = min(nominal * POWER_MODES[self.power_mode], self.power_limit_w)
        self.miner.physics.set_power_target(target)

    def on_reboot(self) -> None:
        """A reboot powers the hash boards on; tokens are forgotten."""
        self._tokens.clear()
        self.miner.physics.set_mining(True)

    # ---- replies ------------------------------------------------------------

    def _msg(self, code: int, msg: Any, *, ok: bool = True) -> dict[str, Any]:
        """MicroBT's own reply shape."""
        return {
            "STATUS": "S" if ok else "E",
            "When": int(time.time()),
            "Code": code,
            "Msg": msg,
            "Description": "",
        }

    def _cg(self, msg: str, **body: Any) -> dict[str, Any]:
        """The cgminer reply shape."""
        return {"STATUS": [{"STATUS": "S", "Msg": msg}], **body, "id": 1}

    def rpc_reply(self, request: dict[str, Any]) -> bytes:
        """Answer one request: a plain read, or an encrypted write."""
        if request.get("enc") == 1 or request.get("enc") == "1":
            return json.dumps(self._privileged(str(request.get("data", "")))).encode()
        command = str(request.get("cmd") or request.get("command") or "")
        if "+" in command:
            return super().rpc_reply({"command": command})
        reply = self.rpc_command(command, [])
        return json.dumps(reply).encode()

    def rpc_command(self, command: str, params: list[str]) -> dict[str, Any]:
        """Answer one read (MicroBT's error 14 for the unknown)."""
        handler = getattr(self, f"_read_{command}", None)
        if handler is None:
            if command in self._WRITES:
                return self._msg(45, "can't access write cmd", ok=False)
            return self._msg(14, "invalid cmd", ok=False)
        reply: dict[str, Any] = handler()
        return reply

    # ---- reads --------------------------------------------------------------

    def _read_get_version(self) -> dict[str, Any]:
        return self._msg(
            131,
            {
                "api_ver": API_VERSION,
                "fw_ver": FW_VERSION,
                "platform": "H6OS",
                "chip": "K210",
            },
        )

    def _read_status(self) -> dict[str, Any]:
        off = not self.miner.mining
        return self._msg(
            131,
            {
                "mineroff": "true" if off else "false",
                "mineroff_reason": "api power_off" if off else "",
                "mineroff_time": "",
                "FirmwareVersion": f"'{FW_VERSION}'",
                "power_mode": self.power_mode,
                "hash_percent": "",
            },
        )

    def _read_get_miner_info(self) -> dict[str, Any]:
        miner = self.miner
        return self._msg(
            131,
            {
                "ip": miner.ip,
                "proto": "dhcp",
                "netmask": "255.0.0.0",
                "dns": "127.0.0.53",
                "mac": miner.reported("mac", miner.mac.upper()),
                "ledstat": "auto" if self.led_auto else "manual",
                "gateway": "127.0.0.1",
                "hostname": miner.hostname,
                "minersn": miner.reported("serial", miner.serial),
            },
        )

    def _read_get_psu(self) -> dict[str, Any]:
        return self._msg(
            131,
            {
                "name": "P221B",
                "hw_version": "V01.00",
                "sw_version": "V01.00.V01.03",
                "model": "P221B",
                "iin": "1400",
                "vin": "23000",
                "fan_speed": "6120",
                "serial_no": "HGPSU0001",
            },
        )

    def _read_get_error_code(self) -> dict[str, Any]:
        return self._msg(131, {"error_code": []})

    def _read_get_token(self) -> dict[str, Any]:
        now = time.time()
        self._tokens = {
            sign: issued
            for sign, issued in self._tokens.items()
            if now - issued[1] < TOKEN_LIFETIME_S
        }
        if len(self._tokens) >= MAX_TOKENS:
            return self._msg(136, "token over max times", ok=False)
        stamp, salt, newsalt = f"{int(now) % 10000:04d}", _salt(), _salt()
        host_passwd_md5 = _crypt_hash(self.password, salt)
        sign = _crypt_hash(host_passwd_md5 + stamp, newsalt)
        self._tokens[sign] = (host_passwd_md5, now)
        return self._msg(134, {"time": stamp, "salt": salt, "newsalt": newsalt})

    def _ghs(self) -> Any:
        return self.miner.reported_ghs(self.miner.physics.hashrate_ths)

    def _read_summary(self) -> dict[str, Any]:
        miner, physics, spec = self.miner, self.miner.physics, self.miner.spec
        ghs = self._ghs()
        mhs = ghs * 1000 if isinstance(ghs, (int, float)) else ghs
        chip = physics.chip_temps_c()
        fans = physics.fan_rpms()
        return self._cg(
            "Summary",
            SUMMARY=[
                {
                    "Elapsed": physics.uptime_s,
                    "MHS av": mhs,
                    "MHS 5s": mhs,
                    "MHS 1m": mhs,
                    "MHS 5m": mhs,
                    "MHS 15m": mhs,
                    "HS RT": mhs,
                    "Accepted": physics.accepted_shares,
                    "Rejected": 0,
                    "Temperature": max(physics.board_temps_c()),
                    "freq_avg": 600 if miner.mining else 0,
                    "Fan Speed In": fans[0],
                    "Fan Speed Out": fans[-1],
                    "Power": miner.reported("power_w", round(physics.power_w)),
                    "Power Rate": 0.0,
                    "Pool Rejected%": 0.0,
                    "Pool Stale%": 0.0,
                    "Uptime": physics.uptime_s,
                    "Hash Stable": True,
                    "Target Freq": 600,
                    "Target MHS": round(
                        spec.hashrate_ths_at(physics.power_target_w) * 1e6
                    ),
                    "Env Temp": 25.0,
                    "Power Mode": self.power_mode,
                    "Factory GHS": round(spec.nominal_ths * 1000),
                    "Power Limit": self.power_limit_w,
                    "Chip Temp Min": min(chip),
                    "Chip Temp Max": max(chip),
                    "Chip Temp Avg": round(sum(chip) / len(chip), 1),
                    "Debug": "-0.0_100.0_357",
                    "Btminer Fast Boot": "disable",
                    "Upfreq Complete": 1,
                    "Power Fanspeed": 6120,
                    "Error Code Count": 0,
                    "MAC": miner.reported("mac", miner.mac.upper()),
                    "Firmware Version": f"'{FW_VERSION}'",
                }
            ],
        )

    def _read_devs(self) -> dict[str, Any]:
        physics, spec = self.miner.physics, self.miner.spec
        board_mhs = physics.hashrate_ths * 1e6 / spec.hashboards
        boards = zip(physics.board_temps_c(), physics.chip_temps_c(), strict=True)
        return self._cg(
            f"{spec.hashboards} ASC(s)",
            DEVS=[
                {
                    "ASC": i,
                    "Slot": i,
                    "Name": "SM",
                    "ID": i,
                    "Enabled": "Y",
                    "Status": "Alive",
                    "Temperature": pcb,
                    "Chip Frequency": 600,
                    "MHS av": round(board_mhs, 2),
                    "MHS 5s": round(board_mhs, 2),
                    "MHS 1m": round(board_mhs, 2),
                    "Effective Chips": spec.chips_per_board,
                    "PCB SN": f"HGPCB{i:02d}{self.miner.mac[-5:].replace(':', '')}",
                    "Chip Temp Min": chip - 4,
                    "Chip Temp Max": chip + 2,
                    "Chip Temp Avg": chip,
                }
                for i, (pcb, chip) in enumerate(boards)
            ],
        )

    _read_edevs = _read_devs

    def _read_devdetails(self) -> dict[str, Any]:
        return self._cg(
            "Device Details",
            DEVDETAILS=[
                {
                    "DEVDETAILS": i,
                    "Name": "SM",
                    "ID": i,
                    "Driver": "bitmicro",
                    "Kernel": "",
                    "Model": MODEL,
                }
                for i in range(self.miner.spec.hashboards)
            ],
        )

    def _read_pools(self) -> dict[str, Any]:
        miner = self.miner
        return self._cg(
            "1 Pool(s)",
            POOLS=[
                cgminer_pool(
                    miner.hostname,
                    miner.mining,
                    miner.physics.accepted_shares,
                    Quota=1,
                )
            ],
        )

    # ---- writes (encrypted) -------------------------------------------------

    _WRITES: ClassVar[frozenset[str]] = frozenset(
        {
            "power_off",
            "power_on",
            "set_low_power",
            "set_normal_power",
            "set_high_power",
            "adjust_power_limit",
            "restart_btminer",
            "reboot",
            "set_led",
        }
    )

    def _privileged(self, data: str) -> dict[str, Any]:
        """Decrypt with each live token's key; answer encrypted, or refuse plainly."""
        if not self.write_enabled:
            return self._msg(45, "can't access write cmd", ok=False)
        try:
            blob = base64.b64decode(data, validate=False)
        except binascii.Error, ValueError:
            return self._msg(137, "base64 decode error", ok=False)
        if not blob or len(blob) % 16:
            return self._msg(137, "base64 decode error", ok=False)
        now = time.time()
        for sign, (host_passwd_md5, issued) in list(self._tokens.items()):
            if now - issued >= TOKEN_LIFETIME_S:
                continue
            decryptor = _aes(host_passwd_md5).decryptor()
            plain = decryptor.update(blob) + decryptor.finalize()
            try:
                command = json.loads(plain.rstrip(b"\0").decode())
            except UnicodeDecodeError, ValueError:
                continue
            if not isinstance(command, dict) or command.get("token") != sign:
                continue
            reply = self._write(str(command.get("cmd", "")), command)
            encryptor = _aes(host_passwd_md5).encryptor()
            sealed = encryptor.update(_pad16(json.dumps(reply).encode()))
            return {"enc": base64.b64encode(sealed + encryptor.finalize()).decode()}
        return self._msg(135, "check token err", ok=False)

    def _write(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        if cmd not in self._WRITES:
            return self._msg(14, "invalid cmd", ok=False)
        ok = self._msg(131, "API command OK")
        if self.miner.ignore_commands:
            return ok
        physics = self.miner.physics
        if cmd == "power_off":
            physics.set_mining(False)
        elif cmd == "power_on":
            physics.set_mining(True)
        elif cmd in ("set_low_power", "set_normal_power", "set_high_power"):
            self.power_mode = cmd.split("_")[1].capitalize()
            self._apply_power()
        elif cmd == "adjust_power_limit":
            try:
                limit = int(str(args.get("power_limit", "")))
            except ValueError:
                return self._msg(132, "API command ERROR", ok=False)
            ceiling = round(self.miner.spec.nominal_w * POWER_MODES["High"])
            if not 0 < limit <= ceiling:
                return self._msg(132, "API command ERROR", ok=False)
            self.power_limit_w = limit
            self._apply_power()
            physics.reboot()  # btminer restarts to apply the new ceiling
        elif cmd == "restart_btminer":
            physics.reboot()
        elif cmd == "reboot":
            self.miner.reboot()
        elif cmd == "set_led":
            self.led_auto = str(args.get("param", "auto")) == "auto"
        return ok

    # ---- HTTP -------------------------------------------------------------

    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """LuCI on port 80 sends every browser to HTTPS (not simulated)."""
        return web.Response(
            status=307,
            headers={"Location": f"https://{self.miner.ip}/cgi-bin/luci"},
        )
