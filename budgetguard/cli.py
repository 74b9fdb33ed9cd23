"""The ``budgetguard`` command line. Each command only wires modules together.

Heavy modules are imported inside the commands, so ``budgetguard --help`` stays fast.
Exit codes (the contract): 0 all good, 1 a budget at or over ``--fail-on``, 2 bad input,
3 data unavailable.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

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


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"budgetguard: {message}", err=True)
    return typer.Exit(code)


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
