"""Constants for the HashGrid integration."""

from __future__ import annotations

from enum import StrEnum
import logging
from typing import Final

DOMAIN: Final = "hashgrid"
LOGGER = logging.getLogger(__package__)

CONF_KIND: Final = "kind"


class EntryKind(StrEnum):
    """The four kinds of HashGrid config entry (the config flow's menu)."""

    MINING_SITE = "mining_site"
    MICROGRID = "microgrid"
    LIGHTNING_NODE = "lightning_node"
    GRID_SIGNAL = "grid_signal"
