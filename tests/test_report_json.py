"""`check -f json` streams its report: the same text, to the byte, as the report built whole."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budgetguard.evaluate import Window
from budgetguard.evaluate.evaluator import Finding
from budgetguard.report import json_text, to_json, write_json
from budgetguard.rules import load_rules_text

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RULES = load_rules_text("""
version: 1
budgets:
  - {name: plain, limit: 100, window: 24h}
  - name: people
    limit: 5
    period: month
    each: [project, model]
    description: "Ünïcode \\"quoted\\" text ✓"
    runbook_url: https://example.com/runbook
    labels: {team: finops, "tier": "1"}
  - {name: tokens, limit: 1000000, window: 7d, metric: input_tokens, each: user}
""")


def findings(n: int, seed: int) -> list[Finding]:
    rng = random.Random(seed)
    windows = [
        Window(NOW - timedelta(days=1), NOW, "rolling"),
        Window(NOW.replace(day=1, hour=0), NOW, "period", NOW.replace(month=12, day=1, hour=0)),
    ]
    out = []
    for i in range(n):
        budget = RULES.budgets[i % len(RULES.budgets)]
        spend = rng.choice([None, Decimal(0), Decimal("123.456789123"), Decimal(10) ** 12])
        limit = rng.choice([None, Decimal(0), budget.limit, Decimal("0.000001")])
        out.append(
            Finding(
                budget=budget,
                group={k: rng.choice(["proj_a", "é", 'q"x', "(none)"]) for k in budget.each},
                window=rng.choice(windows),
                spend=spend,
                limit=limit,
                forecast=rng.choice([None, Decimal("99.9999995")]),
                severity=rng.choice(["ok", "warning", "critical", "unknown"]),
                source=rng.choice(["costs", "estimate", "mixed", "usage"]),
                complete=rng.random() < 0.5,
                note=rng.choice([None, "a note", "ünïcode ✓ \\ \n"]),
            )
        )
    return out


def test_the_streamed_report_is_the_built_one_to_the_byte() -> None:
    alerts = [{"budget": "plain", "group": {}, "kind": "threshold", "key": "k"}]
    silences = [{"id": "s1", "matchers": ["budget=plain"]}]
    names = {"proj_a": "Chatbot ✓"}
    for seed in range(5):
        found = findings(300, seed)
        for args in ((alerts, silences, names), ([], (), None), (alerts, (), {"x": "y"})):
            out = io.StringIO()
            write_json(out, found, args[0], NOW, args[1], args[2])
            expected = json_text(to_json(found, args[0], NOW, args[1], args[2])) + "\n"
            assert out.getvalue() == expected
            json.loads(out.getvalue())


def test_an_empty_report_too() -> None:
    out = io.StringIO()
    write_json(out, [], [], NOW)
    assert out.getvalue() == json_text(to_json([], [], NOW)) + "\n"
    assert json.loads(out.getvalue())["budgets"] == []
