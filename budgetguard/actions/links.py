"""Signed, expiring approval links: ``{public_url}/actions/{id}/approve?exp=...&sig=...``.

The signature is an HMAC-SHA256 over the store's installation id, the action's id and key
and the expiry, with a secret setting (``BUDGETGUARD_ACTION_LINK_SECRET``): a link approves
that one action of that one store until it expires, and the secret never leaves the process.
Following the link (GET) only shows a form; the approval is the form's POST, so a chat app
that previews links never approves anything.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlencode

__all__ = ["LINK_LIFETIME", "approve_url", "sign", "verify"]

#: How long an approval link works (seconds).
LINK_LIFETIME = 24 * 3600


def sign(secret: str, installation: str, action_id: int, action_key: str, expires: int) -> str:
    message = f"{installation}:{action_id}:{action_key}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def approve_url(
    base: str,
    secret: str,
    installation: str,
    action_id: int,
    action_key: str,
    now: int,
) -> str:
    expires = now + LINK_LIFETIME
    query = urlencode(
        {"exp": expires, "sig": sign(secret, installation, action_id, action_key, expires)}
    )
    return f"{base.rstrip('/')}/actions/{action_id}/approve?{query}"


def verify(
    secret: str,
    installation: str,
    action_id: int,
    action_key: str,
    query: str,
    now: int,
) -> str | None:
    """None when the query signs this action and has not expired, else why not."""
    fields = parse_qs(query)
    try:
        expires = int(fields["exp"][0])
        given = fields["sig"][0]
    except (KeyError, IndexError, ValueError):
        return "the link is incomplete"
    if expires < now:
        return "the link has expired"
    wanted = sign(secret, installation, action_id, action_key, expires)
    if not hmac.compare_digest(wanted, given):
        return "the link is not valid"
    return None
