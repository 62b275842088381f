"""A real browser adds a miner to the demo through Home Assistant's UI.

Headless Chromium (Debian's `chromium`, driven by Playwright from PyPI; no browser
is ever downloaded) logs in to the demo (`scripts/develop`) as demo/demo, opens
Settings → Devices & services → HashGrid, uses "Add miner" on the demo's main
mining site (HA asks which: the office heater has a site of its own; then the
miner subentry flow: host, then curtailment options) for a simulated miner
the demo has not added, and checks the miner's device appears on the entry and
has its own device page.

Screenshots of every step are saved to `.artifacts/e2e/` (git-ignored; emptied
at the start of each run): 01-login.png, 02-logged-in.png, 03-integration.png,
04-add-miner-site.png, 05-add-miner-host.png, 06-curtailment-options.png,
07-created.png, 08-device-on-entry.png, 09-device-page.png, and failure.png
when a step fails.

Skipped when /usr/bin/chromium (or Playwright) is not installed; `.ci/run`
installs Chromium.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import json
import os
from pathlib import Path
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

import aiohttp
import pytest

from simulators.demo_site import MINER_COUNT
from simulators.miner import running_fleet
from tests.demo_process import free_port, start_demo, wait_for_line

try:
    from playwright.async_api import Locator, Page, async_playwright
except ImportError:  # pragma: no cover - playwright is in requirements_test.txt
    async_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from demo import DASHBOARD_PATH, PASSWORD, USERNAME, HomeAssistantAPI  # noqa: E402

CHROMIUM = Path(os.environ.get("HASHGRID_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / ".artifacts" / "e2e"
# Flags Chromium needs here: no sandbox (root in a container), no GPU, and no
# background connections to Google's services (there is no network for them).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 20_000  # any one UI step
BOOT_TIMEOUT_S = 120  # the demo up and configured

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        async_playwright is None, reason="playwright is not installed (scripts/setup)"
    ),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
    ),
]


def _free_subnet() -> int:
    """Return N such that 127.0.N.1-7 (the demo's miners) and .100 are free on :80."""
    for _ in range(100):
        subnet = random.randrange(150, 250)
        try:
            with contextlib.ExitStack() as stack:
                for host in (*range(1, MINER_COUNT + 1), 100):
                    sock = stack.enter_context(socket.socket())
                    sock.bind((f"127.0.{subnet}.{host}", 80))
        except OSError:
            continue
        return subnet
    raise RuntimeError("no free loopback /24 for simulated miners")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Stop the demo (SIGINT, as Ctrl-C), killing its group if it hangs."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 60)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


class Demo:
    """The running demo: its URL, config folder and address block."""

    def __init__(self, url: str, config: Path, subnet: int) -> None:
        self.url = url
        self.config = config
        self.subnet = subnet

    def http_config_pending(self) -> bool:
        """True when HA runs a not yet confirmed HTTP config (it asks in the UI)."""
        store = json.loads((self.config / ".storage" / "http").read_text())
        pending = store["data"].get("pending")
        return pending is not None and pending.get("error") is None


@pytest.fixture
async def demo(loopback: None) -> AsyncIterator[Demo]:
    """scripts/develop on free ports and its own loopback block; stopped after."""
    subnet = _free_subnet()
    port = free_port()
    config = Path(tempfile.mkdtemp(prefix="hashgrid-e2e-"))
    proc = await start_demo(
        config / "config", port, f"127.0.{subnet}.1", start_new_session=True
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(BOOT_TIMEOUT_S):
            await wait_for_line(proc.stdout, "Ctrl-C stops everything")
        yield Demo(f"http://127.0.0.1:{port}", config / "config", subnet)
    finally:
        await _stop(proc)
        shutil.rmtree(config, ignore_errors=True)


#: The demo's main site (the office heater has a site of its own).
SITE = "Demo mining site"


async def _site_subentries(url: str) -> int:
    """Return how many subentries (miners) the demo's mining site has."""
    async with aiohttp.ClientSession() as session:
        api = HomeAssistantAPI(session, url)
        await api.login()
        entries = await api.entries()
    return int(next(e for e in entries if e["title"] == SITE)["num_subentries"])


_EMPTIED: list[bool] = []


class Shots:
    """Numbered screenshots in ARTIFACTS (written here, not in an executor);
    the folder is emptied once per run, each test's shots carry its prefix."""

    def __init__(self, page: Page, prefix: str = "") -> None:
        self.page = page
        self.prefix = prefix
        self.count = 0
        if not _EMPTIED:
            shutil.rmtree(ARTIFACTS, ignore_errors=True)
            _EMPTIED.append(True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def __call__(self, name: str, *, full_page: bool = False) -> None:
        self.count += 1
        image = await self.page.screenshot(full_page=full_page)
        (ARTIFACTS / f"{self.prefix}{self.count:02d}-{name}.png").write_bytes(image)

    async def failure(self) -> None:
        with contextlib.suppress(Exception):
            image = await self.page.screenshot(full_page=True)
            (ARTIFACTS / f"{self.prefix}failure.png").write_bytes(image)


async def test_add_miner_through_the_ui(demo: Demo) -> None:
    """Log in, add a miner with the UI config flow, see its device."""
    host = f"127.0.{demo.subnet}.100"
    miners_before = await _site_subentries(demo.url)
    started = time.monotonic()
    async with (
        running_fleet(1, host, ("luxos",)) as fleet,
        async_playwright() as playwright,
    ):
        # Named by make, model and serial suffix, never its address: the
        # demo's first miner already ends in the same four, so eight here.
        serial = fleet.miners[0].serial
        assert serial is not None
        suffix = serial[-8:].upper()
        name = re.compile(rf"S19j Pro {re.escape(suffix)}")
        profile = Path(tempfile.mkdtemp(prefix="hashgrid-e2e-chromium-"))
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.pages[0] if context.pages else await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        shot = Shots(page)
        try:
            # The login page (the frontend redirects there).
            await page.goto(f"{demo.url}/")
            await page.locator("input[name=username]").fill(USERNAME)
            await page.locator("input[name=password]").fill(PASSWORD)
            await shot("login")
            await page.get_by_role("button", name="Log in").click()
            await page.get_by_role("link", name="Settings").wait_for()
            await shot("logged-in")
            if demo.http_config_pending():
                # HA 2026.10 moves YAML `http:` into a trial config the owner
                # confirms (else it reverts and restarts after five minutes).
                confirm = page.locator("dialog-http-pending-config").get_by_role(
                    "button", name="Confirm"
                )
                await confirm.click()
                await confirm.wait_for(state="hidden")

            # Settings → Devices & services → HashGrid.
            await page.goto(f"{demo.url}/config/integrations/integration/hashgrid")
            await page.get_by_role("heading", name="HashGrid", level=1).wait_for()
            await page.get_by_text(SITE).first.wait_for()
            await shot("integration")

            # Add miner: HA asks to which site (the main one; the office
            # heater's is the other), then the subentry flow's host step…
            await page.get_by_role("button", name="Add miner").click()
            picker = page.locator("dialog-pick-config-entry")
            await picker.get_by_text(SITE, exact=True).wait_for()
            await shot("add-miner-site")
            await picker.get_by_text(SITE, exact=True).click()
            flow = page.locator("dialog-data-entry-flow")
            await flow.get_by_text("HashGrid asks the miner what it is").wait_for()
            await flow.locator("input[name=host]").fill(host)
            await shot("add-miner-host")
            await flow.get_by_role("button", name="Submit").click()

            # …then its curtailment options, filled from what the miner said.
            await flow.get_by_text(
                f"at {host}. Miners with a lower priority"
            ).wait_for()
            priority = page.get_by_role("spinbutton", name="Priority")
            await priority.fill("80")
            await shot("curtailment-options")
            await flow.get_by_role("button", name="Submit").click()
            await flow.get_by_text("Created configuration for").wait_for()
            await flow.get_by_text(name).first.wait_for()
            assert host not in await flow.inner_text()
            await shot("created")
            await flow.get_by_role("button", name="Finish").click()
            await flow.get_by_role("button", name="Finish").wait_for(state="hidden")

            # The miner's device is listed under its subentry on the entry…
            device = page.get_by_role(
                "button", name=re.compile(rf"{name.pattern}.*entit")
            )
            await device.wait_for()
            await device.scroll_into_view_if_needed()
            await shot("device-on-entry")

            # …and has its own device page with the miner's entities.
            await device.click()
            await page.wait_for_url(re.compile(r"/config/devices/device/"))
            await page.get_by_text(name).first.wait_for()
            await page.get_by_text("Hashrate").first.wait_for()
            await shot("device-page")
        except Exception:
            await shot.failure()
            if errors:
                print("page errors:", *errors, sep="\n  ")
            raise
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)

        # Cross-check through the REST API: one more miner, and its entities.
        assert await _site_subentries(demo.url) == miners_before + 1
        slug = f"_{suffix.lower()}_"
        async with aiohttp.ClientSession() as session:
            api = HomeAssistantAPI(session, demo.url)
            await api.login()
            async with asyncio.timeout(30):
                while True:
                    states = await api.states()
                    if any(slug in e and e.endswith("_hashrate") for e in states):
                        break
                    await asyncio.sleep(0.5)
    print(f"browser steps took {time.monotonic() - started:.1f} s")


async def _settle_alice(url: str) -> None:
    """Settle Alice now (as her automation does every 0.2 kWh): a payment the
    dashboard shows, without waiting for the miners to use 0.2 kWh."""
    async with aiohttp.ClientSession() as session:
        api = HomeAssistantAPI(session, url)
        await api.login()
        node = next(
            e["entry_id"]
            for e in await api.entries()
            if e["title"].startswith("Lightning node")
        )
        async with asyncio.timeout(60):
            while True:
                states = await api.states()
                if states["sensor.alice_last_settlement"]["state"] == "paid":
                    return
                unpaid = states["sensor.alice_unpaid_energy"]["state"]
                if unpaid not in ("unknown", "unavailable") and float(unpaid) > 0.01:
                    await api._json(
                        "POST",
                        "/api/services/hashgrid/settle_neighbour",
                        json={"config_entry_id": node, "neighbour": "Alice"},
                    )
                await asyncio.sleep(1)


async def _notifications(url: str) -> list[dict[str, str]]:
    """The persistent notifications shown under the bell."""
    async with aiohttp.ClientSession() as session:
        api = HomeAssistantAPI(session, url)
        await api.login()
        notes: list[dict[str, str]] = await api.ws_call(
            {"type": "persistent_notification/get"}
        )
    return notes


async def test_hashgrid_dashboard_and_energy(demo: Demo) -> None:
    """The first page after login is the HashGrid dashboard: the site's power,
    effective budget and surplus (kW), its controls, the DR calendar, a miner and
    a neighbour's last payment; the Energy dashboard has solar, battery, grid
    and the miners."""
    settled = asyncio.ensure_future(_settle_alice(demo.url))
    async with async_playwright() as playwright:
        profile = Path(tempfile.mkdtemp(prefix="hashgrid-e2e-chromium-"))
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.pages[0] if context.pages else await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        shot = Shots(page, "dashboard-")
        try:
            await page.goto(f"{demo.url}/")
            await page.locator("input[name=username]").fill(USERNAME)
            await page.locator("input[name=password]").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            # The first page after login: the HashGrid dashboard.
            await page.wait_for_url(re.compile(rf"/{DASHBOARD_PATH}(/|$)"))
            if demo.http_config_pending():
                confirm = page.locator("dialog-http-pending-config").get_by_role(
                    "button", name="Confirm"
                )
                await confirm.click()
                await confirm.wait_for(state="hidden")
            for text in (
                "Mining site",
                "Site power",
                "Effective budget",
                "Surplus power",
                "Power budget",
                "Binding limit",
                "Electricity price",
                "DR event active",
                "DR events",
                "Miners",
                "Neighbours",
                "Alice (we pay)",
                "Bob (pays us)",
                "Heating",
                "Held off by",
            ):
                await page.get_by_text(text, exact=True).first.wait_for()
            # The office heater's thermostat, in heat mode at its target.
            thermostat = page.locator("hui-thermostat-card").first
            await expect_text(thermostat, re.compile(r"Office"))
            await expect_text(thermostat, re.compile(r"20(\.0)?\s*°C"))
            # Power, effective budget and surplus in one unit, on one graph.
            graph = page.locator("hui-history-graph-card")
            await graph.get_by_text(
                "Site power, effective budget and surplus (kW)"
            ).wait_for()
            for tile in ("Site power", "Effective budget", "Surplus power"):
                card = page.locator("hui-tile-card").filter(has_text=tile).first
                await expect_text(card, re.compile(r"\d kW"))
            # The miners, by name (never an address).
            await page.get_by_text("AntMiner S19j Pro 0000", exact=True).wait_for()
            assert f"127.0.{demo.subnet}." not in await page.inner_text("body")
            # A neighbour's last payment.
            await asyncio.wait_for(settled, 90)
            alice = page.locator("hui-entities-card").filter(has_text="Alice (we pay)")
            await expect_text(alice, re.compile(r"Last settlement\s+Paid"))
            await expect_text(alice, re.compile(r"Paid\s+[1-9][\d,]* sat"))
            await shot("hashgrid-dashboard", full_page=True)
            # The payment was notified too (the demo's notification automations).
            async with asyncio.timeout(30):
                while True:
                    notes = await _notifications(demo.url)
                    if any(
                        n["title"] == "Lightning payment"
                        and n["message"].startswith("Paid Alice")
                        for n in notes
                    ):
                        break
                    await asyncio.sleep(0.5)
            await page.get_by_role("button", name="Notifications").first.click()
            await page.get_by_text("Lightning payment").first.wait_for()
            await asyncio.sleep(1)  # the drawer slides in
            await shot("notifications")
            await page.keyboard.press("Escape")

            # The Energy dashboard: solar, battery and grid …
            await page.goto(f"{demo.url}/energy")
            for text in ("Solar", "Battery", "Grid"):
                await page.get_by_text(text, exact=True).first.wait_for()
            await shot("energy-summary")
            # … its live view draws each miner's flow (on a canvas) …
            await page.goto(f"{demo.url}/energy/now")
            await page.get_by_text("Current power flow").first.wait_for()
            await asyncio.sleep(2)  # the chart's animation
            await shot("energy-now")
            # … from the miners configured as individual devices.
            await page.goto(f"{demo.url}/config/energy")
            await page.get_by_text("Individual devices").first.wait_for()
            for miner in ("AntMiner S19j Pro 0000", "BitAxe Gamma"):
                await page.get_by_text(re.compile(re.escape(miner))).first.wait_for()
            await shot("energy-config", full_page=True)
        except Exception:
            await shot.failure()
            if errors:
                print("page errors:", *errors, sep="\n  ")
            raise
        finally:
            settled.cancel()
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)


# An element's text through its shadow roots (Home Assistant's cards are web
# components: inner_text stops at the shadow boundary).
DEEP_TEXT = """el => {
  const out = [];
  const walk = node => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.nodeName === "STYLE" || node.nodeName === "SCRIPT") return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(el);
  return out.join(" ");
}"""


async def expect_text(locator: Locator, pattern: re.Pattern[str]) -> None:
    """Wait until the locator's text matches (the page updates live)."""
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while True:
        await locator.wait_for()
        text = " ".join((await locator.evaluate(DEEP_TEXT)).split())
        if pattern.search(text):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern.pattern!r} not in {text!r}")
        await asyncio.sleep(0.5)
