"""climate entities of every HashGrid entry kind (each kind supplies its own)."""

from homeassistant.const import Platform

from .kinds import platform_entry_setup

PARALLEL_UPDATES = 0

async_setup_entry = platform_entry_setup(Platform.CLIMATE)
