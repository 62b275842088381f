"""Simulated Core Lightning nodes joined by channels, with payments and faults.

Every node answers the JSON-RPC methods HashGrid uses (``SimNode.call``) with
responses shaped like Core Lightning v26.06's (they validate against its schemas).
Payments route over the channels, move balances hop by hop, pay each forwarding
node its fee, and mark the payee's invoice paid; the payer's ``listpays`` /
``listsendpays`` and the payee's ``listinvoices`` / ``waitanyinvoice`` / ``wait``
see the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
import hashlib
import itertools
import time
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import codec, runes
from .codec import Bolt11, Bolt12Invoice, DecodeError, Offer

VERSION = "v26.06"
DEFAULT_EXPIRY = 604800
BOLT12_INVOICE_EXPIRY = 7200

# Parameter order of each method (from CLN's request schemas): positional params.
PARAMS: dict[str, tuple[str, ...]] = {
    "getinfo": (),
    "listfunds": ("spent",),
    "listpeerchannels": ("id", "short_channel_id", "channel_id"),
    "invoice": (
        "amount_msat", "label", "description", "expiry", "fallbacks", "preimage",
        "exposeprivatechannels", "cltv", "deschashonly",
    ),
    "listinvoices": (
        "label", "invstring", "payment_hash", "offer_id", "index", "start", "limit",
    ),
    "waitanyinvoice": ("lastpay_index", "timeout"),
    "wait": ("subsystem", "indexname", "nextvalue"),
    "offer": (
        "amount", "description", "issuer", "label", "quantity_max", "absolute_expiry",
        "recurrence", "recurrence_base", "recurrence_paywindow", "recurrence_limit",
        "single_use", "proportional_amount", "optional_recurrence", "fronting_nodes",
        "dev_paths",
    ),
    "listoffers": ("offer_id", "active_only"),
    "fetchinvoice": (
        "offer", "amount_msat", "quantity", "recurrence_counter", "recurrence_start",
        "recurrence_label", "timeout", "payer_note", "payer_metadata", "bip353",
        "dev_reply_path", "dev_path_use_scidd",
    ),
    "xpay": (
        "invstring", "amount_msat", "maxfee", "layers", "retry_for", "partial_msat",
        "maxdelay", "payer_note", "label", "localinvreqid", "dev_use_shadow",
    ),
    "pay": (
        "bolt11", "amount_msat", "label", "riskfactor", "maxfeepercent", "retry_for",
        "maxdelay", "exemptfee", "localinvreqid", "exclude", "maxfee", "description",
        "partial_msat",
    ),
    "keysend": (
        "destination", "amount_msat", "label", "maxfeepercent", "retry_for",
        "maxdelay", "exemptfee", "routehints", "extratlvs", "maxfee",
    ),
    "xkeysend": (
        "destination", "amount_msat", "label", "maxfee", "layers", "retry_for",
        "maxdelay", "extratlvs",
    ),
    "disableoffer": ("offer_id",),
    "enableoffer": ("offer_id",),
    "listpays": ("bolt11", "payment_hash", "status", "index", "start", "limit"),
    "listsendpays": ("bolt11", "payment_hash", "status", "index", "start", "limit"),
    "decode": ("string",),
    "createrune": ("rune", "restrictions"),
    "checkrune": ("rune", "nodeid", "method", "params"),
}  # fmt: skip
REQUIRED: dict[str, tuple[str, ...]] = {
    "invoice": ("amount_msat", "label", "description"),
    "wait": ("subsystem", "indexname", "nextvalue"),
    "offer": ("amount",),
    "fetchinvoice": ("offer",),
    "xpay": ("invstring",),
    "pay": ("bolt11",),
    "keysend": ("destination", "amount_msat"),
    "xkeysend": ("destination", "amount_msat"),
    "disableoffer": ("offer_id",),
    "enableoffer": ("offer_id",),
    "decode": ("string",),
    "checkrune": ("rune",),
}

#: Commands deprecated in v26.06 (removal announced for v27.03).
DEPRECATED = frozenset({"keysend", "pay"})

# JSON-RPC / CLN error codes used here.
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
LIGHTNINGD = -1
PAY_DESTINATION_PERM_FAIL = 203
PAY_ROUTE_NOT_FOUND = 205
PAY_ROUTE_TOO_EXPENSIVE = 206
PAY_INVOICE_EXPIRED = 207
PAY_OTHER_ERROR = 209
PAY_STOPPED_RETRYING = 210
PAY_ALREADY_PAID = 219
INVOICE_LABEL_ALREADY_EXISTS = 900
INVOICE_PREIMAGE_ALREADY_EXISTS = 901
INVOICE_WAIT_TIMED_OUT = 904
OFFER_ALREADY_EXISTS = 1000
OFFER_ALREADY_DISABLED = 1001
OFFER_ALREADY_ACTIVE = 1006
OFFER_ROUTE_NOT_FOUND = 1003
OFFER_TIMEOUT = 1005


class RpcFault(Exception):
    """An error answer: JSON-RPC ``error`` object with CLN's code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC error object."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class NodeRestart(Exception):
    """The node 'restarts' now: transports drop the connection without answering."""


@dataclass
class Faults:
    """Failure knobs. Payment faults apply to payments any node sends.

    - ``no_route``: every payment fails as CLN does when no route exists (205);
      ``no_route_to`` does the same for some destinations only.
    - ``payment_timeout``: payments hang for ``timeout_after_s`` and then fail
      (pay/keysend 210, xpay 209, fetchinvoice 1005); the attempt shows as failed.
    - ``restart_mid_payment``: one-shot; the next payment's RPC connection drops
      with no answer and the node is unreachable for ``restart_downtime_s``.
      ``"completed"``: the payment went through before the crash; ``"failed"``:
      it did not. Either way it is in ``listpays``/``listsendpays`` afterwards.
    - ``fetchinvoice_latency_s``: every ``fetchinvoice`` waits this long first
      (an onion-message round trip to the offer's issuer; 0.5 s is ordinary).
    - runes: see ``LightningNetwork.reject_runes`` / ``blacklist_rune``.
    """

    no_route: bool = False
    no_route_to: set[str] = field(default_factory=set)
    payment_timeout: bool = False
    timeout_after_s: float = 0.2
    restart_mid_payment: Literal["completed", "failed"] | None = None
    restart_downtime_s: float = 0.3
    payment_latency_s: float = 0.0
    fetchinvoice_latency_s: float = 0.0


@dataclass
class Channel:
    """A channel between two simulated nodes; balances in msat."""

    scid: str
    channel_id: str
    funding_txid: str
    funding_outnum: int
    total_msat: int
    opener: SimNode
    peer: SimNode
    balance: dict[str, int]
    fee_base_msat: dict[str, int]
    fee_ppm: dict[str, int]
    opened_at: float
    offered: dict[str, list[int]] = field(default_factory=dict)  # id -> [n, msat]
    fulfilled: dict[str, list[int]] = field(default_factory=dict)

    def other(self, node: SimNode) -> SimNode:
        """The node at the other end."""
        return self.peer if node is self.opener else self.opener

    @property
    def reserve_msat(self) -> int:
        """Each side's channel reserve (1 % of capacity)."""
        return self.total_msat // 100

    def spendable(self, node: SimNode) -> int:
        """What ``node`` can send over this channel."""
        return max(0, self.balance[node.node_id] - self.reserve_msat)

    def receivable(self, node: SimNode) -> int:
        """What ``node`` can receive over this channel."""
        return max(0, self.total_msat - self.balance[node.node_id] - self.reserve_msat)

    def fee(self, sender: SimNode, amount_msat: int) -> int:
        """Fee ``sender`` charges to forward ``amount_msat`` out over this channel."""
        sid = sender.node_id
        return self.fee_base_msat[sid] + amount_msat * self.fee_ppm[sid] // 1_000_000

    def move(self, sender: SimNode, amount_msat: int) -> None:
        """Settle an HTLC of ``amount_msat`` from ``sender`` to the other side."""
        receiver = self.other(sender)
        self.balance[sender.node_id] -= amount_msat
        self.balance[receiver.node_id] += amount_msat
        for side, book in ((sender.node_id, "out"), (receiver.node_id, "in")):
            for counters in (self.offered, self.fulfilled):
                entry = counters.setdefault(f"{book}:{side}", [0, 0])
                entry[0] += 1
                entry[1] += amount_msat


