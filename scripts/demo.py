"""The HashGrid demo: simulated site + a real Home Assistant, configured.

Run through `scripts/develop`. Starts every simulator in this process, then
`hass -c <config>` as a child process with onboarding done, the demo user
demo/demo, and every kind of HashGrid entry configured through the real config
flow API. Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import time
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERNAME = PASSWORD = "demo"
DASHBOARD_PATH = "hashgrid-site"  # its URL: /hashgrid-site (HA wants a hyphen)
CLIENT_ID_PATH = "/"

CONFIGURATION_YAML = """\
homeassistant:
  name: HashGrid demo
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  currency: EUR
  country: NL
  time_zone: UTC
  external_url: "{url}"
  internal_url: "{url}"

frontend:
config:
api:
energy:
history:
logbook:
recorder:
  purge_keep_days: 2
conversation:
automation: !include automations.yaml
script:
system_health:
input_number:
  electricity_price:
    name: Electricity price
    min: 0
    max: 0.5
    step: 0.01
    initial: 0.12
    unit_of_measurement: EUR/kWh
    mode: slider

logger:
  default: warning
  logs:
    custom_components.hashgrid: {hashgrid_level}
    homeassistant.components.hashgrid: {hashgrid_level}
"""


def log(message: str) -> None:
    """Print a line of the demo's own output."""
    print(f"[demo] {message}", flush=True)


def prepare_config(config: Path, port: int, *, debug: bool = False) -> None:
    """Write the configuration and link the integration and blueprints in.

    HashGrid logs at INFO (a line per payment); debug (every poll) only when
    asked for.
    """
    config.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    (config / "configuration.yaml").write_text(
        CONFIGURATION_YAML.format(
            port=port, url=url, hashgrid_level="debug" if debug else "info"
        )
    )
    # Onboarding: every step but the owner user is done, so HA makes none of
    # its default entries (weather, radio, TTS: they need the network).
    onboarding = config / ".storage" / "onboarding"
    if not onboarding.exists():
        onboarding.parent.mkdir(parents=True, exist_ok=True)
        onboarding.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config", "analytics", "integration"]},
                }
            )
        )
    _write_http_config(config, port)
    automations = config / "automations.yaml"
    if not automations.exists():
        automations.write_text("[]\n")
    for link, target in (
        (
            config / "custom_components" / "hashgrid",
            ROOT / "custom_components" / "hashgrid",
        ),
        (
            config / "blueprints" / "automation" / "hashgrid",
            ROOT / "blueprints" / "automation" / "hashgrid",
        ),
    ):
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.resolve() == target:
                continue
            link.unlink() if link.is_symlink() else shutil.rmtree(link)
        link.symlink_to(target)


def _write_http_config(config: Path, port: int) -> None:
    """Store HA's HTTP server settings as confirmed (on every run: --port applies).

    Home Assistant 2026.10 keeps these settings in storage: an `http:` block in
    YAML would be imported as an unconfirmed trial, which HA reverts (to port
    8123) and restarts after 5 minutes unless someone confirms it in the UI.
    """
    from homeassistant.components.http.config import (
        HTTP_STORAGE_SCHEMA,
        KEY_PENDING,
        KEY_STABLE,
        KEY_YAML_MIGRATION_DONE,
        STORAGE_KEY,
        STORAGE_MINOR_VERSION,
        STORAGE_VERSION,
    )

    stable = HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port})
    stable |= {
        "created_at": datetime.now(UTC).isoformat(),
        "error": None,
        "error_message": None,
    }
    path = config / ".storage" / STORAGE_KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "version": STORAGE_VERSION,
                "minor_version": STORAGE_MINOR_VERSION,
                "key": STORAGE_KEY,
                "data": {
                    KEY_STABLE: stable,
                    KEY_PENDING: None,
                    KEY_YAML_MIGRATION_DONE: True,
                },
            },
            indent=2,
        )
    )
    path.chmod(0o600)


