"""The commands that run things: the service, the demo, the simulator, notifier tools."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import (
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    command_context,
    fail,
    open_store,
    page_progress,
    refuse_future_now,
    rules_env,
    settings_from,
    setup_logging,
    usable_notifier,
)


@app.command()
def run(
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="HTTP port [env BUDGETGUARD_HTTP_PORT]."),
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

    setup_logging(True)
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    settings, loaded, _ = command_context(rules, db, now, verbose)
    if settings.openai_admin_key is None:
        typer.echo("budgetguard: no admin key: evaluating stored data only", err=True)
    else:
        refuse_future_now(settings)
    open_store(settings).close()  # a bad or unreachable store: its own one line, 2 or 3
    # the workers run in a process group of their own: on a terminal with `stty tostop`
    # their output would stop them (SIGTTOU); ignored here, it stays ignored in them
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        service = Service(settings, loaded)
        service.start(port)
    except OSError as exc:
        raise fail(
            f"cannot listen on port {port or settings.http_port}: {exc}", EXIT_INPUT
        ) from None
    env = rules_env()

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
    if not service.clean:  # a job is stuck (a hung collect): its thread must not hold us
        typer.echo("budgetguard: stopped (a running job was left behind)", err=True)
        sys.stderr.flush()
        os._exit(0)
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
    setup_logging(verbose)
    from rich.console import Console

    from budgetguard.demo import run_demo
    from budgetguard.settings import parse_instant

    try:
        moment = None if now is None else parse_instant(now)
    except ValueError as exc:
        raise fail(f"--now: {exc}", EXIT_INPUT) from None
    console = Console(width=max(110, Console().width))
    if rules is not None and not rules.is_file():
        raise fail(f"--rules {rules}: no such file", EXIT_INPUT)
    from budgetguard.rules import RulesError

    try:
        run_demo(console, page_progress(), rules_env(), now=moment, rules_path=rules, db=db)
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

    from budgetguard.alerts.delivery import send_within
    from budgetguard.notify import Alert, DeliveryError
    from budgetguard.notify.manager import default_plugins
    from budgetguard.rules.errors import did_you_mean

    settings, loaded, clock = command_context(rules, db, now, verbose, sends=False)
    names = [n.name for n in loaded.notifiers]
    if name not in names:
        hint = did_you_mean(name, names) if names else " (no notifiers are configured)"
        raise fail(f"no notifier named '{name}'{hint}", EXIT_INPUT)
    usable_notifier(loaded, name)
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
    notifier = default_plugins().notifiers(loaded.notifiers)[name]
    try:
        tries = send_within(notifier, Alert.from_payload(payload), settings.notify_retry_within)
    except DeliveryError as exc:
        kind = "temporary, gave up" if exc.retryable else "permanent"
        raise fail(f"{name}: delivery failed ({kind}): {exc}", EXIT_UNAVAILABLE) from None
    again = f" (after {tries} attempts)" if tries > 1 else ""
    typer.echo(f"{name}: test notification delivered{again}")


@app.command()
def schema(
    rules: RulesPath = None, db: Database = None, now: Now = None, verbose: Verbose = False
) -> None:
    """Print the JSON Schema of the rules file (for editors and CI linting). (--rules, --db,
    --now: checked like every command's, not needed.)"""
    setup_logging(verbose)
    settings_from(rules, db, now)
    import json

    from budgetguard.rules.schema import rules_json_schema

    typer.echo(json.dumps(rules_json_schema(), indent=2))


@app.command()
def plugins(
    rules: RulesPath = None, db: Database = None, now: Now = None, verbose: Verbose = False
) -> None:
    """List the notifier types of the installed plugins, where each comes from, and any
    plugin that was left out (and why). (--rules, --db, --now: checked like every
    command's, not needed.)"""
    setup_logging(verbose)
    settings_from(rules, db, now)
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
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0 picks a free one).")
    ] = 8787,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="Seed of the synthetic organisation.")
    ] = 7,
    days: Annotated[int, typer.Option(min=1, max=400, help="Days of history to serve.")] = 40,
    now: Annotated[
        str | None, typer.Option(help="Freeze the simulator's clock at this ISO 8601 time.")
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(min=0, max=60_000, help="Latency added to each request.")
    ] = 0,
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
        float, typer.Option(min=0, max=240, help="How far costs lag behind usage.")
    ] = 3.0,
    enforcement_lag_minutes: Annotated[
        float,
        typer.Option(
            min=0, max=1440, help="How late a reached spend limit starts enforcing (429s)."
        ),
    ] = 15.0,
    rules: RulesPath = None,
    db: Database = None,
    verbose: Verbose = False,
) -> None:
    """Serve a faithful simulated OpenAI usage and costs API for a synthetic organisation."""
    setup_logging(verbose)
    from budgetguard.settings import parse_instant
    from budgetguard.simulator import SimulatorServer, build_api

    try:
        frozen = None if now is None else int(parse_instant(now).timestamp())
    except ValueError as exc:
        raise fail(f"--now: {exc}", EXIT_INPUT) from None
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
        enforcement_lag_minutes=enforcement_lag_minutes,
    )
    try:
        server = SimulatorServer(api, host=host, port=port)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_INPUT) from None
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