@dataclass
class InvoiceRecord:
    """An invoice a node issued (BOLT11, BOLT12 or keysend)."""

    label: str
    description: str | None
    payment_hash: str
    preimage: str
    amount_msat: int | None
    expires_at: int
    created_index: int
    bolt11: str | None = None
    bolt12: str | None = None
    local_offer_id: str | None = None
    payer_note: str | None = None
    status: str = "unpaid"
    updated_index: int | None = None
    pay_index: int | None = None
    amount_received_msat: int | None = None
    paid_at: int | None = None

    def current_status(self, now: float) -> str:
        """unpaid / paid / expired."""
        if self.status == "unpaid" and now > self.expires_at:
            return "expired"
        return self.status

    def to_json(self, now: float) -> dict[str, Any]:
        """As listinvoices / waitanyinvoice print it."""
        out: dict[str, Any] = {"label": self.label}
        if self.bolt11:
            out["bolt11"] = self.bolt11
        if self.bolt12:
            out["bolt12"] = self.bolt12
        if self.local_offer_id:
            out["local_offer_id"] = self.local_offer_id
        if self.payer_note is not None:
            out["invreq_payer_note"] = self.payer_note
        out["payment_hash"] = self.payment_hash
        if self.amount_msat is not None:
            out["amount_msat"] = self.amount_msat
        out["status"] = self.current_status(now)
        if self.description is not None:
            out["description"] = self.description
        out["expires_at"] = self.expires_at
        out["created_index"] = self.created_index
        if self.updated_index is not None:
            out["updated_index"] = self.updated_index
        if self.status == "paid":
            out["pay_index"] = self.pay_index
            out["amount_received_msat"] = self.amount_received_msat
            out["paid_at"] = self.paid_at
            out["payment_preimage"] = self.preimage
        return out


