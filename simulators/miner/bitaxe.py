"""Bitaxe running AxeOS (ESP-Miner): HTTP only, JSON under /api.

pyasic identifies it by "AxeOS" in the web page and picks the class from
`ASICModel` in /api/system/info (BM1370 is a Bitaxe Gamma). AxeOS before 2.14
cannot stop mining, only restart. From 2.14 (knob: `personality.version`) it
pauses and resumes: `POST /api/system/pause` and `/api/system/resume`, and
`/api/system/info` reports `miningPaused` (bitaxeorg/ESP-Miner's
main/http_server/openapi.yaml); pyasic 0.79 knows neither.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from aiohttp import web

from .firmware import Firmware
from .web import not_found

VERSION = "v2.6.1"
# The first AxeOS release that pauses and resumes mining.
PAUSE_VERSION = (2, 14)
ASIC_MODEL = "BM1370"
SMALL_CORES = 2040
FREQUENCY_MHZ = 525
CORE_VOLTAGE_MV = 1150

HOME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>AxeOS</title></head><body><app-root></app-root></body></html>"""


class Bitaxe(Firmware):
    """AxeOS: system info, ASIC info, restart and settings over HTTP."""

    name: ClassVar[str] = "bitaxe"
    serves_rpc: ClassVar[bool] = False

    def __init__(self, miner: Any) -> None:
        """Start with automatic fan control."""
        super().__init__(miner)
        self.frequency = FREQUENCY_MHZ
        self.auto_fan = True
        self.version = VERSION

    @property
    def can_pause(self) -> bool:
        """Return True when this AxeOS release pauses and resumes mining."""
        try:
            release = tuple(int(p) for p in self.version.lstrip("v").split(".")[:2])
        except ValueError:
            return False
        return release >= PAUSE_VERSION

    def on_reboot(self) -> None:
        """AxeOS always mines after a restart."""
        self.miner.physics.set_mining(True)

    def system_info(self) -> dict[str, Any]:
        """Return /api/system/info as AxeOS 2.x does."""
        miner, physics = self.miner, self.miner.physics
        power = physics.power_w
        voltage = 5.0
        chip_temp = physics.chip_temps_c()[0]
        return {
            "power": miner.reported("power_w", round(power, 2)),
            "voltage": voltage * 1000,
            "current": round(power / voltage * 1000, 1),
            "temp": chip_temp,
            "vrTemp": round(physics.board_temps_c()[0]),
            "maxPower": 40,
            "nominalVoltage": 5,
            "hashRate": miner.reported_ghs(physics.hashrate_ths),
            "expectedHashrate": round(miner.spec.nominal_ths * 1000),
            "bestDiff": "1.2M",
            "bestSessionDiff": "310k",
            "stratumDiff": int(miner.spec.pool_difficulty),
            "isUsingFallbackStratum": 0,
            "freeHeap": 8388608,
            "coreVoltage": CORE_VOLTAGE_MV,
            "coreVoltageActual": CORE_VOLTAGE_MV - 12,
            "frequency": self.frequency,
            "ssid": "hashgrid",
            "macAddr": miner.reported("mac", miner.mac.upper()),
            "hostname": miner.hostname,
            "wifiStatus": "Connected!",
            "wifiRSSI": -51,
            "apEnabled": 0,
            "sharesAccepted": physics.accepted_shares,
            "sharesRejected": 0,
            "uptimeSeconds": physics.uptime_s,
            "asicCount": miner.spec.chips_per_board,
            "smallCoreCount": SMALL_CORES,
            "ASICModel": ASIC_MODEL,
            "stratumURL": "pool.hashgrid.invalid",
            "stratumPort": 3333,
            "stratumUser": f"hashgrid.{miner.hostname}",
            "fallbackStratumURL": "",
            "fallbackStratumPort": 3333,
            "fallbackStratumUser": "",
            "version": self.version,
            "idfVersion": "v5.4.1",
            "boardVersion": "601",
            "runningPartition": "ota_0",
            "flipscreen": 1,
            "overheat_mode": 0,
            "invertscreen": 0,
            "autofanspeed": 1 if self.auto_fan else 0,
            "fanspeed": min(100, physics.fan_rpms()[0] // 60),
            "temptarget": 60,
            "fanrpm": physics.fan_rpms()[0],
        } | ({"miningPaused": not physics.mining} if self.can_pause else {})

    async def http_reply(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve AxeOS's page and API."""
        route = (request.method, request.path)
        if route in (("GET", "/"), ("GET", "/index.html")):
            return web.Response(text=HOME_PAGE, content_type="text/html")
        if route == ("GET", "/api/system/info"):
            return web.json_response(self.system_info())
        if route == ("GET", "/api/system/asic"):
            return web.json_response(
                {
                    "ASICModel": ASIC_MODEL,
                    "deviceModel": "Gamma",
                    "asicCount": self.miner.spec.chips_per_board,
                    "defaultFrequency": FREQUENCY_MHZ,
                    "frequencyOptions": [400, 490, 525, 550, 600, 625],
                    "defaultVoltage": CORE_VOLTAGE_MV,
                    "voltageOptions": [1000, 1060, 1100, 1150, 1200, 1250],
                }
            )
        if route == ("POST", "/api/system/restart"):
            if not self.miner.ignore_commands:
                self.miner.reboot()
            # AxeOS answers this one in plain text, not JSON.
            return web.Response(text="System will restart shortly.")
        if self.can_pause and route in (
            ("POST", "/api/system/pause"),
            ("POST", "/api/system/resume"),
        ):
            if not self.miner.ignore_commands:
                self.miner.physics.set_mining(route[1].endswith("resume"))
            return web.json_response({"paused": not self.miner.mining})
        if route == ("PATCH", "/api/system"):
            try:
                settings = json.loads(await request.read() or b"{}")
            except ValueError:
                return web.Response(status=400, text="Invalid JSON")
            if not self.miner.ignore_commands:
                self.frequency = int(settings.get("frequency", self.frequency))
                self.auto_fan = bool(settings.get("autofanspeed", self.auto_fan))
            return web.Response(status=200)
        return not_found()
