"""The GitHub Action's pull-request comment: one comment per pull request, found again by a
hidden marker and updated in place (as Infracost does), never a new comment per push.

``python -m budgetguard.github comment BODY_FILE`` reads the token from ``GITHUB_TOKEN``,
the repository from ``GITHUB_REPOSITORY``, the pull request from ``BUDGETGUARD_PR`` or the
event (``GITHUB_EVENT_PATH``) and the API from ``GITHUB_API_URL``. It prints one line (what
it did, or why not) and exits 0 whatever GitHub answered: a comment is a courtesy, the
step's outcome is the check's. The token is never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["MARKER", "main", "upsert_comment"]

#: The hidden first line of budgetguard's comment: how the next run finds it.
MARKER = "<!-- budgetguard-check -->"
_MAX_BODY = 65_000  # GitHub refuses comments over 65,536 characters
_TIMEOUT = 15.0


def _pull_request() -> int | None:
    given = os.environ.get("BUDGETGUARD_PR", "").strip()
    if given.isdigit():
        return int(given)
    event = os.environ.get("GITHUB_EVENT_PATH")
    if not event or not Path(event).is_file():
        return None
    try:
        body = json.loads(Path(event).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = (body.get("pull_request") or {}).get("number") if isinstance(body, dict) else None
    return number if isinstance(number, int) else None


def upsert_comment(api: str, repository: str, number: int, token: str, body: str) -> str:
    """Update budgetguard's comment on pull request ``number``, or post it; what was done."""
    import httpx

    text = MARKER + "\n" + body
    if len(text) > _MAX_BODY:
        text = text[: _MAX_BODY - 40] + "\n\n… (cut: see the step summary)"
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "budgetguard",
    }
    with httpx.Client(base_url=api.rstrip("/"), headers=headers, timeout=_TIMEOUT) as client:
        found = None
        for page in range(1, 51):  # 5,000 comments at most
            answer = client.get(
                f"/repos/{repository}/issues/{number}/comments",
                params={"per_page": 100, "page": page},
            )
            answer.raise_for_status()
            comments: list[dict[str, Any]] = answer.json()
            found = next((c for c in comments if str(c.get("body", "")).startswith(MARKER)), None)
            if found is not None or len(comments) < 100:
                break
        if found is not None:
            client.patch(
                f"/repos/{repository}/issues/comments/{found['id']}", json={"body": text}
            ).raise_for_status()
            return f"updated comment {found['id']} on pull request #{number}"
        answer = client.post(f"/repos/{repository}/issues/{number}/comments", json={"body": text})
        answer.raise_for_status()
        return f"posted comment {answer.json().get('id')} on pull request #{number}"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "comment":
        print("usage: python -m budgetguard.github comment BODY_FILE", file=sys.stderr)
        return 2
    token = os.environ.get("GITHUB_TOKEN", "")
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    number = _pull_request()
    if not token or not repository or number is None:
        print("budgetguard: no pull-request comment (needs a token and a pull request)")
        return 0
    api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    try:
        body = Path(argv[1]).read_text(encoding="utf-8")
        print(f"budgetguard: {upsert_comment(api, repository, number, token, body)}")
    except Exception as exc:  # a courtesy: say why, never fail the step, never the token
        detail = getattr(getattr(exc, "response", None), "status_code", None)
        why = f"HTTP {detail}" if detail else type(exc).__name__
        print(f"::warning title=budgetguard::pull-request comment not written ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
