"""The ``budgetguard`` command line. Each command only wires modules together.

Heavy modules are imported inside the commands, so ``budgetguard --help`` stays fast.
Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from decimal import Decimal

    from budgetguard.collect import CollectReport
    from budgetguard.evaluate.data import SpendData
    from budgetguard.evaluate.evaluator import Finding
    from budgetguard.progress import PageProgress
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
    from budgetguard.store import Store

__all__ = ["app", "main"]

EXIT_OK, EXIT_OVER, EXIT_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3

app = typer.Typer(
    name="budgetguard",
    help="Guards an OpenAI organisation's spend: budgets in YAML, alerts at once, CI gates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Guards an OpenAI organisation's spend: budgets in YAML, alerts at once, CI gates."""


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens (DEBUG).")]
RulesPath = Annotated[
    Path | None,
    typer.Option("--rules", "-r", help="Rules file [env BUDGETGUARD_RULES; default rules.yaml]."),
]
Database = Annotated[
    str | None, typer.Option("--db", help="Store URL [env BUDGETGUARD_DATABASE_URL].")
]
Now = Annotated[
    str | None,
    typer.Option("--now", help="Evaluate as if it were this ISO 8601 time [env BUDGETGUARD_NOW]."),
]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"budgetguard: {message}", err=True)
    return typer.Exit(code)


def _progress() -> PageProgress:
    from budgetguard.progress import PageProgress

    return PageProgress(enabled=sys.stderr.isatty())


def _settings(rules: Path | None, db: str | None, now: str | None) -> Settings:
    """Settings from the environment and .env, with the command-line flags on top."""
    from pydantic import ValidationError

    from budgetguard.settings import Settings

    overrides: dict[str, Any] = {}
    if rules is not None:
        overrides["rules"] = rules
    if db is not None:
        overrides["database_url"] = db
    if now is not None:
        overrides["now"] = now
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"bad setting: {problems}", EXIT_INPUT) from None


def _rules_env() -> dict[str, str]:
    """Variables for ${VAR} in the rules: .env in the working directory, then the environment."""
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    values.update(os.environ)
    return values


def _context(
    rules: Path | None, db: str | None, now: str | None, verbose: bool
) -> tuple[Settings, Rules, datetime]:
    """What every command starts from: logging, settings, the checked rules, the clock."""
    _logging(verbose)
    settings = _settings(rules, db, now)
    return settings, _load_rules(settings), settings.clock()


def _load_rules(settings: Settings) -> Rules:
    from budgetguard.rules import RulesError, load_rules

    try:
        return load_rules(settings.rules, env=_rules_env())
    except RulesError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        noun = "error" if len(exc.errors) == 1 else "errors"
        typer.echo(f"{settings.rules}: {len(exc.errors)} {noun}", err=True)
        raise typer.Exit(EXIT_INPUT) from None


@app.command()
def validate(
    rules: RulesPath = None, db: Database = None, now: Now = None, verbose: Verbose = False
) -> None:
    """Load and check the rules file; each mistake as PATH:LINE:COL: message (exit 2)."""
    settings, loaded, _ = _context(rules, db, now, verbose)
    enabled = sum(1 for b in loaded.budgets if b.enabled)
    parts = [
        f"{len(loaded.budgets)} budget{'s' if len(loaded.budgets) != 1 else ''}"
        + (f" ({len(loaded.budgets) - enabled} disabled)" if enabled < len(loaded.budgets) else ""),
        f"{len(loaded.notifiers)} notifier{'s' if len(loaded.notifiers) != 1 else ''}",
    ]
    if loaded.digest is not None:
        parts.append(
            f"{loaded.digest.period}ly digest" if loaded.digest.period != "day" else "daily digest"
        )
    typer.echo(f"{settings.rules}: ok — {', '.join(parts)}")


Since = Annotated[
    str | None,
    typer.Option("--since", help="Collect from this far back: a duration (30d) or a date."),
]
Until = Annotated[str | None, typer.Option("--until", help="Collect up to this date or time.")]


def _when(value: str, now: datetime, flag: str) -> datetime:
    """A duration before ``now`` (``30d``) or an ISO 8601 date or time."""
    from budgetguard.rules.vocabulary import parse_duration
    from budgetguard.settings import parse_instant

    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        return parse_instant(value)
    except ValueError:
        raise _fail(
            f"{flag}: expected a duration like 30d or a date like 2026-10-01, got {value!r}",
            EXIT_INPUT,
        ) from None


