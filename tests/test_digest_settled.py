"""The digest's days west of UTC: on Monday 09:00 in Los Angeles the week's last local day
(Sunday) ends at 08:00 UTC on Monday, inside today's costs day, which holds only what the
costs endpoint has caught up with. Issue 23 measured $95.48 against a truth of $114.74,
with no note; the day now counts as ``auto`` does and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from budgetguard import pipeline
from budgetguard.rules import load_rules
from budgetguard.simulator import SimulatorServer, build_api
from budgetguard.store import Store
from tests.conftest import ADMIN_KEY

ROOT = Path(__file__).resolve().parents[1]
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
#: Monday 2026-11-23 09:00 in Los Angeles: the example digest's cron there
MONDAY_9AM = int(datetime(2026, 11, 23, 9, tzinfo=LOS_ANGELES).timestamp())


def _truth(sim: SimulatorServer, day: date) -> Decimal:
    """What the organisation really spent in that Los Angeles day."""
    lo = int(datetime(day.year, day.month, day.day, tzinfo=LOS_ANGELES).timestamp())
    hi = lo + 86400  # (no clock change that week)
    org = sim.api.org
    return sum(
        (
            Decimal(str(line.amount))
            for index, _ in enumerate(org.streams)
            for line in org.cost_lines(index, lo, hi, MONDAY_9AM)
        ),
        Decimal(0),
    )


def test_the_last_local_day_west_of_utc_equals_the_truth_and_says_how(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        (ROOT / "rules.example.yaml")
        .read_text()
        .replace("timezone: UTC", "timezone: America/Los_Angeles")
    )
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with SimulatorServer(build_api(now=MONDAY_9AM, days=40)) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGETGUARD_", "OPENAI"))}
        env |= {
            "OPENAI_ADMIN_KEY": ADMIN_KEY,
            "BUDGETGUARD_OPENAI_BASE_URL": sim.base_url,
            "BUDGETGUARD_NOW": datetime.fromtimestamp(MONDAY_9AM, UTC).isoformat(),
        }
        done = subprocess.run(
            [str(Path(sys.executable).with_name("budgetguard")), "collect", "-r", str(rules_file),
             "--db", db],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        store = Store.open(db)
        try:
            digest = pipeline.make_digest(
                store, load_rules(rules_file, env={}), datetime.fromtimestamp(MONDAY_9AM, UTC)
            )
        finally:
            store.close()
        daily = dict(digest.daily)
        assert list(daily) == [date(2026, 11, d) for d in range(16, 23)]
        for day, value in daily.items():
            assert value is not None
            assert float(value) == pytest.approx(float(_truth(sim, day)), rel=0.01), day
    sunday = [n for n in digest.notes if n.startswith("2026-11-22:")]
    assert sunday and "usage estimate counts the hours its costs do not hold yet" in sunday[0]
    assert not [n for n in digest.notes if n.startswith("2026-11-2") and n not in sunday]
    assert digest.total == sum(daily.values(), Decimal(0))