@dataclass
class SendPay:
    """One payment attempt a node sent (one part)."""

    id: int
    created_index: int
    groupid: int
    payment_hash: str
    amount_msat: int
    amount_sent_msat: int
    destination: str
    created_at: int
    status: str = "pending"
    updated_index: int | None = None
    completed_at: int | None = None
    preimage: str | None = None
    label: str | None = None
    bolt11: str | None = None
    bolt12: str | None = None
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As listsendpays prints it."""
        out: dict[str, Any] = {
            "created_index": self.created_index,
            "id": self.id,
            "payment_hash": self.payment_hash,
            "groupid": self.groupid,
            "partid": 0,
        }
        if self.updated_index is not None:
            out["updated_index"] = self.updated_index
        out |= {
            "destination": self.destination,
            "amount_msat": self.amount_msat,
            "amount_sent_msat": self.amount_sent_msat,
            "created_at": self.created_at,
            "status": self.status,
        }
        if self.status != "pending" and self.completed_at is not None:
            out["completed_at"] = self.completed_at
        for key in ("label", "bolt11", "bolt12", "description"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.status == "complete":
            out["payment_preimage"] = self.preimage
        return out

    def to_pay_json(self) -> dict[str, Any]:
        """As listpays prints it."""
        out: dict[str, Any] = {"created_index": self.created_index}
        if self.updated_index is not None:
            out["updated_index"] = self.updated_index
        for key in ("bolt11", "bolt12"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out |= {
            "destination": self.destination,
            "payment_hash": self.payment_hash,
            "status": self.status,
            "created_at": self.created_at,
        }
        for key in ("label", "description"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.status == "complete":
            out |= {
                "completed_at": self.completed_at,
                "preimage": self.preimage,
                "amount_msat": self.amount_msat,
                "amount_sent_msat": self.amount_sent_msat,
                # listpays omits number_of_parts for a single-part payment.
            }
        elif self.status == "failed":
            out["amount_sent_msat"] = self.amount_sent_msat
        else:
            out["amount_msat"] = self.amount_msat
            out["amount_sent_msat"] = self.amount_sent_msat
        return out


@dataclass
class OfferRecord:
    """An offer a node made."""

    offer: Offer
    bolt12: str
    label: str | None
    single_use: bool
    active: bool = True
    used: bool = False

    def to_json(self) -> dict[str, Any]:
        """As listoffers prints it."""
        out: dict[str, Any] = {
            "offer_id": self.offer.offer_id,
            "active": self.active,
            "single_use": self.single_use,
            "bolt12": self.bolt12,
            "force_paths": False,
            "used": self.used,
        }
        if self.offer.description is not None:
            out["description"] = self.offer.description
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclass
class Forward:
    """A payment a node forwarded (for ``wait forwards``)."""

    created_index: int
    in_channel: str
    in_htlc_id: int
    in_msat: int
    out_channel: str
    status: str = "settled"
    updated_index: int | None = None


def _node_keys(seed: str) -> tuple[bytes, str]:
    secret = hashlib.sha256(b"hashgrid-sim-node:" + seed.encode()).digest()
    key = ec.derive_private_key(int.from_bytes(secret) % (2**255), ec.SECP256K1())
    pub = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    return secret, pub.hex()


def _param_error(name: str, message: str, value: Any) -> RpcFault:
    import json

    return RpcFault(
        INVALID_PARAMS, f"{name}: {message}: invalid token '{json.dumps(value)}'"
    )


def _u64(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise _param_error(name, "should be an unsigned 64 bit integer", value)
    return value


def _msat(params: dict[str, Any], name: str, *, allow_any: bool = False) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return codec.parse_msat(value, allow_any=allow_any)
    except ValueError as err:
        raise _param_error(name, str(err), value) from err


def _str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _param_error(name, "should be a string", value)
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise _param_error(name, "should be a string", value)
    return value


class SimNode:
    """One simulated Core Lightning node."""

    def __init__(
        self,
        network: LightningNetwork,
        name: str,
        *,
        alias: str | None = None,
        lightning_dir: str = "",
        onchain_sat: int = 1_000_000,
    ) -> None:
        self.network = network
        self.name = name
        self.alias = (alias or name.upper())[:32]
        self.secret, self.node_id = _node_keys(name)
        self.color = self.node_id[2:8]
        self.lightning_dir = lightning_dir
        self.rpc_path: str | None = None
        self.runes = runes.RuneMaster(hashlib.sha256(b"rune" + self.secret).digest())
        self.invoices: list[InvoiceRecord] = []
        self.sendpays: list[SendPay] = []
        self.offers: dict[str, OfferRecord] = {}
        self.forwards: list[Forward] = []
        self.indexes: dict[str, dict[str, int]] = {
            sub: {"created": 0, "updated": 0, "deleted": 0}
            for sub in ("invoices", "sendpays", "forwards")
        }
        self.pay_index = 0
        self.fees_collected_msat = 0
        self.onchain_msat = onchain_sat * 1000
        self._counter = itertools.count(1)
        self._changed: asyncio.Condition | None = None
        self.down = False
        self.restart_hooks: list[Callable[[float], Awaitable[None]]] = []
        #: ``allow-deprecated-apis`` (CLN's default: on). Off, ``keysend``
        #: (deprecated in v26.06 for ``xkeysend``) answers -32601.
        self.allow_deprecated_apis = True
        #: The node's announced address. Without one (a typical home node) an
        #: offer carries blinded paths chosen anew on every ``offer`` call, so
        #: each call mints a new offer; with one, the same offer comes back.
        self.announced_address: str | None = None

    # ------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        return f"SimNode({self.name}, {self.node_id[:12]}…)"

    @property
    def changed(self) -> asyncio.Condition:
        """Notified whenever an index moves."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _bump(self, subsystem: str, index: str) -> int:
        self.indexes[subsystem][index] += 1
        value = self.indexes[subsystem][index]
        self.network.notify(self)
        return value

    def _secret_for(self, purpose: str) -> str:
        n = next(self._counter)
        return hashlib.sha256(self.secret + f":{purpose}:{n}".encode()).hexdigest()

    @property
    def channels(self) -> list[Channel]:
        """This node's channels."""
        return [c for c in self.network.channels if self in (c.opener, c.peer)]

    async def simulate_restart(self, downtime: float) -> None:
        """Drop every connection and be unreachable for ``downtime`` seconds."""
        self.down = True
        try:
            await asyncio.gather(*(hook(downtime) for hook in self.restart_hooks))
            if not self.restart_hooks:
                await asyncio.sleep(downtime)
        finally:
            self.down = False

    # ------------------------------------------------------------ dispatch

    async def call(self, method: str, params: Any = None) -> dict[str, Any]:
        """Run one RPC method; raises RpcFault (or NodeRestart)."""
        handler = getattr(self, "rpc_" + method.replace("-", "_"), None)
        if handler is None or method not in PARAMS:
            raise RpcFault(METHOD_NOT_FOUND, f"Unknown command '{method}'")
        if method in DEPRECATED and not self.allow_deprecated_apis:
            raise RpcFault(METHOD_NOT_FOUND, f'Command "{method}" is deprecated')
        names = PARAMS[method]
        if params is None:
            params = {}
        if isinstance(params, list):
            if len(params) > len(names):
                raise RpcFault(INVALID_PARAMS, "too many parameters")
            params = {
                n: v for n, v in zip(names, params, strict=False) if v is not None
            }
        elif not isinstance(params, dict):
            raise RpcFault(INVALID_PARAMS, "Expected array or object for params")
        for key in params:
            if key not in names:
                raise RpcFault(INVALID_PARAMS, f"unknown parameter: {key}")
        for key in REQUIRED.get(method, ()):
            if params.get(key) is None:
                raise RpcFault(INVALID_PARAMS, f"missing required parameter: {key}")
        result: dict[str, Any] = await handler(params)
        return result

    # ------------------------------------------------------------ info

    async def rpc_getinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = self.channels
        binding: list[dict[str, Any]] = []
        if self.rpc_path:
            binding.append({"type": "local socket", "socket": self.rpc_path})
        binding.append({"type": "ipv4", "address": "127.0.0.1", "port": 9735})
        return {
            "id": self.node_id,
            "alias": self.alias,
            "color": self.color,
            "num_peers": len({c.other(self).node_id for c in channels}),
            "num_pending_channels": 0,
            "num_active_channels": len(channels),
            "num_inactive_channels": 0,
            "address": []
            if self.announced_address is None
            else [{"type": "ipv4", "address": self.announced_address, "port": 9735}],
            "binding": binding,
            "version": VERSION,
            "blockheight": self.network.blockheight,
            "network": self.network.network,
            "fees_collected_msat": self.fees_collected_msat,
            "lightning-dir": self.lightning_dir,
            "our_features": {
                "init": "08a0800a8a59a1",
                "node": "88a0800a8a59a1",
                "channel": "",
                "invoice": "02000002024100",
            },
        }

    async def rpc_listfunds(self, params: dict[str, Any]) -> dict[str, Any]:
        txid = codec.sha256_hex(b"utxo" + self.secret)
        outputs = []
        if self.onchain_msat:
            witness = hashlib.sha256(b"addr" + self.secret).digest()[:20]
            hrp = {"bitcoin": "bc", "testnet": "tb", "signet": "tb"}.get(
                self.network.network, "bcrt"
            )
            outputs.append(
                {
                    "txid": txid,
                    "output": 0,
                    "amount_msat": self.onchain_msat,
                    "scriptpubkey": "0014" + witness.hex(),
                    "address": codec.bech32_encode(hrp, witness),
                    "status": "confirmed",
                    "blockheight": max(1, self.network.blockheight - 100),
                    "reserved": False,
                }
            )
        channels = [
            {
                "peer_id": c.other(self).node_id,
                "connected": True,
                "state": "CHANNELD_NORMAL",
                "channel_id": c.channel_id,
                "short_channel_id": c.scid,
                "our_amount_msat": c.balance[self.node_id],
                "amount_msat": c.total_msat,
                "funding_txid": c.funding_txid,
                "funding_output": c.funding_outnum,
            }
            for c in self.channels
        ]
        return {"outputs": outputs, "channels": channels}

    async def rpc_listpeerchannels(self, params: dict[str, Any]) -> dict[str, Any]:
        peer = _str(params, "id")
        scid = _str(params, "short_channel_id")
        channel_id = _str(params, "channel_id")
        out = []
        for c in self.channels:
            other = c.other(self)
            if peer is not None and other.node_id != peer:
                continue
            if scid is not None and c.scid != scid:
                continue
            if channel_id is not None and c.channel_id != channel_id:
                continue
            out.append(self._peerchannel_json(c))
        return {"channels": out}

    def _peerchannel_json(self, c: Channel) -> dict[str, Any]:
        other = c.other(self)
        me, them = self.node_id, other.node_id
        htlc_max = c.total_msat * 99 // 100

        def policy(node: SimNode) -> dict[str, int]:
            return {
                "htlc_minimum_msat": 0,
                "htlc_maximum_msat": htlc_max,
                "cltv_expiry_delta": 6,
                "fee_base_msat": c.fee_base_msat[node.node_id],
                "fee_proportional_millionths": c.fee_ppm[node.node_id],
            }

        stamp = datetime.fromtimestamp(c.opened_at, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        block = int(c.scid.split("x")[0])
        opener_funds = c.total_msat
        out: dict[str, Any] = {
            "peer_id": them,
            "peer_connected": True,
            "reestablished": True,
            "channel_type": {
                "bits": [12, 22],
                "names": ["static_remotekey/even", "anchors/even"],
            },
            "updates": {"local": policy(self), "remote": policy(other)},
            "last_stable_connection": int(c.opened_at),
            "state": "CHANNELD_NORMAL",
            "scratch_txid": codec.sha256_hex(b"scratch" + c.channel_id.encode()),
            "last_tx_fee_msat": 4867000,
            "lost_state": False,
            "feerate": {"perkw": 3755, "perkb": 15020},
            "owner": "channeld",
            "short_channel_id": c.scid,
            "direction": 0 if me < them else 1,
            "channel_id": c.channel_id,
            "funding_txid": c.funding_txid,
            "funding_outnum": c.funding_outnum,
            "private": False,
            "opener": "local" if c.opener is self else "remote",
            "alias": {
                "local": f"{block + 1000}x{c.funding_outnum + 1}x0",
                "remote": f"{block + 2000}x{c.funding_outnum + 1}x0",
            },
            "features": ["option_static_remotekey", "option_anchors"],
            "funding": {
                "local_funds_msat": opener_funds if c.opener is self else 0,
                "remote_funds_msat": 0 if c.opener is self else opener_funds,
                "pushed_msat": 0,
            },
            "to_us_msat": c.balance[me],
            "min_to_us_msat": c.balance[me],
            "max_to_us_msat": c.balance[me],
            "total_msat": c.total_msat,
            "fee_base_msat": c.fee_base_msat[me],
            "fee_proportional_millionths": c.fee_ppm[me],
            "dust_limit_msat": 546000,
            "their_max_htlc_value_in_flight_msat": 18446744073709551615,
            "our_max_htlc_value_in_flight_msat": 18446744073709551615,
            "their_reserve_msat": c.reserve_msat,
            "our_reserve_msat": c.reserve_msat,
            "spendable_msat": min(c.spendable(self), htlc_max),
            "receivable_msat": min(c.receivable(self), htlc_max),
            "minimum_htlc_in_msat": 0,
            "minimum_htlc_out_msat": 0,
            "maximum_htlc_out_msat": htlc_max,
            "their_to_self_delay": 5,
            "our_to_self_delay": 5,
            "max_accepted_htlcs": 483,
            "state_changes": [
                {
                    "timestamp": stamp,
                    "old_state": "CHANNELD_AWAITING_LOCKIN",
                    "new_state": "CHANNELD_NORMAL",
                    "cause": "local" if c.opener is self else "remote",
                    "message": "Lockin complete",
                }
            ],
            "status": ["CHANNELD_NORMAL:Channel ready for use."],
        }
        for book in ("in", "out"):
            n_off, m_off = c.offered.get(f"{book}:{me}", [0, 0])
            n_ful, m_ful = c.fulfilled.get(f"{book}:{me}", [0, 0])
            out[f"{book}_payments_offered"] = n_off
            out[f"{book}_offered_msat"] = m_off
            out[f"{book}_payments_fulfilled"] = n_ful
            out[f"{book}_fulfilled_msat"] = m_ful
        out["htlcs"] = []
        return out

    # ------------------------------------------------------------ invoices

    def _add_invoice(self, record: InvoiceRecord) -> InvoiceRecord:
        self.invoices.append(record)
        return record

    async def rpc_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = _msat(params, "amount_msat", allow_any=True)
        label = _str(params, "label")
        description = _str(params, "description")
        assert label is not None
        assert description is not None
        expiry = _u64(params, "expiry", DEFAULT_EXPIRY)
        assert expiry is not None
        if any(inv.label == label for inv in self.invoices):
            raise RpcFault(INVOICE_LABEL_ALREADY_EXISTS, f"Duplicate label '{label}'")
        preimage = _str(params, "preimage") or self._secret_for("preimage")
        try:
            payment_hash = codec.sha256_hex(bytes.fromhex(preimage))
        except ValueError as err:
            raise _param_error(
                "preimage", "should be a 32 byte hex value", preimage
            ) from err
        if any(inv.payment_hash == payment_hash for inv in self.invoices):
            raise RpcFault(INVOICE_PREIMAGE_ALREADY_EXISTS, "preimage already used")
        now = int(time.time())
        bolt11 = Bolt11(
            currency=codec.CURRENCY.get(self.network.network, "bcrt"),
            payee=self.node_id,
            payment_hash=payment_hash,
            payment_secret=self._secret_for("payment_secret"),
            amount_msat=amount,
            description=description,
            created_at=now,
            expiry=expiry,
        )
        record = self._add_invoice(
            InvoiceRecord(
                label=label,
                description=description,
                payment_hash=payment_hash,
                preimage=preimage,
                amount_msat=amount,
                expires_at=bolt11.expires_at,
                created_index=self.indexes["invoices"]["created"] + 1,
                bolt11=bolt11.encode(),
            )
        )
        self._bump("invoices", "created")
        return {
            "payment_hash": payment_hash,
            "expires_at": record.expires_at,
            "bolt11": record.bolt11,
            "payment_secret": bolt11.payment_secret,
            "created_index": record.created_index,
        }

    def _select(self, items: list[Any], params: dict[str, Any]) -> list[Any]:
        index = params.get("index")
        start = _u64(params, "start")
        limit = _u64(params, "limit")
        if index is None:
            if start is not None or limit is not None:
                raise RpcFault(
                    INVALID_PARAMS, "Can only specify {start} or {limit} with {index}"
                )
            return items
        if index not in ("created", "updated"):
            raise _param_error("index", "should be 'created' or 'updated'", index)
        key = "created_index" if index == "created" else "updated_index"
        chosen = sorted(
            (
                i
                for i in items
                if getattr(i, key) is not None and getattr(i, key) >= (start or 0)
            ),
            key=lambda i: getattr(i, key),
        )
        return chosen[:limit] if limit is not None else chosen

    async def rpc_listinvoices(self, params: dict[str, Any]) -> dict[str, Any]:
        label = _str(params, "label")
        invstring = _str(params, "invstring")
        payment_hash = _str(params, "payment_hash")
        offer_id = _str(params, "offer_id")
        if sum(x is not None for x in (label, invstring, payment_hash, offer_id)) > 1:
            raise RpcFault(
                INVALID_PARAMS,
                "Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}",
            )
        items = self._select(self.invoices, params)
        now = time.time()
        out = [
            inv.to_json(now)
            for inv in items
            if (label is None or inv.label == label)
            and (invstring is None or invstring in (inv.bolt11, inv.bolt12))
            and (payment_hash is None or inv.payment_hash == payment_hash)
            and (offer_id is None or inv.local_offer_id == offer_id)
        ]
        return {"invoices": out}

    async def rpc_waitanyinvoice(self, params: dict[str, Any]) -> dict[str, Any]:
        last = _u64(params, "lastpay_index", 0) or 0
        timeout = _u64(params, "timeout")

        def ready() -> InvoiceRecord | None:
            paid = [
                i
                for i in self.invoices
                if i.pay_index is not None and i.pay_index > last
            ]
            return min(paid, key=lambda i: i.pay_index or 0) if paid else None

        async with self.changed:
            try:
                async with asyncio.timeout(timeout):
                    await self.changed.wait_for(lambda: ready() is not None)
            except TimeoutError:
                raise RpcFault(INVOICE_WAIT_TIMED_OUT, "Timed out") from None
        found = ready()
        assert found is not None
        return found.to_json(time.time())

    async def rpc_wait(self, params: dict[str, Any]) -> dict[str, Any]:
        subsystem = params["subsystem"]
        indexname = params["indexname"]
        nextvalue = _u64(params, "nextvalue")
        if subsystem not in self.indexes:
            raise _param_error(
                "subsystem", "should be one of invoices, forwards, sendpays", subsystem
            )
        if indexname not in ("created", "updated", "deleted"):
            raise _param_error(
                "indexname", "should be one of created, updated, deleted", indexname
            )
        assert nextvalue is not None
        counters = self.indexes[subsystem]
        async with self.changed:
            await self.changed.wait_for(lambda: counters[indexname] >= nextvalue)
        value = counters[indexname]
        out: dict[str, Any] = {"subsystem": subsystem, indexname: value}
        if value == nextvalue and indexname != "deleted":
            details = self._wait_details(subsystem, indexname, value)
            if details is not None:
                out[subsystem] = details
        return out

    def _wait_details(
        self, subsystem: str, indexname: str, value: int
    ) -> dict[str, Any] | None:
        key = f"{indexname}_index"
        if subsystem == "invoices":
            for inv in self.invoices:
                if getattr(inv, key) == value:
                    details: dict[str, Any] = {
                        "status": inv.current_status(time.time()),
                        "label": inv.label,
                    }
                    if inv.description is not None:
                        details["description"] = inv.description
                    if inv.bolt11:
                        details["bolt11"] = inv.bolt11
                    if inv.bolt12:
                        details["bolt12"] = inv.bolt12
                    return details
        elif subsystem == "sendpays":
            for sp in self.sendpays:
                if getattr(sp, key) == value:
                    return {
                        "status": sp.status,
                        "partid": 0,
                        "groupid": sp.groupid,
                        "payment_hash": sp.payment_hash,
                    }
        else:
            for fw in self.forwards:
                if getattr(fw, key) == value:
                    return {
                        "status": fw.status,
                        "in_channel": fw.in_channel,
                        "in_htlc_id": fw.in_htlc_id,
                        "in_msat": fw.in_msat,
                        "out_channel": fw.out_channel,
                    }
        return None

    # ------------------------------------------------------------ offers

    async def rpc_offer(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = _msat(params, "amount", allow_any=True)
        description = _str(params, "description")
        if amount is not None and description is None:
            raise RpcFault(
                INVALID_PARAMS,
                "description is required for the user to know what it was they paid for",
            )
        label = _str(params, "label")
        single_use = bool(params.get("single_use", False))
        offer = Offer(
            issuer_id=self.node_id,
            description=description,
            amount_msat=amount,
            issuer=_str(params, "issuer"),
            quantity_max=_u64(params, "quantity_max"),
            absolute_expiry=_u64(params, "absolute_expiry"),
            nonce=hashlib.sha256(self.secret + b"offer").hexdigest()[:16]
            if self.announced_address is not None
            else self._secret_for("offer-paths")[:16],
        )
        existing = self.offers.get(offer.offer_id)
        if existing is not None:
            if not existing.active:
                raise RpcFault(OFFER_ALREADY_EXISTS, "Already exists, but isn't active")
            return self._offer_response(existing, created=False)
        record = OfferRecord(offer, offer.encode(), label, single_use)
        self.offers[offer.offer_id] = record
        return self._offer_response(record, created=True)

    @staticmethod
    def _offer_response(record: OfferRecord, *, created: bool) -> dict[str, Any]:
        out = record.to_json() | {"created": created}
        out.pop("description", None)
        return out

    async def rpc_disableoffer(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_offer_active(params, active=False)

    async def rpc_enableoffer(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_offer_active(params, active=True)

    def _set_offer_active(
        self, params: dict[str, Any], *, active: bool
    ) -> dict[str, Any]:
        offer_id = _str(params, "offer_id")
        record = self.offers.get(offer_id or "")
        if record is None:
            raise RpcFault(LIGHTNINGD, "Unknown offer")
        if record.active == active:
            raise RpcFault(
                OFFER_ALREADY_ACTIVE if active else OFFER_ALREADY_DISABLED,
                "offer already active" if active else "offer is not active",
            )
        record.active = active
        return record.to_json()

    async def rpc_listoffers(self, params: dict[str, Any]) -> dict[str, Any]:
        offer_id = _str(params, "offer_id")
        active_only = bool(params.get("active_only", False))
        return {
            "offers": [
                o.to_json()
                for o in self.offers.values()
                if (offer_id is None or o.offer.offer_id == offer_id)
                and (not active_only or o.active)
            ]
        }

    async def rpc_fetchinvoice(self, params: dict[str, Any]) -> dict[str, Any]:
        text = _str(params, "offer")
        assert text is not None
        try:
            offer = codec.decode_offer(text)
        except DecodeError as err:
            raise _param_error("offer", f"Unparsable offer: {err}", text) from err
        amount = _msat(params, "amount_msat")
        quantity = _u64(params, "quantity")
        payer_note = _str(params, "payer_note")
        if offer.amount_msat is None:
            if amount is None:
                raise RpcFault(
                    INVALID_PARAMS, "amount_msat: msatoshi parameter required"
                )
        elif amount is not None:
            raise RpcFault(
                INVALID_PARAMS, "amount_msat: msatoshi parameter unnecessary"
            )
        else:
            amount = offer.amount_msat * (quantity or 1)
        if offer.absolute_expiry is not None and time.time() > offer.absolute_expiry:
            raise RpcFault(1002, "Offer expired")
        issuer = self.network.by_id(offer.issuer_id)
        faults = self.network.faults
        if faults.fetchinvoice_latency_s:
            await asyncio.sleep(faults.fetchinvoice_latency_s)
        if faults.payment_timeout:
            await asyncio.sleep(faults.timeout_after_s)
            raise RpcFault(OFFER_TIMEOUT, "Timeout waiting for response")
        if (
            issuer is None
            or faults.no_route
            or offer.issuer_id in faults.no_route_to
            or self.network.find_route(self, issuer, 0) is None
        ):
            raise RpcFault(
                OFFER_ROUTE_NOT_FOUND,
                "Failed: could not route or connect directly to blinded path",
            )
        assert amount is not None
        record = issuer.offers.get(offer.offer_id)
        if record is None or not record.active:
            raise RpcFault(
                1004,
                "Remote node sent failure message",
                {"invoice_request": "", "tlv_type": 0},
            )
        invoice, _inv_record = issuer.issue_bolt12_invoice(
            record,
            payer=self,
            amount_msat=amount,
            quantity=quantity,
            payer_note=payer_note,
        )
        return {"invoice": invoice.encode(), "changes": {}}

    def issue_bolt12_invoice(
        self,
        record: OfferRecord,
        *,
        payer: SimNode,
        amount_msat: int,
        quantity: int | None,
        payer_note: str | None,
    ) -> tuple[Bolt12Invoice, InvoiceRecord]:
        """Answer an invoice request for one of our offers."""
        preimage = self._secret_for("preimage")
        payment_hash = codec.sha256_hex(bytes.fromhex(preimage))
        invoice = Bolt12Invoice(
            offer=record.offer,
            payer_id=payer.node_id,
            payer_metadata=payer._secret_for("payer_metadata")[:32],
            amount_msat=amount_msat,
            payment_hash=payment_hash,
            created_at=int(time.time()),
            relative_expiry=BOLT12_INVOICE_EXPIRY,
            quantity=quantity,
            payer_note=payer_note,
        )
        text = invoice.encode()
        inv = self._add_invoice(
            InvoiceRecord(
                label=f"{record.offer.offer_id}-{payment_hash[:16]}-0",
                description=record.offer.description,
                payment_hash=payment_hash,
                preimage=preimage,
                amount_msat=amount_msat,
                expires_at=invoice.expires_at,
                created_index=self.indexes["invoices"]["created"] + 1,
                bolt12=text,
                local_offer_id=record.offer.offer_id,
                payer_note=payer_note,
            )
        )
        self._bump("invoices", "created")
        return invoice, inv

    # ------------------------------------------------------------ paying

    def _decode_invoice(
        self, text: str, name: str
    ) -> tuple[str, int | None, str, int, str | None, bool]:
        """(payee, amount, payment_hash, expires_at, description, is_bolt12)."""
        if text.lower().startswith("lni1"):
            try:
                b12 = codec.decode_bolt12_invoice(text)
            except DecodeError as err:
                raise _param_error(name, f"Invalid bolt12: {err}", text) from err
            return (
                b12.node_id,
                b12.amount_msat,
                b12.payment_hash,
                b12.expires_at,
                b12.offer.description,
                True,
            )
        try:
            b11 = codec.decode_bolt11(text)
        except DecodeError as err:
            raise _param_error(name, f"Invalid bolt11: {err}", text) from err
        if b11.currency != codec.CURRENCY.get(self.network.network, "bcrt"):
            raise _param_error(
                name, f"Invoice is for another network {b11.currency}", text
            )
        return (
            b11.payee,
            b11.amount_msat,
            b11.payment_hash,
            b11.expires_at,
            b11.description,
            False,
        )

    async def rpc_pay(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._pay_invoice(params, "bolt11", xpay=False)

    async def rpc_xpay(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._pay_invoice(params, "invstring", xpay=True)

    async def _pay_invoice(
        self, params: dict[str, Any], name: str, *, xpay: bool
    ) -> dict[str, Any]:
        text = _str(params, name)
        assert text is not None
        payee, inv_amount, payment_hash, expires_at, _description, is_b12 = (
            self._decode_invoice(text, name)
        )
        amount = _msat(params, "amount_msat")
        if inv_amount is None:
            if amount is None:
                raise RpcFault(
                    INVALID_PARAMS, "amount_msat: msatoshi parameter required"
                )
        elif amount is not None:
            raise RpcFault(
                INVALID_PARAMS, "amount_msat: msatoshi parameter unnecessary"
            )
        else:
            amount = inv_amount
        assert amount is not None
        if time.time() > expires_at:
            raise RpcFault(
                PAY_INVOICE_EXPIRED,
                "Invoice expired",
                {"now": int(time.time()), "expiry": expires_at},
            )
        for sp in self.sendpays:
            if sp.payment_hash == payment_hash and sp.status == "complete":
                if xpay:
                    raise RpcFault(
                        PAY_ALREADY_PAID, "Already paid this invoice successfully"
                    )
                return self._pay_result(sp)
            if sp.payment_hash == payment_hash and sp.status == "pending":
                raise RpcFault(LIGHTNINGD, "Payment already pending")
        maxfee = self._maxfee(params, amount, xpay=xpay)
        label = _str(params, "label")
        sp = await self.network.send(
            self,
            payee,
            amount,
            payment_hash=payment_hash,
            maxfee_msat=maxfee,
            label=label,
            bolt11=None if is_b12 else text,
            bolt12=text if is_b12 else None,
            description=_str(params, "description") if not xpay else None,
            xpay=xpay,
        )
        return self._xpay_result(sp) if xpay else self._pay_result(sp)

    def _maxfee(self, params: dict[str, Any], amount: int, *, xpay: bool) -> int:
        maxfee = _msat(params, "maxfee")
        if maxfee is not None:
            return maxfee
        if xpay:
            return max(5000, amount // 100)
        percent = float(params.get("maxfeepercent", 0.5))
        exempt = _msat(params, "exemptfee") or 5000
        return max(exempt, int(amount * percent / 100))

    @staticmethod
    def _xpay_result(sp: SendPay) -> dict[str, Any]:
        """xpay's (and xkeysend's) answer: no ``payment_hash``."""
        return {
            "payment_preimage": sp.preimage,
            "failed_parts": 0,
            "successful_parts": 1,
            "amount_msat": sp.amount_msat,
            "amount_sent_msat": sp.amount_sent_msat,
        }

    @staticmethod
    def _pay_result(sp: SendPay) -> dict[str, Any]:
        return {
            "destination": sp.destination,
            "payment_hash": sp.payment_hash,
            "created_at": float(sp.created_at),
            "parts": 1,
            "amount_msat": sp.amount_msat,
            "amount_sent_msat": sp.amount_sent_msat,
            "payment_preimage": sp.preimage,
            "status": "complete",
        }

    async def rpc_xkeysend(self, params: dict[str, Any]) -> dict[str, Any]:
        """xpay's keysend (v26.06): xpay's answer, without ``payment_hash``."""
        return self._xpay_result(await self._keysend(params, xpay=True))

    async def rpc_keysend(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._pay_result(await self._keysend(params, xpay=False))

    async def _keysend(self, params: dict[str, Any], *, xpay: bool) -> SendPay:
        destination = _str(params, "destination")
        amount = _msat(params, "amount_msat")
        assert destination is not None
        assert amount is not None
        if self.network.by_id(destination) is None and len(destination) != 66:
            raise _param_error("destination", "should be a node id", destination)
        preimage = self._secret_for("keysend")
        payment_hash = codec.sha256_hex(bytes.fromhex(preimage))
        return await self.network.send(
            self,
            destination,
            amount,
            payment_hash=payment_hash,
            maxfee_msat=self._maxfee(params, amount, xpay=xpay),
            label=_str(params, "label"),
            keysend_preimage=preimage,
            xpay=xpay,
        )

    async def rpc_listsendpays(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"payments": [sp.to_json() for sp in self._filtered_sendpays(params)]}

    async def rpc_listpays(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"pays": [sp.to_pay_json() for sp in self._filtered_sendpays(params)]}

    def _filtered_sendpays(self, params: dict[str, Any]) -> list[SendPay]:
        bolt11 = _str(params, "bolt11")
        payment_hash = _str(params, "payment_hash")
        status = params.get("status")
        if status is not None and status not in ("pending", "complete", "failed"):
            raise _param_error("status", "should be an invoice status", status)
        return [
            sp
            for sp in self._select(self.sendpays, params)
            if (bolt11 is None or bolt11 in (sp.bolt11, sp.bolt12))
            and (payment_hash is None or sp.payment_hash == payment_hash)
            and (status is None or sp.status == status)
        ]

    # ------------------------------------------------------------ decode, runes

    async def rpc_decode(self, params: dict[str, Any]) -> dict[str, Any]:
        text = _str(params, "string")
        assert text is not None
        raw = (
            text[len("lightning:") :] if text.lower().startswith("lightning:") else text
        )
        lower = raw.lower()
        try:
            if lower.startswith("lno1"):
                return self._decode_offer(codec.decode_offer(raw))
            if lower.startswith("lni1"):
                return self._decode_b12(codec.decode_bolt12_invoice(raw))
            if lower.startswith("ln"):
                return self._decode_b11(codec.decode_bolt11(raw))
        except DecodeError as err:
            raise _param_error("string", str(err), text) from err
        try:
            rune = runes.parse(raw)
        except ValueError:
            raise _param_error("string", "Unparsable invoice", text) from None
        return {
            "type": "rune",
            "unique_id": rune.unique_id or "",
            "string": rune.authcode.hex() + ":" + rune.restriction_string,
            "restrictions": [
                {"alternatives": list(alts), "summary": runes.summary(alts)}
                for alts in rune.restrictions[1 if rune.unique_id is not None else 0 :]
            ],
            "valid": True,
        }

    @staticmethod
    def _offer_fields(offer: Offer) -> dict[str, Any]:
        out: dict[str, Any] = {"offer_id": offer.offer_id}
        if offer.amount_msat is not None:
            out["offer_amount_msat"] = offer.amount_msat
        if offer.description is not None:
            out["offer_description"] = offer.description
        if offer.issuer is not None:
            out["offer_issuer"] = offer.issuer
        if offer.absolute_expiry is not None:
            out["offer_absolute_expiry"] = offer.absolute_expiry
        if offer.quantity_max is not None:
            out["offer_quantity_max"] = offer.quantity_max
        out["offer_issuer_id"] = offer.issuer_id
        return out

    def _decode_offer(self, offer: Offer) -> dict[str, Any]:
        return {"type": "bolt12 offer", **self._offer_fields(offer), "valid": True}

    def _decode_b12(self, inv: Bolt12Invoice) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "bolt12 invoice",
            **self._offer_fields(inv.offer),
        }
        out |= {
            "invreq_metadata": inv.payer_metadata,
            "invreq_payer_id": inv.payer_id,
            "invreq_amount_msat": inv.amount_msat,
        }
        if inv.quantity is not None:
            out["invreq_quantity"] = inv.quantity
        if inv.payer_note is not None:
            out["invreq_payer_note"] = inv.payer_note
        blinded = _node_keys("blinded:" + inv.payment_hash)[1]
        out |= {
            "invoice_paths": [
                {
                    "first_node_id": inv.node_id,
                    "first_path_key": blinded,
                    "payinfo": {
                        "fee_base_msat": 0,
                        "fee_proportional_millionths": 0,
                        "cltv_expiry_delta": 18,
                        "htlc_minimum_msat": 0,
                        "htlc_maximum_msat": 21_000_000 * codec.MSAT_PER_BTC // 10**3,
                        "features": "",
                    },
                    "path": [
                        {
                            "blinded_node_id": blinded,
                            "encrypted_recipient_data": inv.payment_hash[:32],
                        }
                    ],
                }
            ],
            "invoice_created_at": inv.created_at,
            "invoice_relative_expiry": inv.relative_expiry,
            "invoice_payment_hash": inv.payment_hash,
            "invoice_amount_msat": inv.amount_msat,
            "invoice_node_id": inv.node_id,
            "signature": inv.signature(),
            "valid": True,
        }
        return out

    def _decode_b11(self, inv: Bolt11) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "bolt11 invoice",
            "currency": inv.currency,
            "created_at": inv.created_at,
            "expiry": inv.expiry,
            "payee": inv.payee,
        }
        if inv.amount_msat is not None:
            out["amount_msat"] = inv.amount_msat
        out |= {
            "description": inv.description,
            "min_final_cltv_expiry": inv.min_final_cltv_expiry,
            "payment_secret": inv.payment_secret,
            "features": "02024100",
            "payment_hash": inv.payment_hash,
            "signature": inv.signature(),
            "valid": True,
        }
        return out

    async def rpc_createrune(self, params: dict[str, Any]) -> dict[str, Any]:
        base = _str(params, "rune")
        restrictions = params.get("restrictions")
        try:
            rune = self.runes.create(base, restrictions)
        except runes.RuneError as err:
            raise RpcFault(err.code, err.message) from None
        except ValueError as err:
            raise _param_error("restrictions", str(err), restrictions) from None
        out: dict[str, Any] = {"rune": rune.encode(), "unique_id": rune.unique_id or ""}
        if len(rune.restrictions) <= 1:
            out["warning_unrestricted_rune"] = (
                "WARNING: This rune has no restrictions! Anyone who has access to "
                "this rune could drain funds from your node. Be careful when giving "
                "this to apps that you don't trust. Consider using the restrictions "
                "parameter to only allow access to specific rpc methods."
            )
        return out

    async def rpc_checkrune(self, params: dict[str, Any]) -> dict[str, Any]:
        text = _str(params, "rune")
        assert text is not None
        nodeid = _str(params, "nodeid")
        if nodeid is not None and nodeid != self.node_id:
            raise RpcFault(1501, "Not authorized: this rune is not for this node")
        try:
            self.runes.check(text, _str(params, "method"), params.get("params"), nodeid)
        except runes.RuneError as err:
            raise RpcFault(err.code, err.message) from None
        return {"valid": True}


class LightningNetwork:
    """Simulated nodes, the channels between them, and the fault knobs."""

    def __init__(self, network: str = "regtest", blockheight: int = 850_000) -> None:
        self.network = network
        self.blockheight = blockheight
        self.nodes: list[SimNode] = []
        self.channels: list[Channel] = []
        self.faults = Faults()
        self._scids = itertools.count(1)
        self._sendpay_ids = itertools.count(1)
        self._htlc_ids = itertools.count(0)
        self._groupids = itertools.count(1)
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ building

    def add_node(self, name: str, **kwargs: Any) -> SimNode:
        """Create a node."""
        node = SimNode(self, name, **kwargs)
        self.nodes.append(node)
        return node

    def open_channel(
        self,
        opener: SimNode,
        peer: SimNode,
        capacity_sat: int,
        *,
        push_sat: int = 0,
        fee_base_msat: int = 1000,
        fee_ppm: int = 10,
    ) -> Channel:
        """A channel funded by ``opener``; ``push_sat`` starts on the peer's side."""
        n = next(self._scids)
        txid = hashlib.sha256(
            f"funding:{opener.node_id}:{peer.node_id}:{n}".encode()
        ).digest()
        outnum = n % 2
        cid = bytearray(txid[::-1])
        cid[-2] ^= (outnum >> 8) & 0xFF
        cid[-1] ^= outnum & 0xFF
        channel = Channel(
            scid=f"{self.blockheight - 1000 + n}x{n}x{outnum}",
            channel_id=bytes(cid).hex(),
            funding_txid=txid.hex(),
            funding_outnum=outnum,
            total_msat=capacity_sat * 1000,
            opener=opener,
            peer=peer,
            balance={
                opener.node_id: (capacity_sat - push_sat) * 1000,
                peer.node_id: push_sat * 1000,
            },
            fee_base_msat={opener.node_id: fee_base_msat, peer.node_id: fee_base_msat},
            fee_ppm={opener.node_id: fee_ppm, peer.node_id: fee_ppm},
            opened_at=time.time(),
        )
        self.channels.append(channel)
        return channel

    def by_id(self, node_id: str) -> SimNode | None:
        """The node with this id, if simulated here."""
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def notify(self, node: SimNode) -> None:
        """Wake every waiter on ``node``."""
        cond = node.changed

        async def _notify() -> None:
            async with cond:
                cond.notify_all()

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.spawn(_notify(), loop)

    async def close(self) -> None:
        """Cancel background work (simulated restarts, notifications)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def spawn(
        self,
        coro: Coroutine[Any, Any, None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = (loop or asyncio.get_running_loop()).create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ routing

    def find_route(
        self, src: SimNode, dst: SimNode, amount_msat: int
    ) -> list[tuple[Channel, SimNode, int]] | None:
        """Cheapest feasible route: [(channel, sender, amount over it)], or None.

        Tries simple paths of up to 4 hops, shortest first; every hop must have
        the amount (plus downstream fees) spendable.
        """
        paths: list[list[Channel]] = []

        def walk(node: SimNode, seen: list[SimNode], path: list[Channel]) -> None:
            if node is dst:
                paths.append(list(path))
                return
            if len(path) >= 4:
                return
            for ch in node.channels:
                nxt = ch.other(node)
                if nxt not in seen:
                    walk(nxt, [*seen, nxt], [*path, ch])

        walk(src, [src], [])
        best: list[tuple[Channel, SimNode, int]] | None = None
        for path in sorted(paths, key=len):
            senders = [src]
            for ch in path[:-1]:
                senders.append(ch.other(senders[-1]))
            hops: list[tuple[Channel, SimNode, int]] = []
            amount = amount_msat
            for i in range(len(path) - 1, -1, -1):
                hops.append((path[i], senders[i], amount))
                if i > 0:
                    amount += path[i].fee(senders[i], amount)
            hops.reverse()
            if all(ch.spendable(sender) >= amt for ch, sender, amt in hops) and (
                best is None or hops[0][2] < best[0][2]
            ):
                best = hops
        return best

    # ------------------------------------------------------------ payments

    async def send(
        self,
        payer: SimNode,
        destination: str,
        amount_msat: int,
        *,
        payment_hash: str,
        maxfee_msat: int,
        label: str | None = None,
        bolt11: str | None = None,
        bolt12: str | None = None,
        description: str | None = None,
        keysend_preimage: str | None = None,
        xpay: bool = False,
    ) -> SendPay:
        """Pay ``destination``; returns the completed SendPay or raises RpcFault."""
        faults = self.faults
        dst = self.by_id(destination)
        if dst is payer:
            raise RpcFault(LIGHTNINGD, "This is a payment to ourselves")
        route = None if dst is None else self.find_route(payer, dst, amount_msat)
        if faults.no_route or destination in faults.no_route_to or route is None:
            if keysend_preimage is not None and not xpay:
                # The pay plugin's keysend gives up with 210.
                raise RpcFault(
                    PAY_STOPPED_RETRYING,
                    "Ran out of routes to try after 1 attempt: see `paystatus`",
                )
            raise RpcFault(
                PAY_ROUTE_NOT_FOUND,
                f"Failed after 1 attempts. We could not find a route to {destination}",
            )
        assert dst is not None
        fee = route[0][2] - amount_msat
        if fee > maxfee_msat:
            if xpay:
                raise RpcFault(
                    PAY_ROUTE_NOT_FOUND,
                    f"Could not find route without excessive cost (fee {fee}msat > maxfee {maxfee_msat}msat)",
                )
            raise RpcFault(
                PAY_ROUTE_TOO_EXPENSIVE,
                "Route too expensive",
                {"fee": fee, "feepercent": 100 * fee / max(1, amount_msat)},
            )
        sp = SendPay(
            id=next(self._sendpay_ids),
            created_index=payer.indexes["sendpays"]["created"] + 1,
            groupid=next(self._groupids),
            payment_hash=payment_hash,
            amount_msat=amount_msat,
            amount_sent_msat=route[0][2],
            destination=destination,
            created_at=int(time.time()),
            label=label,
            bolt11=bolt11,
            bolt12=bolt12,
            description=description,
        )
        payer.sendpays.append(sp)
        payer._bump("sendpays", "created")

        restart = faults.restart_mid_payment
        if restart is not None:
            faults.restart_mid_payment = None
            if restart == "completed":
                self._settle(payer, dst, sp, route, keysend_preimage)
            else:
                self._fail(payer, sp)
            self.spawn(payer.simulate_restart(faults.restart_downtime_s))
            raise NodeRestart
        if faults.payment_timeout:
            await asyncio.sleep(faults.timeout_after_s)
            self._fail(payer, sp)
            if xpay:
                raise RpcFault(
                    PAY_OTHER_ERROR,
                    f"Failed after 1 attempts: timed out after {faults.timeout_after_s}s",
                )
            raise RpcFault(
                PAY_STOPPED_RETRYING, "Payment timed out without a payment in progress"
            )
        if faults.payment_latency_s:
            await asyncio.sleep(faults.payment_latency_s)
            route = self.find_route(payer, dst, amount_msat)
            if route is None or route[0][2] != sp.amount_sent_msat:
                self._fail(payer, sp)
                raise RpcFault(
                    PAY_ROUTE_NOT_FOUND, "Ran out of routes to try after 1 attempt"
                )
        problem = self._payee_refuses(dst, sp, keysend_preimage)
        if problem is not None:
            self._fail(payer, sp)
            raise RpcFault(
                PAY_DESTINATION_PERM_FAIL,
                f"Destination said it doesn't know invoice: {problem}",
                {
                    "erring_index": len(route),
                    "erring_node": destination,
                    "erring_channel": route[-1][0].scid,
                    "failcode": 16399,
                    "failcodename": "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS",
                },
            )
        self._settle(payer, dst, sp, route, keysend_preimage)
        return sp

    @staticmethod
    def _payee_refuses(
        dst: SimNode, sp: SendPay, keysend_preimage: str | None
    ) -> str | None:
        if keysend_preimage is not None:
            return None
        inv = next((i for i in dst.invoices if i.payment_hash == sp.payment_hash), None)
        if inv is None:
            return "incorrect_or_unknown_payment_details"
        if inv.current_status(time.time()) != "unpaid":
            return "incorrect_or_unknown_payment_details"
        if inv.amount_msat is not None and sp.amount_msat < inv.amount_msat:
            return "incorrect_or_unknown_payment_details"
        return None

    def _fail(self, payer: SimNode, sp: SendPay) -> None:
        sp.status = "failed"
        sp.completed_at = int(time.time())
        sp.updated_index = payer._bump("sendpays", "updated")

    def _settle(
        self,
        payer: SimNode,
        dst: SimNode,
        sp: SendPay,
        route: list[tuple[Channel, SimNode, int]],
        keysend_preimage: str | None,
    ) -> None:
        now = int(time.time())
        for i, (ch, sender, amount) in enumerate(route):
            ch.move(sender, amount)
            if i > 0:
                prev_ch, _, prev_amount = route[i - 1]
                sender.fees_collected_msat += prev_amount - amount
                fw = Forward(
                    created_index=sender.indexes["forwards"]["created"] + 1,
                    in_channel=prev_ch.scid,
                    in_htlc_id=next(self._htlc_ids),
                    in_msat=prev_amount,
                    out_channel=ch.scid,
                )
                sender.forwards.append(fw)
                sender._bump("forwards", "created")
        if keysend_preimage is not None:
            inv = dst._add_invoice(
                InvoiceRecord(
                    label=f"keysend-{time.time():.9f}",
                    description=None,
                    payment_hash=sp.payment_hash,
                    preimage=keysend_preimage,
                    amount_msat=sp.amount_msat,
                    expires_at=now + DEFAULT_EXPIRY,
                    created_index=dst.indexes["invoices"]["created"] + 1,
                )
            )
            dst._bump("invoices", "created")
        else:
            inv = next(i for i in dst.invoices if i.payment_hash == sp.payment_hash)
        dst.pay_index += 1
        inv.status = "paid"
        inv.pay_index = dst.pay_index
        inv.amount_received_msat = sp.amount_msat
        inv.paid_at = now
        inv.updated_index = dst._bump("invoices", "updated")
        if inv.local_offer_id and inv.local_offer_id in dst.offers:
            offer = dst.offers[inv.local_offer_id]
            offer.used = True
            if offer.single_use:
                offer.active = False
        sp.status = "complete"
        sp.preimage = inv.preimage
        sp.completed_at = now
        sp.updated_index = payer._bump("sendpays", "updated")

    # ------------------------------------------------------------ inspection

    def channel_between(self, a: SimNode, b: SimNode) -> Channel:
        """The (first) channel joining a and b."""
        for ch in self.channels:
            if {ch.opener.node_id, ch.peer.node_id} == {a.node_id, b.node_id}:
                return ch
        raise KeyError(f"no channel between {a.name} and {b.name}")

    def balance_msat(self, node: SimNode, peer: SimNode) -> int:
        """``node``'s side of its channel with ``peer``."""
        return self.channel_between(node, peer).balance[node.node_id]

    def total_msat(self) -> int:
        """Sum of every channel's capacity (conserved by payments)."""
        return sum(ch.total_msat for ch in self.channels)
