"""A real browser adds a miner to the demo through Home Assistant's UI.

Headless Chromium (Debian's `chromium`, driven by Playwright from PyPI; no browser
is ever downloaded) logs in to the demo (`scripts/develop`) as demo/demo, opens
Settings → Devices & services → HashGrid, uses the mining site's "Add miner"
(the miner subentry flow: host, then curtailment options) for a simulated miner
the demo has not added, and checks the miner's device appears on the entry and
has its own device page.

Screenshots of every step are saved to `.artifacts/e2e/` (git-ignored; emptied
at the start of each run): 01-login.png, 02-logged-in.png, 03-integration.png,
04-add-miner-host.png, 05-curtailment-options.png, 06-created.png,
07-device-on-entry.png, 08-device-page.png, and failure.png
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

from simulators.miner import running_fleet
from tests.demo_process import free_port, start_demo, wait_for_line

try:
    from playwright.async_api import Page, async_playwright
except ImportError:  # pragma: no cover - playwright is in requirements_test.txt
    async_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from demo import PASSWORD, USERNAME, HomeAssistantAPI  # noqa: E402

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
    """Return N such that 127.0.N.1-6 (the demo's miners) and .100 are free on :80."""
    for _ in range(100):
        subnet = random.randrange(150, 250)
        try:
            with contextlib.ExitStack() as stack:
                for host in (*range(1, 7), 100):
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


SITE = "Demo mining site"


async def _site_subentries(url: str) -> int:
    """Return how many subentries (miners) the demo's mining site has."""
    async with aiohttp.ClientSession() as session:
        api = HomeAssistantAPI(session, url)
        await api.login()
        entries = await api.entries()
    return int(next(e for e in entries if e["title"] == SITE)["num_subentries"])


class Shots:
    """Numbered screenshots in ARTIFACTS (written here, not in an executor)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.count = 0
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)

    async def __call__(self, name: str) -> None:
        self.count += 1
        image = await self.page.screenshot()
        (ARTIFACTS / f"{self.count:02d}-{name}.png").write_bytes(image)


async def test_add_miner_through_the_ui(demo: Demo) -> None:
    """Log in, add a miner with the UI config flow, see its device."""
    host = f"127.0.{demo.subnet}.100"
    name = re.compile(rf"\({re.escape(host)}\)")
    miners_before = await _site_subentries(demo.url)
    started = time.monotonic()
    async with (
        running_fleet(1, host, ("luxos",)),
        async_playwright() as playwright,
    ):
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

            # Add miner: the subentry flow's host step…
            await page.get_by_role("button", name="Add miner").click()
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
            with contextlib.suppress(Exception):
                (ARTIFACTS / "failure.png").write_bytes(await page.screenshot())
            if errors:
                print("page errors:", *errors, sep="\n  ")
            raise
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)

        # Cross-check through the REST API: one more miner, and its entities.
        assert await _site_subentries(demo.url) == miners_before + 1
        slug = host.replace(".", "_")
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
