"""``budgetguard demo``: everything at once, with no key and no network.

The simulator serves a synthetic organisation on a free loopback port; a temporary store is
filled through the real client and collector; then a check (alerts to the console), a
backtest summary and the digest, with the example rules. Notifiers other than the console
take part only when the environment configures them (``SLACK_WEBHOOK_URL``, ``SMTP_HOST``,
``AUDIT_WEBHOOK_URL``); the rest are skipped and said so.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from budgetguard.notify import DeliveryError, Message, Notifier

if TYPE_CHECKING:
    from rich.console import Console

    from budgetguard.progress import PageProgress

__all__ = ["example_rules_path", "run_demo"]

#: Example notifier -> the variable that makes it real in the demo.
_CONFIGURED_BY = {
    "finops": "SLACK_WEBHOOK_URL",
    "oncall": "SMTP_HOST",
    "audit": "AUDIT_WEBHOOK_URL",
}


def example_rules_path() -> Path:
    """rules.example.yaml: in the wheel next to the package, or at a checkout's top level."""
    packaged = Path(__file__).with_name("rules.example.yaml")
    return packaged if packaged.exists() else Path(__file__).parents[1] / "rules.example.yaml"


class _Skipped:
    """A notifier the environment did not configure: counted, not sent. Its notifications
    stay queued (a kept ``--db`` store sends them once the variable is set), never marked
    delivered."""

    def __init__(self, counts: Counter[str], name: str) -> None:
        self.counts, self.name = counts, name

    def send(self, message: Message) -> None:
        self.counts[self.name] += 1
        raise DeliveryError(
            f"not configured in the demo: set {_CONFIGURED_BY[self.name]}", retryable=True
        )


def run_demo(
    console: Console,
    progress: PageProgress,
    env: dict[str, str],
    *,
    now: datetime | None = None,
    rules_path: Path | None = None,
    db: str | None = None,
    days: int = 35,
) -> int:
    """Run the tour; returns how many alerts fired."""
    from budgetguard import pipeline
    from budgetguard.digest import digest_panel
    from budgetguard.notify.manager import default_plugins
    from budgetguard.report import to_text
    from budgetguard.rules import load_rules
    from budgetguard.settings import Settings
    from budgetguard.simulator import SimulatorServer, build_api
    from budgetguard.store import Store

    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    rules_path = rules_path or example_rules_path()
    rules = load_rules(rules_path, env=env)
    with (
        tempfile.TemporaryDirectory(prefix="budgetguard-demo-") as tmp,
        SimulatorServer(build_api(seed=7, days=days, now=int(now.timestamp()))) as sim,
    ):
        settings = Settings(
            openai_admin_key="sk-admin-demo",
            openai_base_url=sim.base_url,
            database_url=db or f"sqlite:///{Path(tmp) / 'demo.db'}",
            rules=rules_path,
            now=now,
        )
        console.rule("[bold]1. Collect[/] usage and costs from the simulated OpenAI admin API")
        where = "a temporary store" if db is None else "the store given by --db"
        console.print(f"simulator: {sim.base_url} · rules: {rules_path} · {where}")
        store = Store.open(settings.database_url)
        try:
            report = pipeline.collect(settings, store, rules, now, progress=progress)
            console.print(report.summary())

            console.rule("[bold]2. Check[/] every budget (what `budgetguard check` prints)")
            findings = pipeline.evaluate_store(store, rules, now)
            names = pipeline.display_names(store)
            text = to_text(findings, now, names=names)
            console.print(text, end="", soft_wrap=True, highlight=False)
            console.rule("[bold]3. Alerts[/] through the outbox (console notifier)")
            real = default_plugins().notifiers(rules.notifiers)
            skipped: Counter[str] = Counter()
            notifiers: dict[str, Notifier] = {
                name: notifier
                if name not in _CONFIGURED_BY or env.get(_CONFIGURED_BY[name])
                else _Skipped(skipped, name)
                for name, notifier in real.items()
            }
            delivery = pipeline.notify(store, findings, now, notifiers)
            console.print(
                f"{delivery.delivered} delivered, "
                f"{delivery.retrying - sum(skipped.values())} to retry, {delivery.failed} failed"
            )
            for name, count in sorted(skipped.items()):
                console.print(
                    f"  {count} for '{name}' not sent: set {_CONFIGURED_BY[name]} to send them"
                )

            console.rule("[bold]4. Backtest[/]: the last 7 days replayed hour by hour")
            data = pipeline.spend_data(store, rules, now)
            fired: Counter[str] = Counter(
                event.finding.budget.name
                for _, events in pipeline.replay(
                    rules, data, now - timedelta(days=7), now, timedelta(hours=1)
                )
                for event in events
                if event.event == "fire"
            )
            for name, count in fired.most_common():
                console.print(f"  {name}: would have fired {count} time(s)")
            if not fired:
                console.print("  no alert would have fired")

            console.rule("[bold]5. Digest[/] of the last complete week")
            console.print(digest_panel(pipeline.make_digest(store, rules, now)))
        finally:
            store.close()
    console.rule("[bold]Next")
    console.print(
        "  budgetguard simulate                       serve the simulator for your own tries\n"
        "  cp rules.example.yaml rules.yaml           then edit budgets and notifiers\n"
        "  export OPENAI_ADMIN_KEY=sk-admin-...       an admin key with api.usage.read\n"
        "  budgetguard check                          evaluate now (exit 1 when over)\n"
        "  budgetguard run                            the service: alerts, digest, /metrics"
    )
    return sum(fired.values())
