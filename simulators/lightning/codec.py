"""Invoice, offer and amount encodings of the simulated Core Lightning nodes.

The strings look like the real ones (``lnbcrt…`` BOLT11 invoices with the amount in
the human-readable part, ``lno1…`` BOLT12 offers, ``lni1…`` BOLT12 invoices, all
bech32 with a checksum), but their data part is the simulator's own: a compact JSON
payload, not signed TLVs. Only this simulator's ``decode`` understands them. They are
deterministic (same fields, same string) and carry what a client reads back through
``decode``: amount, payee, payment hash, description, expiry, creation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
import hashlib
import json
from typing import Any

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)

# BOLT11 currency prefix per network.
CURRENCY = {"bitcoin": "bc", "testnet": "tb", "signet": "tbs", "regtest": "bcrt"}
# BOLT11 amount multipliers, in millisatoshi per unit (p is a tenth of a msat).
_MULTIPLIERS_MSAT = {"m": Decimal(10**8), "u": Decimal(10**5), "n": Decimal(100)}
MSAT_PER_BTC = 10**11


class DecodeError(ValueError):
    """A string is not something this simulator encoded."""


# ---------------------------------------------------------------- bech32


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _GEN[i] if ((top >> i) & 1) else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(
    data: bytes | list[int], frombits: int, tobits: int, pad: bool
) -> list[int]:
    acc = 0
    bits = 0
    ret: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if pad:
        if bits:
            ret.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise DecodeError("invalid padding")
    return ret


def bech32_encode(hrp: str, payload: bytes) -> str:
    """Encode bytes as bech32 (no length limit, like BOLT11)."""
    data = _convertbits(payload, 8, 5, True)
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a bech32 string into (hrp, bytes); DecodeError if it is not one."""
    if text.lower() != text and text.upper() != text:
        raise DecodeError("mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise DecodeError("invalid bech32 string")
    hrp, rest = text[:pos], text[pos + 1 :]
    if any(c not in CHARSET for c in rest):
        raise DecodeError("invalid bech32 character")
    data = [CHARSET.find(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise DecodeError("bad checksum")
    return hrp, bytes(_convertbits(data[:-6], 5, 8, False))


# ---------------------------------------------------------------- amounts


def parse_msat(value: Any, *, allow_any: bool = False) -> int | None:
    """Parse a CLN amount: an integer (msat), or "123msat"/"5sat"/"0.1btc".

    Returns None for "any" when allowed; raises ValueError otherwise.
    """
    if isinstance(value, bool):
        raise ValueError("should be a millisatoshi amount")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("should be a millisatoshi amount")
        return value
    if isinstance(value, str):
        if value == "any" and allow_any:
            return None
        for suffix, factor in (("msat", 1), ("sat", 1000), ("btc", MSAT_PER_BTC)):
            if value.endswith(suffix):
                try:
                    amount = Decimal(value[: -len(suffix)]) * factor
                except InvalidOperation:
                    break
                if amount != amount.to_integral_value() or amount < 0:
                    break
                return int(amount)
        if value.isdigit():
            return int(value)
    raise ValueError("should be a millisatoshi amount")


def bolt11_amount(amount_msat: int) -> str:
    """The amount part of a BOLT11 human-readable part (e.g. 10000 -> "100n")."""
    if amount_msat % MSAT_PER_BTC == 0:
        return str(amount_msat // MSAT_PER_BTC)
    for unit, per in _MULTIPLIERS_MSAT.items():
        if amount_msat % int(per) == 0:
            return f"{amount_msat // int(per)}{unit}"
    return f"{amount_msat * 10}p"


def _parse_bolt11_amount(text: str) -> int:
    if not text:
        raise DecodeError("empty amount")
    unit = text[-1]
    if unit.isdigit():
        return int(text) * MSAT_PER_BTC
    number = text[:-1]
    if not number.isdigit():
        raise DecodeError("invalid amount")
    if unit == "p":
        if int(number) % 10:
            raise DecodeError("sub-millisatoshi amount")
        return int(number) // 10
    if unit not in _MULTIPLIERS_MSAT:
        raise DecodeError("invalid amount multiplier")
    return int(number) * int(_MULTIPLIERS_MSAT[unit])


# ---------------------------------------------------------------- payloads


def _pack(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _unpack(payload: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(payload.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DecodeError("invalid payload") from err
    if not isinstance(fields, dict):
        raise DecodeError("invalid payload")
    return fields


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of data."""
    return hashlib.sha256(data).hexdigest()


def fake_der_signature(key: bytes, payload: bytes) -> str:
    """A deterministic DER-shaped ECDSA signature (hex); not a real signature."""
    r = hashlib.sha256(b"r" + key + payload).digest()
    s = hashlib.sha256(b"s" + key + payload).digest()
    r_enc = (b"\x00" + r) if r[0] & 0x80 else r
    s_enc = (b"\x00" + s) if s[0] & 0x80 else s
    body = b"\x02" + bytes([len(r_enc)]) + r_enc + b"\x02" + bytes([len(s_enc)]) + s_enc
    return (b"\x30" + bytes([len(body)]) + body).hex()


def fake_schnorr_signature(key: bytes, payload: bytes) -> str:
    """A deterministic 64-byte BIP340-shaped signature (hex); not a real signature."""
    return hashlib.sha512(b"bip340" + key + payload).hexdigest()


@dataclass(frozen=True, slots=True)
class Bolt11:
    """The fields of a simulated BOLT11 invoice."""

    currency: str
    payee: str
    payment_hash: str
    payment_secret: str
    amount_msat: int | None
    description: str
    created_at: int
    expiry: int
    min_final_cltv_expiry: int = 5

    def encode(self) -> str:
        """The invoice string, ``ln<currency><amount>1…``."""
        hrp = "ln" + self.currency
        if self.amount_msat is not None:
            hrp += bolt11_amount(self.amount_msat)
        return bech32_encode(hrp, _pack(self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "c": self.min_final_cltv_expiry,
            "d": self.description,
            "h": self.payment_hash,
            "n": self.payee,
            "s": self.payment_secret,
            "t": self.created_at,
            "x": self.expiry,
        }

    @property
    def expires_at(self) -> int:
        """Unix time after which the invoice cannot be paid."""
        return self.created_at + self.expiry

    def signature(self) -> str:
        """The (fake) DER signature shown by decode."""
        return fake_der_signature(bytes.fromhex(self.payee), _pack(self._fields()))


@dataclass(frozen=True, slots=True)
class Offer:
    """The fields of a simulated BOLT12 offer."""

    issuer_id: str
    description: str | None
    amount_msat: int | None
    issuer: str | None = None
    quantity_max: int | None = None
    absolute_expiry: int | None = None
    nonce: str = ""

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"i": self.issuer_id, "m": self.nonce}
        for key, value in (
            ("a", self.amount_msat),
            ("d", self.description),
            ("e", self.absolute_expiry),
            ("q", self.quantity_max),
            ("u", self.issuer),
        ):
            if value is not None:
                fields[key] = value
        return fields

    def encode(self) -> str:
        """The offer string, ``lno1…``."""
        return bech32_encode("lno", _pack(self._fields()))

    @property
    def offer_id(self) -> str:
        """The offer id (here: sha256 of the payload)."""
        return sha256_hex(_pack(self._fields()))


@dataclass(frozen=True, slots=True)
class Bolt12Invoice:
    """The fields of a simulated BOLT12 invoice (the answer to fetchinvoice)."""

    offer: Offer
    payer_id: str
    payer_metadata: str
    amount_msat: int
    payment_hash: str
    created_at: int
    relative_expiry: int
    quantity: int | None = None
    payer_note: str | None = None

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "o": self.offer._fields(),
            "p": self.payer_id,
            "pm": self.payer_metadata,
            "a": self.amount_msat,
            "h": self.payment_hash,
            "t": self.created_at,
            "x": self.relative_expiry,
        }
        if self.quantity is not None:
            fields["q"] = self.quantity
        if self.payer_note is not None:
            fields["pn"] = self.payer_note
        return fields

    def encode(self) -> str:
        """The invoice string, ``lni1…``."""
        return bech32_encode("lni", _pack(self._fields()))

    @property
    def expires_at(self) -> int:
        """Unix time after which the invoice cannot be paid."""
        return self.created_at + self.relative_expiry

    @property
    def node_id(self) -> str:
        """The node that gets paid."""
        return self.offer.issuer_id

    def signature(self) -> str:
        """The (fake) BIP340 signature shown by decode."""
        return fake_schnorr_signature(
            bytes.fromhex(self.node_id), _pack(self._fields())
        )


def _offer_from(fields: dict[str, Any]) -> Offer:
    try:
        return Offer(
            issuer_id=str(fields["i"]),
            description=fields.get("d"),
            amount_msat=fields.get("a"),
            issuer=fields.get("u"),
            quantity_max=fields.get("q"),
            absolute_expiry=fields.get("e"),
            nonce=str(fields.get("m", "")),
        )
    except KeyError as err:
        raise DecodeError("missing offer field") from err


def decode_bolt11(text: str) -> Bolt11:
    """Parse a simulated BOLT11 invoice."""
    hrp, payload = bech32_decode(text)
    if not hrp.startswith("ln"):
        raise DecodeError("invoices must start with ln")
    for currency in sorted(CURRENCY.values(), key=len, reverse=True):
        if hrp[2:].startswith(currency):
            break
    else:
        raise DecodeError("unknown currency")
    amount_text = hrp[2 + len(currency) :]
    amount = _parse_bolt11_amount(amount_text) if amount_text else None
    fields = _unpack(payload)
    try:
        return Bolt11(
            currency=currency,
            payee=str(fields["n"]),
            payment_hash=str(fields["h"]),
            payment_secret=str(fields["s"]),
            amount_msat=amount,
            description=str(fields["d"]),
            created_at=int(fields["t"]),
            expiry=int(fields["x"]),
            min_final_cltv_expiry=int(fields["c"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DecodeError("missing invoice field") from err


def decode_offer(text: str) -> Offer:
    """Parse a simulated BOLT12 offer."""
    hrp, payload = bech32_decode(text)
    if hrp != "lno":
        raise DecodeError("offers must start with lno1")
    return _offer_from(_unpack(payload))


def decode_bolt12_invoice(text: str) -> Bolt12Invoice:
    """Parse a simulated BOLT12 invoice."""
    hrp, payload = bech32_decode(text)
    if hrp != "lni":
        raise DecodeError("invoices must start with lni1")
    fields = _unpack(payload)
    try:
        return Bolt12Invoice(
            offer=_offer_from(fields["o"]),
            payer_id=str(fields["p"]),
            payer_metadata=str(fields["pm"]),
            amount_msat=int(fields["a"]),
            payment_hash=str(fields["h"]),
            created_at=int(fields["t"]),
            relative_expiry=int(fields["x"]),
            quantity=fields.get("q"),
            payer_note=fields.get("pn"),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DecodeError("missing invoice field") from err
