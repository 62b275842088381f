"""Constants of the Lightning part."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Final

#: How the entry reaches the node: "socket" or "rest".
CONF_TRANSPORT: Final = "transport"
CONF_SOCKET_PATH: Final = "socket_path"
CONF_RUNE: Final = "rune"
CONF_FINGERPRINT: Final = "fingerprint"

SUBENTRY_NEIGHBOUR: Final = "neighbour"
CONF_DIRECTION: Final = "direction"
CONF_PAY_METHOD: Final = "pay_method"
CONF_OFFER: Final = "offer"
CONF_NODE_ID: Final = "node_id"
CONF_PRICE_MODE: Final = "price_mode"
CONF_PRICE: Final = "price_sats_per_kwh"
CONF_PRICE_ENTITY: Final = "price_entity"
CONF_METER_ENTITY: Final = "meter_entity"
CONF_CAP_PER_PAYMENT: Final = "cap_per_payment_sats"
CONF_CAP_PER_DAY: Final = "cap_per_day_sats"
CONF_MIN_SETTLEMENT: Final = "min_settlement_sats"
CONF_MAX_FEE: Final = "max_fee_sats"
#: The node entry's ledger id (its settlement store must hold that ledger).
CONF_LEDGER_ID: Final = "ledger_id"
#: A they_pay neighbour: our BOLT12 offer for them (made once, then reused).
CONF_OUR_OFFER_ID: Final = "our_offer_id"
CONF_OUR_OFFER: Final = "our_offer"
#: The label of our offer for a they_pay neighbour (``listoffers`` shows it).
OFFER_LABEL_PREFIX: Final = "hashgrid:"


class Transport(StrEnum):
    """The node's two transports."""

    SOCKET = "socket"
    REST = "rest"


class Direction(StrEnum):
    """Who pays whom for a neighbour's energy."""

    WE_PAY = "we_pay"
    THEY_PAY = "they_pay"


class PayMethod(StrEnum):
    """How we pay a neighbour."""

    OFFER = "offer"
    KEYSEND = "keysend"


class PriceMode(StrEnum):
    """Where a neighbour's price comes from."""

    FIXED = "fixed"
    SENSOR = "sensor"


SCAN_INTERVAL: Final = timedelta(seconds=30)
#: Seconds one ``waitanyinvoice`` waits before asking again (a long poll). Over
#: the local socket the wait holds an executor thread that cancelling cannot
#: free, so it is kept short: an unload or HA stop then waits at most this long.
WAIT_TIMEOUT_S: Final = 10
#: Back-off (s) of the incoming-payment listener after errors: doubles, capped.
LISTENER_BACKOFF_S: Final = 1.0
LISTENER_BACKOFF_MAX_S: Final = 60.0

#: The unit of the sats sensors.
UNIT_SATS: Final = "sat"

#: Fired on HA's bus when a settlement is refused for a problem (cap, meter …).
EVENT_SETTLEMENT_REFUSED: Final = "hashgrid_settlement_refused"
#: Fired on HA's bus after every settlement attempt (its Outcome: the logbook's
#: "Alice: paid 500 sat for 1.25 kWh").
EVENT_SETTLEMENT: Final = "hashgrid_settlement"
#: Fired on HA's bus for every incoming payment.
EVENT_PAYMENT_RECEIVED: Final = "hashgrid_payment_received"
