"""Validate responses against Core Lightning's own JSON schemas.

The schemas (``cln_schemas/<method>.json`` beside this file: Core Lightning
v26.06's own, copied unchanged, BSD-MIT — see its README) use CLN's type names
(``msat``, ``pubkey``, ``u32`` …); this maps them for ``jsonschema``.
Set ``HASHGRID_CLN_SCHEMAS`` to use another copy.
"""

from __future__ import annotations

from functools import cache
import json
import os
from pathlib import Path
import re
from typing import Any

import jsonschema
from jsonschema import Draft7Validator

_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
_SCID = re.compile(r"^\d+x\d+x\d+$")
_SCID_DIR = re.compile(r"^\d+x\d+x\d+/[01]$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_\-]*={0,2}$")


def schema_dir() -> Path:
    """Where the CLN schemas are."""
    env = os.environ.get("HASHGRID_CLN_SCHEMAS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "cln_schemas"


def _uint(bits: int) -> Any:
    def check(_checker: Any, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 0 <= value < 2**bits
        )

    return check


def _hex(length: int | None = None) -> Any:
    def check(_checker: Any, value: Any) -> bool:
        return (
            isinstance(value, str)
            and bool(_HEX.match(value))
            and (length is None or len(value) == length)
        )

    return check


def _regex(pattern: re.Pattern[str]) -> Any:
    def check(_checker: Any, value: Any) -> bool:
        return isinstance(value, str) and bool(pattern.match(value))

    return check


def _is_msat(_checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_string(_checker: Any, value: Any) -> bool:
    return isinstance(value, str)


_TYPES: dict[str, Any] = {
    "msat": _is_msat,
    "msat_or_any": lambda c, v: v == "any" or _is_msat(c, v),
    "u8": _uint(8),
    "u16": _uint(16),
    "u32": _uint(32),
    "u64": _uint(64),
    "hex": _hex(),
    "pubkey": _hex(66),
    "hash": _hex(64),
    "txid": _hex(64),
    "secret": _hex(64),
    "bip340sig": _hex(128),
    "signature": _hex(),
    "short_channel_id": _regex(_SCID),
    "short_channel_id_dir": _regex(_SCID_DIR),
    "rune": _regex(_BASE64URL),
    "currency": _is_string,
    "ipv4": _is_string,
}

ClnValidator = jsonschema.validators.extend(
    Draft7Validator,
    type_checker=Draft7Validator.TYPE_CHECKER.redefine_many(_TYPES),
)


@cache
def load(method: str) -> dict[str, Any]:
    """The schema file of ``method`` (request, response, examples)."""
    schema: dict[str, Any] = json.loads(
        (schema_dir() / f"{method}.json").read_text(encoding="utf-8")
    )
    return schema


def response_errors(method: str, response: Any) -> list[str]:
    """Every way ``response`` breaks the response schema of ``method``."""
    validator = ClnValidator(load(method)["response"])
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in validator.iter_errors(response)
    ]


def validate_response(method: str, response: Any) -> None:
    """Raise AssertionError listing the schema violations, if any."""
    errors = response_errors(method, response)
    if errors:
        raise AssertionError(
            f"{method} response breaks CLN's schema:\n" + "\n".join(errors)
        )
