"""The control API's guard: a token, required whenever the simulator listens beyond loopback.

The token comes as `Authorization: Bearer <token>` or as the cookie `simtoken` (which the
browser dashboard sets once it has asked for it). No Flask here: the control blueprint asks
`accepts` with what the request presented.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets

TOKEN_ENV = "SIMULATOR_TOKEN"
TOKEN_COOKIE = "simtoken"
# what fits both an HTTP header and a cookie unquoted; long enough not to be guessed
TOKEN_FORM = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")


def listens_beyond_loopback(host: str) -> bool:
    """Whether a server bound to `host` can be reached from other machines.

    Anything but a loopback address or `localhost` counts as beyond: `0.0.0.0`, `::`, a
    name that may resolve to a public address.
    """
    if host.strip().lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def new_token() -> str:
    """A fresh token: 256 random bits from `secrets`, in hex (safe to paste after `--token`)."""
    return secrets.token_hex(32)


def checked_token(token: str) -> str:
    """`token` if it can be used as one; ValueError saying what a token must be otherwise."""
    if not TOKEN_FORM.fullmatch(token):
        raise ValueError(
            "a token is 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = -, "
            f"got {len(token)} characters{'' if token.isascii() else ' with non-ASCII ones'}"
        )
    return token


def token_for(host: str, given: str | None) -> tuple[str | None, bool]:
    """The token a server on `host` needs, and whether it was made here rather than given.

    A given token is always required; without one, loopback needs none and any other host
    gets a new one.
    """
    if given:
        return checked_token(given), False
    if listens_beyond_loopback(host):
        return new_token(), True
    return None, False


def presented(authorization: str | None, cookie: str | None) -> str | None:
    """The token a request presents: the bearer credential, else the `simtoken` cookie."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    return cookie or None


def accepts(token: str, given: str | None) -> bool:
    """Whether `given` is `token`, compared in constant time (bytes, so any text compares)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())
