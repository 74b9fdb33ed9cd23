"""Budgets on line items under ``auto``: the last two UTC days take the larger of costs and
the usage estimate of the token line items they match, so that late costs never hide spend
(the simulator's costs lag 3 hours); line items no usage prices are never complete, and
unknown while their day's costs have not arrived. Through the installed console script, on
a simulator with two days of history, against the simulator's own bill."""

from __future__ import annotations

import fnmatch
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.org import Organisation
from tests.conftest import NOW, budgetguard_cli

RULES = """\
version: 1
budgets:
  - {name: gpt4o-lines, limit: 20, period: day, match: {line_item: "*gpt-4o-2024-08-06*"}}
  - {name: gpt4o-each, limit: 1000, period: day, each: line_item,
     match: {line_item: "gpt-4o-2024-08-06, *"}}
  - {name: image-lines, limit: 1000, period: day, match: {line_item: "Image*"}}
"""
DAYS = 2


def _bill(now: int, pattern: str) -> dict[str, float]:
    """The simulator's bill of today up to ``now``, per line item that ``pattern`` matches."""
    org = Organisation.create(7, now, DAYS)
    day = now - now % 86400
    out: dict[str, float] = {}
    for index in range(len(org.streams)):
        for line in org.cost_lines(index, day, now, now):
            if fnmatch.fnmatchcase(line.line_item, pattern):
                out[line.line_item] = out.get(line.line_item, 0.0) + line.amount
    return out


def _check(tmp_path: Path, now: int) -> dict[tuple[str, str], dict[str, Any]]:
    (tmp_path / "rules.yaml").write_text(RULES)
    with SimulatorServer(build_api(now=now, days=DAYS)) as sim:
        at = datetime.fromtimestamp(now, UTC).isoformat()
        code, out, err = budgetguard_cli(
            tmp_path, "check", "-f", "json", base_url=sim.base_url, now=at
        )
    assert code in (1, 3), err  # a budget critical, or unknown: data incomplete
    report = json.loads(out)
    return {(b["name"], b["group"].get("line_item", "")): b for b in report["budgets"]}


def test_late_costs_never_hide_line_item_spend(tmp_path: Path) -> None:
    """10:17: today's costs reach 07:00 only; the figures are the bill to the cent."""
    found = _check(tmp_path, NOW)
    bill = _bill(NOW, "*gpt-4o-2024-08-06*")
    lines = found[("gpt4o-lines", "")]
    assert round(lines["spend"], 2) == round(sum(bill.values()), 2)
    assert (lines["severity"], lines["source"]) == ("critical", "estimate")  # > $20
    assert lines["data"]["complete"] is True
    for name, amount in bill.items():
        assert round(found[("gpt4o-each", name)]["spend"], 2) == round(amount, 2), name
    images = found[("image-lines", "")]
    assert images["data"]["complete"] is False  # its costs alone, 3 h late: a lower bound
    assert "no usage estimate for Image models" in images["data"]["note"]
    assert images["spend"] < sum(_bill(NOW, "Image*").values())


def test_before_a_days_costs_arrive(tmp_path: Path) -> None:
    """01:30: no costs of today yet; the tokens are estimated, the images are unknown."""
    now = NOW - NOW % 86400 + 5400
    found = _check(tmp_path, now)
    bill = _bill(now, "*gpt-4o-2024-08-06*")
    assert round(found[("gpt4o-lines", "")]["spend"], 2) == round(sum(bill.values()), 2)
    images = found[("image-lines", "")]
    assert (images["severity"], images["spend"]) == ("unknown", None)
    assert "have not arrived" in images["data"]["note"]
