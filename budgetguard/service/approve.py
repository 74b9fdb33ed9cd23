"""``/actions/{id}/approve``: the approval link of a notification, served by ``run``.

GET shows what the action does and a button; only the button's POST approves (a chat app
that previews the link, or a mail scanner that follows it, approves nothing). Both check the
link's signature and expiry (``actions.links``) first; the approval then goes through the
same state machine as ``budgetguard actions approve`` (claimed: a second click, or another
replica's, finds it applying or applied), with "link" as who in the log.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
    from budgetguard.store import Store

__all__ = ["APPROVE_CSP", "APPROVE_PATH", "approve_request"]

APPROVE_PATH = re.compile(r"^/actions/([0-9]{1,18})/approve$")
#: the approval page posts its one form to itself, and loads nothing
APPROVE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><meta charset=utf-8><title>budgetguard · "
        f"{html.escape(title)}</title><body style='font-family:sans-serif;max-width:40em'>"
        f"<h1>{html.escape(title)}</h1>{body}</body>"
    )


def approve_request(
    method: str,
    action_id: int,
    query: str,
    settings: Settings,
    rules: Rules,
    store: Store,
    now: datetime,
) -> tuple[int, str]:
    """(HTTP status, HTML) of a GET (the form) or POST (the approval) of the link."""
    from budgetguard.actions import verify

    secret = settings.action_link_secret
    row = store.actions.get(action_id)
    if secret is None or row is None:
        return 404, _page("no such action", "<p>This link does not name an action here.</p>")
    why = verify(
        secret.get_secret_value(),
        store.installation_id(),
        action_id,
        row.action_key,
        query,
        int(now.timestamp()),
    )
    if why is not None:
        return 403, _page("link refused", f"<p>{html.escape(why)}.</p>")
    what = html.escape(f"action {row.id} {row.action_name} ({row.type}): {row.reason}")
    if row.state != "pending_approval":
        return 409, _page("not waiting", f"<p>{what}</p><p>It is {html.escape(row.state)}.</p>")
    if method == "GET":
        form = (
            f"<p>{what}</p><form method=post action='/actions/{row.id}/approve?"
            f"{html.escape(query, quote=True)}'><button>Approve and apply now</button></form>"
        )
        return 200, _page("approve an action", form)
    return _apply(row.id, settings, rules, store, now)


def _apply(
    action_id: int, settings: Settings, rules: Rules, store: Store, now: datetime
) -> tuple[int, str]:
    from budgetguard import pipeline

    action = None
    row = store.actions.get(action_id)
    if row is not None:
        action = rules.actions.get(row.action_name)
    if not settings.actions_write or action is None or not action.enforce:
        return 409, _page("actions are off", "<p>Nothing was written.</p>")
    if store.actions.switched_off():
        return 409, _page("the kill switch is on", "<p>Nothing was written.</p>")
    runner = pipeline.action_runner(settings, store, rules, now, who="link")
    claimed = runner.claim_one(action_id, ("pending_approval",))
    if claimed is None:
        return 409, _page("being handled", "<p>Another approval is applying it.</p>")
    after = runner.apply(claimed, note="approved by its link")
    state = after.state if after is not None else "not moved"
    return 200, _page(f"action {action_id}: {state}", "<p>See `budgetguard actions log`.</p>")
