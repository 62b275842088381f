"""HTTP for the simulated miners: an aiohttp low-level server per listener.

Also holds the HTTP digest authentication (RFC 7616, MD5, qop=auth) that
Antminer's lighttpd uses, so `httpx.DigestAuth` in pyasic really negotiates.
"""

from __future__ import annotations

from hashlib import md5
import re
import secrets

from aiohttp import web

_DIGEST_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def _h(text: str) -> str:
    return md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_challenge(realm: str) -> web.Response:
    """Return the 401 that asks for digest credentials."""
    nonce = secrets.token_hex(16)
    return web.Response(
        status=401,
        text="<html><body><h1>401 Unauthorized</h1></body></html>",
        content_type="text/html",
        headers={
            "WWW-Authenticate": f'Digest realm="{realm}", nonce="{nonce}", qop="auth"'
        },
    )


def digest_ok(request: web.BaseRequest, realm: str, user: str, password: str) -> bool:
    """Return True when the request carries a valid digest for user/password."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Digest "):
        return False
    params = {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _DIGEST_PARAM.finditer(header[len("Digest ") :])
    }
    try:
        if params["username"] != user or params.get("realm") != realm:
            return False
        ha1 = _h(f"{user}:{realm}:{password}")
        ha2 = _h(f"{request.method}:{params['uri']}")
        if params.get("qop") == "auth":
            parts = [ha1, params["nonce"], params["nc"], params["cnonce"], "auth", ha2]
        else:
            parts = [ha1, params["nonce"], ha2]
    except KeyError:
        return False
    return secrets.compare_digest(_h(":".join(parts)), params.get("response", ""))


def not_found() -> web.Response:
    """Return a plain (non-JSON) 404 page, as embedded web servers do."""
    return web.Response(
        status=404,
        text="<html><body><h1>404 Not Found</h1></body></html>",
        content_type="text/html",
    )