class HomeAssistantAPI:
    """Just enough of HA's HTTP API to onboard, log in and add entries."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.client_id = f"{url}{CLIENT_ID_PATH}"
        self.token: str | None = None

    async def wait_up(self, limit_s: float) -> None:
        """Wait until HA answers HTTP."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                async with self.session.get(f"{self.url}/manifest.json") as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
        raise TimeoutError(f"Home Assistant did not answer at {self.url}")

    @property
    def _headers(self) -> dict[str, str]:
        """The logged-in user's authorization (none before logging in)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self._request(method, path, **kwargs)
        if status == 401 and self.token and not path.startswith("/auth/"):
            # An access token lasts 30 minutes: log in again, once.
            await self.login()
            status, body = await self._request(method, path, **kwargs)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {body}")
        return json.loads(body) if body else None

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.session.request(
            method, f"{self.url}{path}", headers=self._headers, **kwargs
        ) as resp:
            return resp.status, await resp.text()

    async def onboarding_needed(self) -> bool:
        """Return True while the owner user still has to be created."""
        async with self.session.get(f"{self.url}/api/onboarding") as resp:
            if resp.status == 404:  # onboarded: HA serves no onboarding API
                return False
            resp.raise_for_status()
            steps = await resp.json()
        return any(step["step"] == "user" and not step["done"] for step in steps)

    async def onboard(self) -> None:
        """Create the owner demo/demo (the only onboarding step left)."""
        result = await self._json(
            "POST",
            "/api/onboarding/users",
            json={
                "client_id": self.client_id,
                "name": "Demo",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )
        await self._token(result["auth_code"])

    async def login(self, username: str = USERNAME, password: str = PASSWORD) -> None:
        """Log in through HA's own auth API (login flow, then token)."""
        flow = await self._json(
            "POST",
            "/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        result = await self._json(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json={
                "client_id": self.client_id,
                "username": username,
                "password": password,
            },
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"login refused: {result.get('errors')}")
        await self._token(result["result"])

    async def _token(self, code: str) -> None:
        async with self.session.post(
            f"{self.url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        ) as resp:
            resp.raise_for_status()
            self.token = (await resp.json())["access_token"]

    async def entries(self) -> list[dict[str, Any]]:
        """Return the config entries of the hashgrid domain."""
        entries: list[dict[str, Any]] = await self._json(
            "GET", "/api/config/config_entries/entry?domain=hashgrid"
        )
        return entries

    async def flow(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Run the hashgrid config flow through the given menu/form steps."""
        result: dict[str, Any] = await self._json(
            "POST",
            "/api/config/config_entries/flow",
            json={"handler": "hashgrid", "show_advanced_options": False},
        )
        for step in steps:
            result = await self._json(
                "POST",
                f"/api/config/config_entries/flow/{result['flow_id']}",
                json=step,
            )
        return result

    async def subentry_flow(
        self,
        entry_id: str,
        subentry_type: str,
        steps: list[dict[str, Any]],
        *,
        subentry_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a subentry flow (e.g. add a miner) through the given steps; with
        a subentry_id, that subentry's reconfigure flow."""
        result: dict[str, Any] = await self._json(
            "POST",
            "/api/config/config_entries/subentries/flow",
            json={
                "handler": [entry_id, subentry_type],
                "show_advanced_options": False,
                **({"subentry_id": subentry_id} if subentry_id else {}),
            },
        )
        for step in steps:
            result = await self._json(
                "POST",
                f"/api/config/config_entries/subentries/flow/{result['flow_id']}",
                json=step,
            )
        return result

    async def ws(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Send commands over HA's websocket API; return each one's result message."""
        results: list[dict[str, Any]] = []
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (answer := await ws.receive_json())["type"] != "auth_ok":
                raise RuntimeError(f"websocket auth refused: {answer}")
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                while True:
                    message = await ws.receive_json()
                    if message.get("id") == number and message["type"] == "result":
                        break
                results.append(message)
        return results

    async def ws_call(self, command: dict[str, Any]) -> Any:
        """One websocket command; its result, or RuntimeError with HA's error."""
        (message,) = await self.ws(command)
        if not message["success"]:
            raise RuntimeError(f"{command['type']}: {message['error']}")
        return message.get("result")

    async def template(self, template: str) -> str:
        """Render a template in HA (how the demo finds device and entry ids)."""
        async with self.session.post(
            f"{self.url}/api/template",
            headers=self._headers,
            json={"template": template},
        ) as resp:
            body = await resp.text()
            if resp.status >= 400:
                raise RuntimeError(f"template {template}: {resp.status} {body}")
            return body.strip()

    async def automation_exists(self, automation_id: str) -> bool:
        """Return True if an automation with this id is saved."""
        async with self.session.get(
            f"{self.url}/api/config/automation/config/{automation_id}",
            headers=self._headers,
        ) as resp:
            return resp.status == 200

    async def save_automation(self, automation_id: str, config: dict[str, Any]) -> None:
        """Save an automation as the UI's editor does (then HA reloads it)."""
        await self._json(
            "POST", f"/api/config/automation/config/{automation_id}", json=config
        )

    async def states(self) -> dict[str, dict[str, Any]]:
        """Return every entity's state, by entity id."""
        return {s["entity_id"]: s for s in await self._json("GET", "/api/states")}

    async def set_state(self, entity_id: str, state: dict[str, Any]) -> None:
        """Set a state as a sensor outside HA does (POST /api/states/<id>)."""
        await self._json("POST", f"/api/states/{entity_id}", json=state)

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any]
    ) -> None:
        """Call a service (an action) as the UI does."""
        await self._json("POST", f"/api/services/{domain}/{service}", json=data)

    async def wait_for_entity(
        self, match: Callable[[dict[str, Any]], bool], limit_s: float
    ) -> str:
        """Wait until an entity's state matches; return its entity id."""
        deadline = time.monotonic() + limit_s
        while True:
            for state in (await self.states()).values():
                if match(state):
                    return str(state["entity_id"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"no entity matched in {limit_s} s")
            await asyncio.sleep(0.5)

    async def components(self) -> list[str]:
        """Return the components HA has loaded."""
        components: list[str] = (await self._json("GET", "/api/config"))["components"]
        return components


async def configure_entries(api: HomeAssistantAPI, site: Any) -> None:
    """Add every entry of the demo, through the config flow, on the first run."""
    if await api.entries():
        log("HashGrid is already configured (delete the config folder to start afresh)")
        return
    for setup in site.entry_setups:
        await setup.run(api)
        log(f"configured: {setup.title}")


async def post_rooms(api: HomeAssistantAPI, site: Any) -> None:
    """Post each simulated room's temperature to HA, every few seconds, for as
    long as the demo runs (REST-posted states are not restored when HA
    restarts: the next post brings them back)."""
    from simulators.demo_site import ROOM_POST_EVERY_S

    failing = False
    while True:
        for room in site.rooms:
            try:
                await api.set_state(room.sensor, room.state())
                failing = False
            except (aiohttp.ClientError, RuntimeError, TimeoutError, OSError) as err:
                if not failing:
                    log(f"could not post {room.sensor} (tried again): {err}")
                failing = True
        await asyncio.sleep(ROOM_POST_EVERY_S)


async def instantiate_blueprints(api: HomeAssistantAPI, site: Any) -> None:
    """Save the demo's automations, each made from one of HashGrid's blueprints."""
    for automation in site.automations:
        if await api.automation_exists(automation.id):
            continue
        inputs: dict[str, Any] = {}
        for name, template in automation.template_inputs.items():
            rendered = await api.template(template)
            inputs[name] = (
                json.loads(rendered) if rendered.startswith("[") else rendered
            )
        await api.save_automation(
            automation.id,
            {
                "alias": automation.alias,
                "description": automation.description,
                "use_blueprint": {
                    "path": f"hashgrid/{automation.blueprint}.yaml",
                    "input": inputs | automation.inputs,
                },
            },
        )
        log(f"automation from a blueprint: {automation.alias}")


async def _wait_for_miners(api: HomeAssistantAPI, count: int, limit_s: float) -> None:
    """Wait until every miner has its entities (the site reloads as each is
    added) and the site's Total power counts them all."""
    from simulators.demo_site import SITE, miner_tiles

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        states = await api.states()
        total = states.get(f"sensor.{SITE}_total_power", {}).get("state")
        if len(miner_tiles(states)) >= count and total not in (
            None,
            "unknown",
            "unavailable",
        ):
            return
        await asyncio.sleep(0.5)
    log("not every miner answered yet: the dashboard shows those that did")


async def set_up_views(api: HomeAssistantAPI, site: Any) -> None:
    """Make the HashGrid dashboard the Overview, configure the Energy dashboard
    and turn the demo's notifications on — each only if not done before."""
    from simulators.demo_site import (
        KILOWATT_SENSORS,
        MINER_COUNT,
        dashboard_config,
        energy_prefs,
    )

    await _wait_for_miners(api, MINER_COUNT, 60)
    dashboards = await api.ws_call({"type": "lovelace/dashboards/list"})
    if not any(d["url_path"] == DASHBOARD_PATH for d in dashboards):
        for entity_id in KILOWATT_SENSORS:  # one unit on the history graph
            await api.ws_call(
                {
                    "type": "config/entity_registry/update",
                    "entity_id": entity_id,
                    "options_domain": "sensor",
                    "options": {"unit_of_measurement": "kW"},
                }
            )
        # Their first readings, recorded in W, would tower over the kW graph.
        await api._json(
            "POST",
            "/api/services/recorder/purge_entities",
            json={"entity_id": list(KILOWATT_SENSORS), "keep_days": 0},
        )
        await api.ws_call(
            {
                "type": "lovelace/dashboards/create",
                "url_path": DASHBOARD_PATH,
                "title": "HashGrid",
                "icon": "mdi:pickaxe",
                "mode": "storage",
                "show_in_sidebar": True,
                "require_admin": False,
            }
        )
        await api.ws_call(
            {
                "type": "lovelace/config/save",
                "url_path": DASHBOARD_PATH,
                "config": dashboard_config(await api.states()),
            }
        )
        # The first page after login (Settings → Dashboards → set as default).
        core = await api.ws_call({"type": "frontend/get_system_data", "key": "core"})
        await api.ws_call(
            {
                "type": "frontend/set_system_data",
                "key": "core",
                "value": {
                    **((core or {}).get("value") or {}),
                    "default_panel": DASHBOARD_PATH,
                },
            }
        )
        log("the HashGrid dashboard is the first page after login")
    (energy,) = await api.ws({"type": "energy/get_prefs"})
    if not energy["success"] or not energy["result"].get("energy_sources"):
        await api.ws_call(
            {"type": "energy/save_prefs", **energy_prefs(await api.states())}
        )
        log("the Energy dashboard shows solar, battery, grid and the miners")
    for automation_id, config in site.notifications:
        if not await api.automation_exists(automation_id):
            await api.save_automation(automation_id, config)
            log(f"notifications: {config['alias']}")


async def run(args: argparse.Namespace) -> int:
    """Start the site, then Home Assistant; wait for Ctrl-C."""
    from simulators.demo_site import MINER_COUNT, running_demo_site

    config = args.config
    url = f"http://127.0.0.1:{args.port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with AsyncExitStack() as stack:
        site = await stack.enter_async_context(
            running_demo_site(args.base_address, args.modbus_port, args.vtn_port)
        )
        log(f"simulated site running: {site.summary}")
        hass = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "hass"),
            "-c",
            str(config),
            "--skip-pip",
            stdout=None if args.verbose else asyncio.subprocess.DEVNULL,
            stderr=None if args.verbose else asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.push_async_callback(_stop_process, hass)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        api = HomeAssistantAPI(session, url)
        started = time.monotonic()
        waiter = asyncio.ensure_future(api.wait_up(args.timeout))
        exited = asyncio.ensure_future(hass.wait())
        await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            waiter.cancel()
            log(f"Home Assistant exited early (code {hass.returncode}); run with -v")
            return 1
        await waiter
        if await api.onboarding_needed():
            await api.onboard()
            log("onboarding done")
        await api.login()
        rooms = asyncio.create_task(post_rooms(api, site), name="demo rooms")
        stack.push_async_callback(_cancel, rooms)
        await configure_entries(api, site)
        # The solar automation adds the miners' draw (the site's Total power) to
        # the surplus, which counts every miner: it starts once Total power does.
        await _wait_for_miners(api, MINER_COUNT, 60)
        await instantiate_blueprints(api, site)
        await set_up_views(api, site)
        log(f"Home Assistant is up at {url} after {time.monotonic() - started:.1f} s")
        log(f"log in as {USERNAME} / {PASSWORD}")
        for line in site.watch_hints:
            log(line)
        log("Ctrl-C stops everything")
        await asyncio.wait(
            {asyncio.ensure_future(stop.wait()), exited},
            return_when=asyncio.FIRST_COMPLETED,
        )
        log("stopping")
        for hook in site.stop_hooks:
            hook()
    return 0


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / ".demo" / "config"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("HASHGRID_DEMO_PORT", 8123))
    )
    parser.add_argument(
        "--base-address", default="127.0.1.1", help="first miner's loopback address"
    )
    parser.add_argument(
        "--modbus-port",
        type=int,
        default=15020,
        help="the SunSpec inverter's Modbus port (the Victron GX uses the next)",
    )
    parser.add_argument(
        "--vtn-port",
        type=int,
        default=15080,
        help="the OpenADR VTN's HTTP port (on 127.0.0.1)",
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show Home Assistant's output"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log HashGrid at DEBUG (every poll); INFO otherwise",
    )
    args = parser.parse_args()
    if _port_in_use(args.port):
        log(f"port {args.port} is in use: is another Home Assistant running? (--port)")
        return 1
    args.config = Path(args.config).resolve()
    prepare_config(args.config, args.port, debug=args.debug)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
