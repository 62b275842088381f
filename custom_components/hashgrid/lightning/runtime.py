"""The runtime data of a Lightning node entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import HashGridConfigEntry, KindRuntime, runtime_as
from .coordinator import LightningCoordinator
from .listener import InvoiceListener
from .settlement import Settler


@dataclass
class LightningRuntime(KindRuntime):
    """The node's coordinator, incoming-payment listener and settler."""

    coordinator: LightningCoordinator
    settler: Settler
    listener: InvoiceListener
    listener_task: asyncio.Task[None] | None = None
    #: Our BOLT12 offer per they_pay neighbour (subentry id → (offer id, bolt12)).
    offers: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Called with each invoice paid to the node (the event entity, the bus).
    on_payment_received: list[Callable[[dict[str, Any]], None]] = field(
        default_factory=list
    )

    def payment_received(self, invoice: dict[str, Any]) -> None:
        """Hand one paid invoice to everyone who follows them."""
        for handler in list(self.on_payment_received):
            handler(invoice)

    async def async_shutdown(self) -> None:
        """Stop waiting for payments."""
        if (task := self.listener_task) is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.listener_task = None

    def diagnostics(self) -> dict[str, Any]:
        """The last poll, the listener and the ledger (no rune in any of them)."""
        data = self.coordinator.data
        return {
            "address": self.coordinator.client.address,
            "last_update_success": self.coordinator.last_update_success,
            "node": None if data is None else asdict(data),
            "listener": {
                "pay_index": self.listener.pay_index,
                "received": self.listener.received,
                "errors": self.listener.errors,
            },
            "offers": {sid: offer_id for sid, (offer_id, _) in self.offers.items()},
            "settlement": self.settler.diagnostics(),
        }


def lightning_runtime(entry: HashGridConfigEntry) -> LightningRuntime:
    """Return the entry's Lightning runtime (the platforms' typed view)."""
    return runtime_as(entry, LightningRuntime)
