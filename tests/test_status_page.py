"""The status page of `budgetguard run`, as a browser shows it: the installed console script
runs against the simulated demo organisation (a project of it renamed to hostile markup),
headless Chromium loads each of the five views, and the test reads the DOM after the page
ran, what its console said, and compares screenshots with the ones the README shows
(``docs/status-page/``; ``BUDGETGUARD_UPDATE_SCREENSHOTS=1`` writes them anew)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.simulator.org import PROJECTS
from tests.chromium import needs_chromium, run_chromium, similar
from tests.conftest import NOW, start_run

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "status-page"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)> Media & co'

RULES = """\
version: 1
notifiers:
  stdout: {type: console}
defaults: {notify: [stdout]}
budgets:
  - name: org-month
    description: Everything the organisation spends this month.
    limit: 6000
    period: month
    forecast: true
  - {name: chatbot-gpt-4o, match: {project: proj_chatbot, model: "gpt-4o*"}, limit: 100,
     window: 24h}
  - {name: per-project-day, match: {project: "*"}, each: project, limit: 80, period: day}
  - {name: erin-week, match: {user: user-erin}, cost_source: estimate, limit: 250,
     period: week, thresholds: [50%, 90%, 100%]}
  - {name: batch-line-items, match: {line_item: "batch | *"}, cost_source: costs, limit: 500,
     period: month}
  - {name: images-per-day, match: {endpoint: images}, metric: images, each: model,
     limit: 2000, period: day}
