"""A ledger store for the tests: a JSON file replaced atomically on each save
(Home Assistant's ``Store`` backs the ledger in the integration)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class JsonFileStore:
    """A JSON file, replaced atomically on each save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def load(self) -> dict[str, Any] | None:
        """Read the file (None if absent)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        data: dict[str, Any] = json.loads(text)
        return data

    async def save(self, data: dict[str, Any]) -> None:
        """Write to a temporary file, fsync, then rename over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
