"""1,000 events in one message: handled in well under a second of loop time."""

from __future__ import annotations

import asyncio
from pathlib import Path
import sys
import time

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hashgrid.const import DOMAIN
from simulators.grid_signal import PATH_PREFIX, free_port

from .conftest import VEN_NAME, coordinator_of, unload_all
from .test_entry import eid, state

ROOT = Path(__file__).parents[2]
EVENTS = 1000


async def test_a_thousand_events_in_one_message(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """The VTN (another process) sends 1,000 events at once; HA stays responsive."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.grid_signal.bulk_vtn",
        str(port),
        VEN_NAME,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert (await process.stdout.readline()).strip() == b"ready"
        url = f"http://127.0.0.1:{port}{PATH_PREFIX}"
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="bulk",
            data={"kind": "grid_signal", "vtn_url": url, "ven_name": VEN_NAME},
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        process.stdin.write(f"{EVENTS}\n".encode())
        async with asyncio.timeout(120):
            assert (
                await process.stdout.readline()
            ).strip() == f"added {EVENTS}".encode()

        # CPU of this process (HA, the VEN): the VTN's own work is elsewhere.
        coordinator = coordinator_of(entry)
        cpu = time.process_time()
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        cpu = time.process_time() - cpu
        print(f"{EVENTS} events in one message: {cpu:.3f} s of CPU")

        assert len(coordinator.schedule.live()) == EVENTS
        assert state(hass, entry, "binary_sensor", "vtn_connected") == "on"
        assert hass.states.get(eid(hass, entry, "sensor", "next_event_start"))
        assert cpu < 1.0
    finally:
        await unload_all(hass)
        process.kill()
        await process.wait()
