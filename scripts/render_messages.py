#!/usr/bin/env python
"""Render sample alerts as every receiver gets them, and screenshot the email HTML.

    python scripts/render_messages.py [OUT_DIR]    # default: ./message-samples

Builds four alerts through the real stages (lifecycle -> grouping -> outbox body): 75, 90 and
100 % crossed at once, a forecast, its resolution and a no_data; then writes, per alert, the
email's text and HTML, the Slack Block Kit payload, the webhook JSON body, the PagerDuty
Events v2 event(s) and the Teams Adaptive Card. With Chromium installed (Debian:
``apt-get install chromium``) it screenshots each email HTML to a PNG, to look at how an
e-mail client would show it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from budgetguard_email import render_email, subject
from budgetguard_pagerduty import events
from budgetguard_slack import alert_blocks
from budgetguard_teams import message_body

from budgetguard.alerts import Notification, group_events, render, transitions
from budgetguard.evaluate.evaluator import Finding
from budgetguard.evaluate.windows import budget_window
from budgetguard.notify import Alert
from budgetguard.rules import Budget, load_rules_text

RULES = load_rules_text("""
version: 1
notifiers: {oncall: {type: console}}
budgets:
  - name: chatbot-day
    description: Support chatbot's daily spend on GPT-4o
    runbook_url: https://wiki.example.com/runbooks/chatbot-spend
    labels: {team: chat, env: prod}
    match: {project: "Support*"}
    each: project
    limit: 1000
    window: 24h
    thresholds: [75%, 90%, 100%]
    notify: [oncall]
  - name: org-month
    description: The whole organisation, this calendar month
    limit: 6200
    period: month
    forecast: true
    thresholds: [100%]
    notify: [oncall]
""")
DAY, MONTH = RULES.budgets
NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)
NAMES = {"proj_chatbot": "Support chatbot"}


def finding(
    budget: Budget, spend: float | None, now: datetime, forecast: float | None = None
) -> Finding:
    value = None if spend is None else Decimal(str(spend))
    ahead = None if forecast is None else Decimal(str(forecast))
    limit = budget.limit or Decimal(1)
    crossed = (
        () if value is None else tuple(t for t in budget.thresholds if value >= t.ratio * limit)
    )
    over = () if ahead is None else tuple(t for t in budget.thresholds if ahead >= t.ratio * limit)
    severity = "unknown" if value is None else ("critical" if crossed else "ok")
    group = {"project": "proj_chatbot"} if budget.each else {}
    note = "costs: data is 7.0h old" if value is None else None
    return Finding(
        budget, group, budget_window(budget, now, "UTC"), value, budget.limit, ahead,
        severity, "costs", value is not None, note, crossed, over,
    )  # fmt: skip


def data_end(query: str) -> int:
    """Where each query's data ends: the costs are 7 hours late, usage is current."""
    return int((NOW - timedelta(hours=7 if query == "costs" else 0)).timestamp())


def samples() -> dict[str, Alert]:
    def body(note: Notification, fired: float | None = None) -> Alert:
        raw = render(note, NAMES, fired, data_end)
        return Alert.from_payload(json.loads(json.dumps(raw.to_payload())))

    out: dict[str, Alert] = {}
    changed, evs = transitions([finding(DAY, 1240, NOW)], {}, NOW)
    out["fired"] = body(group_events(evs)[0])
    later = NOW + timedelta(hours=5)
    _, evs = transitions([finding(DAY, 610, later)], dict(changed), later)
    out["resolved"] = body(group_events(evs)[0], 1240.0)
    _, evs = transitions([finding(MONTH, 4250.40, NOW, 6359.68)], {}, NOW)
    out["forecast"] = body(group_events(evs)[0])
    _, evs = transitions([finding(DAY, None, NOW)], {}, NOW)
    out["no_data"] = body(group_events(evs)[0])
    return out


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "message-samples")
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    for name, alert in samples().items():
        text, html = render_email(alert)
        (out / f"{name}.email.txt").write_text(f"Subject: {subject(alert)}\n\n{text}")
        page = out / f"{name}.email.html"
        page.write_text(f"<!doctype html><meta charset=utf-8><body>{html}</body>")
        fallback, attachments = alert_blocks(alert)
        slack = {"text": fallback, "attachments": attachments}
        (out / f"{name}.slack.json").write_text(json.dumps(slack, indent=2))
        (out / f"{name}.webhook.json").write_text(json.dumps(alert.payload, indent=2))
        pd = events(alert, "<routing key>")
        (out / f"{name}.pagerduty.json").write_text(json.dumps(pd, indent=2))
        (out / f"{name}.teams.json").write_text(json.dumps(message_body(alert), indent=2))
        if chromium:
            subprocess.run(  # noqa: S603  (chromium from PATH, arguments ours)
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--screenshot={out / f'{name}.email.png'}", "--window-size=900,760",
                 page.resolve().as_uri()],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        print(f"{name}: {alert.summary}")
    if not chromium:
        print("chromium not found: no screenshots (apt-get install chromium)", file=sys.stderr)


if __name__ == "__main__":
    main()