@app.command()
def collect(
    since: Since = None,
    until: Until = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Sync usage and costs into the store, incrementally (a progress bar on a terminal)."""
    settings, loaded, clock = _context(rules, db, now, verbose)
    start = None if since is None else _when(since, clock, "--since")
    end = clock if until is None else _when(until, clock, "--until")
    if start is not None and start >= end:
        raise _fail("--since must be before --until (or now)", EXIT_INPUT)
    report = _run_collect(settings, loaded, end, start)
    typer.echo(report.summary())
    for outcome in report.failed:
        typer.echo(f"budgetguard: {outcome.query.key}: {outcome.error}", err=True)
    if report.failed:
        raise typer.Exit(EXIT_UNAVAILABLE)


def _run_collect(
    settings: Settings,
    rules: Rules,
    end: datetime,
    since: datetime | None,
    *,
    strict: bool = True,
) -> CollectReport:
    """Plan, fetch and store; exit 3 with a plain message when no data can be had."""
    from budgetguard.openai_admin import AUTH_HELP
    from budgetguard.store import Store, StoreVersionError

    if settings.openai_admin_key is None:
        raise _fail(f"no admin key: {AUTH_HELP}", EXIT_UNAVAILABLE)
    try:
        store = Store.open(settings.database_url)
    except StoreVersionError as exc:
        raise _fail(str(exc), EXIT_UNAVAILABLE) from None
    from budgetguard import pipeline

    try:
        with _progress() as progress:
            report = pipeline.collect(settings, store, rules, end, since=since, progress=progress)
    finally:
        store.close()
    if strict and report.all_failed:
        first = report.failed[0].error
        raise _fail(f"no data collected: {first}", EXIT_UNAVAILABLE)
    return report


def _collect_new(settings: Settings, rules: Rules, now: datetime) -> None:
    """What ``check`` and ``digest`` do first unless ``--offline``: fetch what is new; a
    failed endpoint is reported and its budgets turn unknown, the rest goes on."""
    if settings.openai_admin_key is None:
        from budgetguard.openai_admin import AUTH_HELP

        raise _fail(
            f"no admin key ({AUTH_HELP}); or use --offline to evaluate the stored data",
            EXIT_UNAVAILABLE,
        )
    report = _run_collect(settings, rules, now, None, strict=False)
    for outcome in report.failed:
        typer.echo(f"budgetguard: collect {outcome.query.key}: {outcome.error}", err=True)


Format = Annotated[str, typer.Option("--format", "-f", help="text | json | markdown | github")]
FailOn = Annotated[
    str, typer.Option("--fail-on", help="Exit 1 at this severity: warning | critical | never.")
]
Expect = Annotated[
    list[str] | None,
    typer.Option("--expect", help="Planned spend: AMOUNT or KEY=VALUE=AMOUNT (project=p=120)."),
]
_MATCH_KEYS = ("project", "model", "user", "api_key", "line_item", "endpoint")


def _expectations(values: list[str] | None) -> list[tuple[dict[str, str], Decimal]]:
    from decimal import Decimal, InvalidOperation

    out: list[tuple[dict[str, str], Decimal]] = []
    for raw in values or []:
        selector, _, amount = raw.rpartition("=")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise _fail(f"--expect {raw!r}: the amount must be a number", EXIT_INPUT) from None
        if not value.is_finite():
            raise _fail(f"--expect {raw!r}: the amount must be a number", EXIT_INPUT)
        if not selector:
            out.append(({}, value))
            continue
        key, _, pattern = selector.partition("=")
        if key not in _MATCH_KEYS or not pattern:
            raise _fail(
                f"--expect {raw!r}: use AMOUNT or KEY=VALUE=AMOUNT with KEY one of "
                f"{', '.join(_MATCH_KEYS)}",
                EXIT_INPUT,
            )
        out.append(({key: pattern}, value))
    return out


def _open_store(settings: Settings) -> Store:
    from budgetguard.store import Store, StoreVersionError

    try:
        return Store.open(settings.database_url)
    except StoreVersionError as exc:
        raise _fail(str(exc), EXIT_UNAVAILABLE) from None


def _spend_data(store: Store, rules: Rules, now: datetime, first: datetime) -> SpendData:
    """What the budgets look at from ``first`` (the earliest instant evaluated) to ``now``."""
    from budgetguard.evaluate.windows import needed_from
    from budgetguard.pipeline import spend_data

    return spend_data(store, rules, now, since=needed_from(rules, first))


@app.command()
def check(
    offline: Annotated[bool, typer.Option("--offline", help="Evaluate stored data only.")] = False,
    output: Format = "text",
    fail_on: FailOn = "critical",
    notify: Annotated[
        bool, typer.Option("--notify", help="Deliver alerts (deduplicated).")
    ] = False,
    expect: Expect = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Collect what is new, evaluate every budget, print the report; exit 0/1/2/3."""
    if output not in ("text", "json", "markdown", "github"):
        raise _fail(f"--format {output!r}: use text, json, markdown or github", EXIT_INPUT)
    if fail_on not in ("warning", "critical", "never"):
        raise _fail(f"--fail-on {fail_on!r}: use warning, critical or never", EXIT_INPUT)
    expectations = _expectations(expect)
    settings, loaded, clock = _context(rules, db, now, verbose)
    if not offline:
        _collect_new(settings, loaded, clock)
    from budgetguard.alerts import active_alerts
    from budgetguard.evaluate.evaluator import evaluate
    from budgetguard.report import exit_code, to_github, to_json, to_markdown, to_text

    store = _open_store(settings)
    try:
        findings = evaluate(loaded, _spend_data(store, loaded, clock, clock), clock, expectations)
        if notify:
            _notify(store, loaded, findings, clock)
    finally:
        store.close()
    if output == "json":
        import json

        typer.echo(json.dumps(to_json(findings, active_alerts(findings), clock), indent=2))
    elif output == "markdown":
        text = to_markdown(findings, clock)
        typer.echo(text, nl=False)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(text)
    elif output == "github":
        typer.echo(to_github(findings), nl=False)
    else:
        typer.echo(to_text(findings, clock), nl=False)
    raise typer.Exit(exit_code(findings, fail_on))


def _notify(store: Store, rules: Rules, findings: list[Finding], now: datetime) -> None:
    from budgetguard import pipeline
    from budgetguard.notify.manager import default_plugins

    result = pipeline.notify(store, findings, now, default_plugins().notifiers(rules.notifiers))
    typer.echo(
        f"notifications: {result.delivered} delivered, {result.retrying} to retry, "
        f"{result.failed} failed",
        err=True,
    )


@app.command()
def backtest(
    start: Annotated[str, typer.Option("--from", help="First instant (date or ISO time).")],
    end: Annotated[str, typer.Option("--to", help="Last instant (date or ISO time).")],
    step: Annotated[str, typer.Option("--step", help="Evaluate every (Nm, Nh, Nd).")] = "1h",
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Replay evaluation over stored history; list when each alert would fire and resolve."""
    from budgetguard.alerts import AlertState, transitions
    from budgetguard.evaluate.evaluator import evaluate, group_label
    from budgetguard.rules.vocabulary import parse_duration

    settings, loaded, clock = _context(rules, db, now, verbose)
    first, last = _when(start, clock, "--from"), _when(end, clock, "--to")
    try:
        every = parse_duration(step)
    except ValueError as exc:
        raise _fail(f"--step: {exc}", EXIT_INPUT) from None
    if first >= last:
        raise _fail("--from must be before --to", EXIT_INPUT)
    if (last - first) / every > 20_000:
        raise _fail("too many steps: use a larger --step or a shorter range", EXIT_INPUT)
    store = _open_store(settings)
    try:
        data = _spend_data(store, loaded, last, first)
    finally:
        store.close()
    states: dict[str, AlertState] = {}
    fired = resolved = 0
    moment = first
    while moment <= last:
        changed, events = transitions(evaluate(loaded, data, moment), states, moment)
        states.update(changed)
        for event in events:
            if event.event == "remind":
                continue
            fired += event.event == "fire"
            resolved += event.event == "resolve"
            f = event.finding
            what = event.kind + (f" {event.threshold.key}" if event.threshold else "")
            label = f.budget.name + (f" [{group_label(f.group)}]" if f.group else "")
            spend = "—" if f.spend is None else f"{f.spend:,.2f}"
            typer.echo(
                f"{moment.isoformat().replace('+00:00', 'Z')}  {event.event:<7}  "
                f"{label}  {what}  {event.severity}  spend {spend}"
            )
        moment += every
    steps = int((last - first) / every) + 1
    typer.echo(
        f"backtest: {steps} steps of {step} from {first.isoformat()} to "
        f"{last.isoformat()}: {fired} fired, {resolved} resolved",
        err=True,
    )


@app.command()
def digest(
    period: Annotated[
        str | None, typer.Option("--period", help="day | week | month [rules' digest.period].")
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Deliver to the rules' digest.notify notifiers.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Use stored data only.")] = False,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """The last complete period's spend digest; printed, and sent with --send."""
    if period not in (None, "day", "week", "month"):
        raise _fail(f"--period {period!r}: use day, week or month", EXIT_INPUT)
    settings, loaded, clock = _context(rules, db, now, verbose)
    names = loaded.digest.notify if loaded.digest else ()
    if send and not names:
        raise _fail("--send: the rules have no digest.notify notifiers", EXIT_INPUT)
    if not offline:
        _collect_new(settings, loaded, clock)
    from rich.console import Console

    from budgetguard import pipeline
    from budgetguard.digest import digest_panel
    from budgetguard.notify.manager import default_plugins

    store = _open_store(settings)
    try:
        made = pipeline.make_digest(store, loaded, clock, period)
        Console(width=max(100, Console().width)).print(digest_panel(made))
        if send:
            notifiers = default_plugins().notifiers(loaded.notifiers)
            queued, result = pipeline.send_digest(store, made, names, clock, notifiers)
            typer.echo(
                f"digest {made.key}: {queued} queued (already sent: {len(names) - queued}); "
                f"{result.delivered} delivered, {result.retrying} to retry, {result.failed} failed",
                err=True,
            )
    finally:
        store.close()


@app.command()
def run(
    port: Annotated[
        int | None, typer.Option("--port", help="HTTP port [env BUDGETGUARD_HTTP_PORT].")
    ] = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Run the service: scheduled checks and digests, /healthz, /metrics and /status.
    (--now fixes the clock every tick evaluates at: for trials, not for production.)"""
    import signal
    import threading

    from budgetguard.service import Service

    _logging(True)
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    settings, loaded, _ = _context(rules, db, now, verbose)
    if settings.openai_admin_key is None:
        typer.echo("budgetguard: no admin key: evaluating stored data only", err=True)
    try:
        service = Service(settings, loaded)
        service.start(port)
    except OSError as exc:
        raise _fail(
            f"cannot listen on port {port or settings.http_port}: {exc}", EXIT_INPUT
        ) from None
    env = _rules_env()

    def stop(signum: int, _: object) -> None:
        logging.getLogger("budgetguard.service").info("signal %d: stopping", signum)
        threading.Thread(target=service.stop, name="stop").start()

    def reload(_signum: int, _frame: object) -> None:
        threading.Thread(target=service.reload, args=(env,), name="reload").start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    bound = service.http.server_address[1] if service.http else 0
    typer.echo(
        f"budgetguard: running every {loaded.schedule.interval}; http://localhost:{bound}/healthz",
        err=True,
    )
    service.wait()
    typer.echo("budgetguard: stopped", err=True)


@app.command()
def demo(
    rules: Annotated[
        Path | None, typer.Option("--rules", "-r", help="Rules [default: rules.example.yaml].")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Keep the store here [default: a temporary one].")
    ] = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """See everything work in a minute: simulator, backfill, check, alerts, backtest, digest.
    No key, no network; a temporary store that is removed at the end."""
    _logging(verbose)
    from rich.console import Console

    from budgetguard.demo import run_demo
    from budgetguard.settings import parse_instant

    try:
        moment = None if now is None else parse_instant(now)
    except ValueError as exc:
        raise _fail(f"--now: {exc}", EXIT_INPUT) from None
    console = Console(width=max(110, Console().width))
    if rules is not None and not rules.is_file():
        raise _fail(f"--rules {rules}: no such file", EXIT_INPUT)
    from budgetguard.rules import RulesError

    try:
        run_demo(console, _progress(), _rules_env(), now=moment, rules_path=rules, db=db)
    except RulesError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_INPUT) from None


@app.command("notify-test")
def notify_test(
    name: Annotated[str, typer.Argument(help="The notifier to test, as named in the rules.")],
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Send a test message through one configured notifier."""
    import uuid

    from budgetguard.notify import Alert, DeliveryError
    from budgetguard.notify.manager import default_plugins
    from budgetguard.rules.errors import did_you_mean

    _, loaded, clock = _context(rules, db, now, verbose)
    names = [n.name for n in loaded.notifiers]
    if name not in names:
        hint = did_you_mean(name, names) if names else " (no notifiers are configured)"
        raise _fail(f"no notifier named '{name}'{hint}", EXIT_INPUT)
    stamp = clock.isoformat().replace("+00:00", "Z")
    payload: dict[str, object] = {
        "type": "budgetguard.test",
        "budget": "budgetguard-test",
        "group": {},
        "kind": "test",
        "severity": "ok",
        "threshold": None,
        "spend": None,
        "limit": None,
        "key": f"test-{uuid.uuid4()}",
        "fired_at": stamp,
        "message": f"budgetguard test notification to '{name}' ({stamp}): delivery works",
    }
    try:
        default_plugins().notifiers(loaded.notifiers)[name].send(Alert.from_payload(payload))
    except DeliveryError as exc:
        kind = "temporary" if exc.retryable else "permanent"
        raise _fail(f"{name}: delivery failed ({kind}): {exc}", EXIT_UNAVAILABLE) from None
    typer.echo(f"{name}: test notification delivered")


@app.command()
def schema(
    rules: RulesPath = None, db: Database = None, now: Now = None, verbose: Verbose = False
) -> None:
    """Print the JSON Schema of the rules file (for editors and CI linting)."""
    _logging(verbose)
    import json

    from budgetguard.rules.schema import rules_json_schema

    typer.echo(json.dumps(rules_json_schema(), indent=2))


@app.command()
def plugins(
    rules: RulesPath = None, db: Database = None, now: Now = None, verbose: Verbose = False
) -> None:
    """List the notifier types of the installed plugins, where each comes from, and any
    plugin that was left out (and why). (--rules, --db, --now: accepted, not needed.)"""
    _logging(verbose)
    from rich.console import Console
    from rich.table import Table

    from budgetguard.notify.manager import AUTOLOAD_ENV, default_plugins

    loaded = default_plugins()
    table = Table("type", "plugin", "source", "description", box=None, pad_edge=False)
    for name, registered in sorted(loaded.types.items()):
        table.add_row(name, registered.plugin, registered.source, registered.type.description)
    Console(width=160, soft_wrap=True).print(table)
    if os.environ.get(AUTOLOAD_ENV):
        typer.echo(f"{AUTOLOAD_ENV} is set: entry-point plugins were not loaded", err=True)
    for problem in loaded.problems:
        typer.echo(
            f"budgetguard: plugin '{problem.plugin}' ({problem.source}) left out: {problem.error}",
            err=True,
        )


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8787,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic organisation.")] = 7,
    days: Annotated[int, typer.Option(min=1, max=400, help="Days of history to serve.")] = 40,
    now: Annotated[
        str | None, typer.Option(help="Freeze the simulator's clock at this ISO 8601 time.")
    ] = None,
    latency_ms: Annotated[float, typer.Option(min=0, help="Latency added to each request.")] = 0,
    fail_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of 500 answers.")] = 0,
    rate_limit_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of 429 answers (with Retry-After).")
    ] = 0,
    malformed_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of 200 answers with a truncated body.")
    ] = 0,
    string_amounts: Annotated[
        bool, typer.Option(help="Send costs amounts as JSON strings, as seen in the wild.")
    ] = False,
    costs_delay_hours: Annotated[
        float, typer.Option(min=0, help="How far costs lag behind usage.")
    ] = 3.0,
    rules: RulesPath = None,
    db: Database = None,
    verbose: Verbose = False,
) -> None:
    """Serve a faithful simulated OpenAI usage and costs API for a synthetic organisation."""
    _logging(verbose)
    from budgetguard.settings import parse_instant
    from budgetguard.simulator import SimulatorServer, build_api

    try:
        frozen = None if now is None else int(parse_instant(now).timestamp())
    except ValueError as exc:
        raise _fail(f"--now: {exc}", EXIT_INPUT) from None
    api = build_api(
        seed=seed,
        days=days,
        now=frozen,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        rate_limit_rate=rate_limit_rate,
        malformed_rate=malformed_rate,
        string_amounts=string_amounts,
        costs_delay_hours=costs_delay_hours,
    )
    try:
        server = SimulatorServer(api, host=host, port=port)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_INPUT) from None
    typer.echo(f"Simulated OpenAI admin API on {server.base_url} ({days} days, seed {seed})")
    typer.echo("Any key starting sk-admin- is accepted; sk-proj- keys get 403. Try:")
    typer.echo(
        f"  curl -H 'Authorization: Bearer sk-admin-demo' "
        f"'{server.base_url}/organization/costs?start_time={api.org.history_start}&limit=3'"
    )
    typer.echo(
        f"  export BUDGETGUARD_OPENAI_BASE_URL={server.base_url} OPENAI_ADMIN_KEY=sk-admin-demo"
    )
    typer.echo("Ctrl-C stops it.", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)


def main() -> None:
    """Console-script entry point."""
    app()
