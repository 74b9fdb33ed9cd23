"""A resolution is one of the JSON report's alerts (kind ``resolved``), with the key its
notification carries: shown by the check that resolves it (with or without ``--notify``),
never again after. Through the installed console script, a webhook on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from budgetguard.simulator import SimulatorServer, build_api
from tests.conftest import NOW, Receiver, budgetguard_cli

RULES = """\
version: 1
notifiers:
  hook: {{type: webhook, url: "{url}"}}
budgets:
  - {{name: org-day, limit: {limit}, period: day, notify: [hook]}}
"""


def _check(folder: Path, sim: SimulatorServer, hook: str, limit: int, *flags: str) -> Any:
    """The report's alerts of ``check`` with org-day's limit at ``limit``."""
    (folder / "rules.yaml").write_text(RULES.format(url=hook, limit=limit))
    code, out, err = budgetguard_cli(
        folder, "check", "-f", "json", "--fail-on", "never", *flags, base_url=sim.base_url
    )
    assert code == 0, err
    return json.loads(out)["alerts"]


def test_a_resolution_is_in_the_report_with_its_notifications_key(tmp_path: Path) -> None:
    receiver = Receiver()
    sim = SimulatorServer(build_api(now=NOW, days=1)).start()  # a day of history: fast
    try:
        fired = _check(tmp_path, sim, receiver.url, 10, "--notify")
        assert {a["kind"] for a in fired} == {"threshold"}, fired
        assert [b["event"] for b in receiver.bodies] == ["fire"]
        # the limit raised: this check resolves both thresholds (one notification)
        preview = _check(tmp_path, sim, receiver.url, 100000, "--offline")
        resolved = _check(tmp_path, sim, receiver.url, 100000, "--offline", "--notify")
        assert resolved == preview, "the key a report shows is the key then delivered"
        (sent,) = [b for b in receiver.bodies if b["event"] == "resolve"]
        assert sent["kind"] == "resolved"
        assert {(a["kind"], a["threshold"], a["key"]) for a in resolved} == {
            ("resolved", 0.8, sent["key"]),
            ("resolved", 1.0, sent["key"]),
        }
        assert all(a["budget"] == "org-day" and a["severity"] == "ok" for a in resolved)
        assert _check(tmp_path, sim, receiver.url, 100000, "--offline") == []  # resolved before
    finally:
        sim.stop()
        receiver.shutdown()
