"""Amounts of a settlement: sane bounds and exact decimal arithmetic.

Meter readings and prices come from sensors as strings; here they become exact
``Decimal`` values or ``None`` (not a number, not finite, absurd, too many
decimal places). :data:`EXACT` is a decimal context wide enough that no sum or
product of bounded inputs is ever rounded (an inexact result raises instead).
No Home Assistant imports.
"""

from __future__ import annotations

from decimal import (
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

#: Bounds of what a meter, a price or an amount may be (far above any real one).
MAX_METER_KWH = Decimal(10) ** 12
MAX_PRICE_SATS_PER_KWH = Decimal(10) ** 8  # 1 BTC per kWh
MAX_AMOUNT_MSAT = 21_000_000 * 100_000_000 * 1000  # every bitcoin there will be
MAX_DECIMALS = 30
#: Wide enough for any product of bounded inputs; an inexact result raises.
EXACT = Context(prec=200, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])


def to_decimal(value: Decimal | str | int | float | None) -> Decimal | None:
    """An exact, finite Decimal of at most ``MAX_DECIMALS`` places and a sane
    magnitude (< 10**15), or None (unavailable/unknown/garbage/absurd)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation, ValueError:
        return None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_DECIMALS or number.adjusted() > 15:
        return None
    return number


def meter_kwh(value: Decimal | str | int | float | None) -> Decimal | None:
    """A meter reading a settlement may use: a number in [0, MAX_METER_KWH]."""
    number = to_decimal(value)
    if number is None or not 0 <= number <= MAX_METER_KWH:
        return None
    return number


def price_sats(value: Decimal | str | int | float | None) -> Decimal | None:
    """A price a settlement may use: a number in [0, MAX_PRICE_SATS_PER_KWH]."""
    number = to_decimal(value)
    if number is None or not 0 <= number <= MAX_PRICE_SATS_PER_KWH:
        return None
    return number


def floor_to_unit(exact_msat: Decimal, unit_msat: int) -> int:
    """Round an exact msat amount down to a multiple of ``unit_msat``."""
    with localcontext(EXACT) as ctx:
        ctx.traps[Inexact] = False  # the division may be inexact; the floor is not
        units = (exact_msat / unit_msat).to_integral_value(rounding=ROUND_FLOOR)
    amount = int(units) * unit_msat
    with localcontext(EXACT):  # the floor is exact: amount <= exact < amount + unit
        if not amount <= exact_msat < amount + unit_msat:
            raise ArithmeticError(f"cannot floor {exact_msat} to {unit_msat}")
    return amount
