"""Follow incoming payments with ``waitanyinvoice`` (a long wait, not polling).

No Home Assistant imports: the HA glue runs :meth:`InvoiceListener.run` as a
background task, cancels it at unload, and gets each paid invoice through the
``on_paid`` callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from typing import Any

from .client import NodeClient
from .errors import LightningError

_LOGGER = logging.getLogger(__name__)


class InvoiceListener:
    """Waits for the next paid invoice, forever; backs off after errors."""

    def __init__(
        self,
        client: NodeClient,
        on_paid: Callable[[dict[str, Any]], None],
        *,
        wait_timeout_s: int,
        backoff_s: float,
        backoff_max_s: float,
    ) -> None:
        """Call ``on_paid`` with each invoice paid after the listener starts."""
        self.client = client
        self.on_paid = on_paid
        self.wait_timeout_s = wait_timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        #: The pay_index of the last invoice seen (None until first known).
        self.pay_index: int | None = None
        self.errors = 0
        self.received = 0

    async def async_prime(self) -> None:
        """Start after the last invoice paid so far (raises LightningError)."""
        invoices = (await self.client.call("listinvoices"))["invoices"]
        self.pay_index = max(
            (int(i.get("pay_index") or 0) for i in invoices), default=0
        )

    async def run(self) -> None:
        """Run until cancelled."""
        delay = self.backoff_s
        while True:
            try:
                if self.pay_index is None:
                    await self.async_prime()
                assert self.pay_index is not None
                invoice = await self.client.wait_invoice_paid(
                    self.pay_index, self.wait_timeout_s
                )
            except LightningError as err:
                self.errors += 1
                _LOGGER.debug(
                    "Waiting for payments failed (%s); retry in %ss", err, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_s
            if invoice is None:
                continue
            self.pay_index = max(self.pay_index, int(invoice.get("pay_index") or 0))
            self.received += 1
            try:
                self.on_paid(invoice)
            except Exception:
                _LOGGER.exception("Handling an incoming payment failed")