"""


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode(), dict(answer.headers)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`budgetguard run` on the demo organisation, with one project named hostile markup
    and a silence added before it started; yields its base URL and its /status body."""
    tmp = tmp_path_factory.mktemp("page")
    original = PROJECTS["proj_media"]
    PROJECTS["proj_media"] = HOSTILE
    try:
        with SimulatorServer(build_api(now=NOW, days=40)) as sim:
            env = dict(
                os.environ,
                BUDGETGUARD_DATABASE_URL=f"sqlite:///{tmp / 'run.db'}",
                BUDGETGUARD_NOW=datetime.fromtimestamp(NOW, UTC).isoformat(),
                BUDGETGUARD_HTTP_HOST="127.0.0.1",
            )
            (tmp / "rules.yaml").write_text(RULES)
            silence = subprocess.run(
                [
                    str(Path(sys.executable).with_name("budgetguard")),
                    "silence",
                    "add",
                    "budget=erin-week",
                    "--for",
                    "6h",
                    "--comment",
                    "load test <b>",
                    "-r",
                    str(tmp / "rules.yaml"),
                ],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert silence.returncode == 0, silence.stderr
            os.environ["BUDGETGUARD_HTTP_HOST"] = "127.0.0.1"  # loopback only (start_run's env)
            try:
                process, port, _ = start_run(tmp, sim.base_url, RULES, installed=True)
            finally:
                del os.environ["BUDGETGUARD_HTTP_HOST"]
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 120
                status: dict[str, Any] = {}
                while time.monotonic() < deadline and "series" not in status:
                    time.sleep(0.5)
                    status = json.loads(_get(f"{base}/status")[1])
                assert "series" in status, status
                yield {"base": base, "status": status}
            finally:
                process.terminate()
                process.wait(timeout=30)
                assert process.stderr is not None
                process.stderr.close()
    finally:
        PROJECTS["proj_media"] = original


def _view(page: dict[str, Any], path: str, shot: str, size: tuple[int, int]) -> str:
    """The view's DOM after it ran (no console line allowed), and its screenshot compared
    with the README's."""
    url = page["base"] + path
    dom, console = run_chromium(url, "--dump-dom", size=size)
    assert console == [], console
    picture = SHOTS / f"{shot}.png"
    fresh = picture.with_name(f"{shot}.new.png") if picture.exists() else picture
    fresh.parent.mkdir(parents=True, exist_ok=True)
    _, console = run_chromium(url, f"--screenshot={fresh}", size=size)
    assert console == [], console
    if fresh != picture:
        if os.environ.get("BUDGETGUARD_UPDATE_SCREENSHOTS") == "1":
            fresh.replace(picture)
        else:
            changed = similar(picture, fresh)
            fresh.unlink()
            assert changed < 0.02, f"{shot}: {changed:.1%} of the pixels differ from the README's"
    return dom


@needs_chromium
def test_the_overview_shows_every_budget_with_its_pill_bar_and_freshness(
    page: dict[str, Any],
) -> None:
    dom = _view(page, "/", "overview", (1280, 1500))
    status = page["status"]
    rows = re.findall(r'<tr data-budget="([^"]+)" data-state="([a-z]+)"', dom)
    assert len(rows) == len(status["budgets"]) and len(rows) >= 10
    assert ("erin-week", "silenced") in rows  # a firing alert held back by the silence
    assert {state for _, state in rows} <= {"ok", "warning", "critical", "unknown", "silenced"}
    assert dom.count('<svg class="bar"') == sum(1 for b in status["budgets"] if b["limit"])
    assert "costs settled to 2026-11-21 00:00 UTC" in dom and "usage to 2026-11-22" in dom
    assert re.search(r"org-month.*?runs out at|2026-11-\d\d \d\d:\d\d UTC", dom)
    # the hostile project name is text: escaped in the DOM, no element made of it
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert unescape(HOSTILE) in unescape(re.sub(r"<[^>]+>", "", dom))


@needs_chromium
def test_the_budget_detail_draws_burn_up_pace_band_and_daily_bars(page: dict[str, Any]) -> None:
    dom = _view(page, "/ui/budget?name=org-month", "detail", (1280, 1000))
    assert '<svg class="chart burnup"' in dom and '<svg class="chart daily"' in dom
    burn = dom.split('<svg class="chart burnup"')[1].split("</svg>")[0]
    assert "<title>pace</title>" in burn and "limit $6.0k" in burn and "<polygon" in burn
    daily = dom.split('<svg class="chart daily"')[1].split("</svg>")[0]
    bars = re.findall(r"<title>(\d\d \w\w\w): \$[\d.,k]+ (costs|estimate)</title>", daily)
    assert len({day for day, _ in bars}) == 22  # Nov 1 to Nov 22, the days so far
    assert {kind for _, kind in bars} == {"costs", "estimate"}  # settled and recent days
    assert "runs out at" in dom or "$6,000.00" in dom
    status, text, _ = _get(page["base"] + "/ui/budget?name=per-project-day&g.project=proj_media")
    assert status == 200 and "&lt;script&gt;" in text and "<script" not in text


@needs_chromium
def test_the_groups_view_shows_percent_of_limit_with_names_beside_ids(page: dict[str, Any]) -> None:
    dom = _view(page, "/ui/groups", "groups", (1280, 800))
    assert re.findall(r'<h2 data-budget="([^"]+)">', dom) == ["per-project-day", "images-per-day"]
    assert "project=Support chatbot (proj_chatbot)" in unescape(dom)
    assert "<script" not in dom.lower()


@needs_chromium
def test_the_timeline_lists_alerts_deliveries_and_silences(page: dict[str, Any]) -> None:
    dom = _view(page, "/ui/timeline", "timeline", (1280, 900))
    kinds = set(re.findall(r'<tr data-kind="([a-z]+)"', dom))
    assert {"alert", "delivery", "silence"} <= kinds
    assert "load test &lt;b&gt;" in dom  # a silence's comment is text too
    assert '<svg class="chart timeline"' in dom


@needs_chromium
def test_data_health_shows_coverage_outbox_and_healthz(page: dict[str, Any]) -> None:
    dom = _view(page, "/ui/health", "health", (1280, 900))
    assert re.search(r'<span id="healthz" data-code="(200|503)">', dom)
    grid = dom.split('<svg class="chart coverage"')[1].split("</svg>")[0]
    assert re.search(r"costs 2026-11-10: settled", grid)
    assert re.search(r"costs 2026-11-22: estimated", grid)
    assert '<table id="outbox"' in dom


def test_the_page_is_read_only_scriptless_and_shows_no_secret(page: dict[str, Any]) -> None:
    status, html, headers = _get(page["base"] + "/ui")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<script" not in html.lower() and "sk-admin" not in html
    request = urllib.request.Request(page["base"] + "/", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 501
