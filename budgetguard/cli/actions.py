"""``budgetguard actions list|log|approve|reject|revert|off|on``: the people's side of budget
actions. Planning and applying happen in ``run``'s tick and in ``check --notify``; here a
person approves (which applies at once, through the same state machine), rejects, reverts
by hand, reads the append-only log, or stops every action with the kill switch.

A bad ID (not a number, no such action, not in a state the verb applies to) is one line and
exit 2, with nothing changed.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from budgetguard.cli.common import Database, Now, RulesPath, Verbose, app
from budgetguard.cli.context import (
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    command_context,
    echo,
    fail,
    open_store,
)
from budgetguard.notify.escape import plain_text

if TYPE_CHECKING:
    from budgetguard.rules import Rules
    from budgetguard.settings import Settings
    from budgetguard.store import Store
    from budgetguard.store.actions import ActionLogRow, ActionRow

__all__ = ["actions"]

actions = typer.Typer(help="Budget actions: list, log, approve, reject, revert, off, on.")
app.add_typer(actions, name="actions")

STATES = (
    "planned",
    "pending_approval",
    "applying",
    "applied",
    "failed",
    "reverting",
    "reverted",
    "drifted",
    "rejected",
)
ActionId = Annotated[str, typer.Argument(help="The id `actions list` shows.")]


def _iso(at: int | None) -> str:
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _opened(
    rules: Path | None, db: str | None, now: str | None, verbose: bool, *, sends: bool = False
) -> Iterator[tuple[Settings, Rules, datetime, Store]]:
    """Settings, the checked rules, the clock and the store; ``sends``: the command delivers
    the notifications of its steps (so the notifiers' variables must be set)."""
    settings, loaded, clock = command_context(rules, db, now, verbose, sends=sends)
    store = open_store(settings)
    try:
        yield settings, loaded, clock, store
    finally:
        store.close()


def _row(store: Store, text: str, verb: str, states: tuple[str, ...]) -> ActionRow:
    """The action ``text`` names, in one of ``states`` (else one line, exit 2)."""
    if not text.isdigit() or len(text) > 18:
        raise fail(
            f"actions {verb}: {plain_text(text)!r} is not an action id (a number)", EXIT_INPUT
        )
    row = store.actions.get(int(text))
    if row is None:
        raise fail(f"actions {verb}: no action {text}", EXIT_INPUT)
    if row.state not in states:
        wanted = " or ".join(states)
        raise fail(f"actions {verb}: action {text} is {row.state}, not {wanted}", EXIT_INPUT)
    return row


def line_of(row: ActionRow, enabled: bool) -> str:
    """One action as ``list`` prints it (``enabled``: ``BUDGETGUARD_ACTIONS=on``)."""
    group = ",".join(f"{k}={v}" for k, v in row.group.items())
    target = ",".join(f"{k}={v}" for k, v in row.target.items()) or "org"
    mode = "enforce" if row.enforce and enabled else "dry-run"
    revert = f"revert at {_iso(row.revert_at)}" if row.revert_at is not None else "revert manual"
    label = row.budget + (f" [{group}]" if group else "")
    return plain_text(
        f"{row.id}  {row.state:<16} {row.action_name} ({row.type} {target})  {label}  "
        f"{mode}, {row.approval}, {revert}"
    )


def log_line(entry: ActionLogRow) -> str:
    """One step as ``log`` prints it: when, which, from -> to, who, before/after, HTTP."""
    from budgetguard.actions import describe_state

    http = f"  HTTP {entry.http_status}" if entry.http_status is not None else ""
    request = f" {entry.request_id}" if entry.request_id else ""
    states = ""
    if entry.before is not None or entry.after is not None or entry.http_status is not None:
        states = f"  before: {describe_state(entry.before)}  after: {describe_state(entry.after)}"
    was = entry.from_state or "—"
    return plain_text(
        f"{_iso(entry.at)}  action {entry.action_id}  {was} -> {entry.to_state}  by {entry.who}"
        f"{states}{http}{request}  {entry.note}"
    )


@actions.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Finished ones too.")] = False,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """The actions still open (``--all``: every one): id, state, action, budget, mode."""
    done = ("reverted", "rejected", "failed", "drifted")
    with _opened(rules, db, now, verbose) as (settings, _, _, store):
        rows = [r for r in store.actions.all() if all_ or r.state not in done]
        off = store.actions.switched_off()
    if off:
        echo("the kill switch is on: no action moves (`budgetguard actions on` ends it)", err=True)
    for row in rows:
        typer.echo(line_of(row, settings.actions_write))
    if not rows:
        echo("no actions", err=True)


@actions.command("log")
def log(
    action_id: Annotated[str | None, typer.Argument(help="One action's steps only.")] = None,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Every step of every action (or of one), oldest first: the append-only log."""
    with _opened(rules, db, now, verbose) as (_, _, _, store):
        if action_id is not None:
            wanted: int | None = _row(store, action_id, "log", STATES).id
        else:
            wanted = None
        entries = store.actions.log(wanted)
    if not entries:
        typer.echo("no action steps logged")
    for entry in entries:
        typer.echo(log_line(entry))


def _deliver(settings: Settings, loaded: Rules, store: Store, clock: datetime) -> None:
    from budgetguard import pipeline
    from budgetguard.cli.check import say_delivery
    from budgetguard.notify.manager import default_plugins

    notifiers = default_plugins().notifiers(loaded.notifiers)
    within = settings.notify_retry_within
    say_delivery("notifications", pipeline.deliver_due(store, notifiers, clock, within=within))


@actions.command("approve")
def approve(
    action_id: ActionId,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Approve an action waiting for approval: it is applied now (snapshot, write, read
    back, compare), with you in the log."""
    from budgetguard import pipeline

    with _opened(rules, db, now, verbose, sends=True) as (settings, loaded, clock, store):
        row = _row(store, action_id, "approve", ("pending_approval",))
        _may_write(settings, loaded, store, row, "approve")
        if row.revert_at is not None and row.revert_at <= clock.timestamp():
            ended = datetime.fromtimestamp(row.revert_at, UTC).isoformat().replace("+00:00", "Z")
            raise fail(
                f"actions approve: action {row.id} was planned for a period that ended at "
                f"{ended}: approving it now would write a stale value (reject it; the next "
                "crossing plans a fresh one)",
                EXIT_INPUT,
            )
        runner = pipeline.action_runner(settings, store, loaded, clock, who=_who())
        claimed = runner.claim_one(row.id, ("pending_approval",))
        if claimed is None:
            raise fail(f"actions approve: action {row.id} is being handled elsewhere", EXIT_INPUT)
        after = runner.apply(claimed, note=f"approved by {runner.who}")
        _deliver(settings, loaded, store, clock)
    _settled("approve", row.id, after, ("applied",))


@actions.command("reject")
def reject(
    action_id: ActionId,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Reject a planned or waiting action: it will never be applied (this period)."""
    from budgetguard import pipeline

    with _opened(rules, db, now, verbose, sends=True) as (settings, loaded, clock, store):
        row = _row(store, action_id, "reject", ("planned", "pending_approval"))
        runner = pipeline.action_runner(settings, store, loaded, clock, who=_who())
        claimed = runner.claim_one(row.id, ("planned", "pending_approval"))
        moved = None if claimed is None else runner.reject(claimed, f"rejected by {runner.who}")
        if moved is None:
            raise fail(f"actions reject: action {row.id} is being handled elsewhere", EXIT_INPUT)
        _deliver(settings, loaded, store, clock)
    typer.echo(f"action {row.id}: rejected")


@actions.command("revert")
def revert(
    action_id: ActionId,
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """Revert an applied action now: the snapshot is written back only if the live state is
    still what budgetguard wrote (else it is drifted, and nothing is written)."""
    from budgetguard import pipeline
    from budgetguard.rules.actions import IRREVERSIBLE_TYPES

    with _opened(rules, db, now, verbose, sends=True) as (settings, loaded, clock, store):
        row = _row(store, action_id, "revert", ("applied",))
        if row.type in IRREVERSIBLE_TYPES:
            raise fail(f"actions revert: {row.type} cannot be undone", EXIT_INPUT)
        _may_write(settings, loaded, store, row, "revert")
        runner = pipeline.action_runner(settings, store, loaded, clock, who=_who())
        claimed = runner.claim_one(row.id, ("applied",))
        if claimed is None:
            raise fail(f"actions revert: action {row.id} is being handled elsewhere", EXIT_INPUT)
        after = runner.revert(claimed, note=f"revert asked by {runner.who}")
        _deliver(settings, loaded, store, clock)
    _settled("revert", row.id, after, ("reverted", "drifted"))


def _settled(verb: str, action_id: int, after: ActionRow | None, wanted: tuple[str, ...]) -> None:
    """Say where the action ended; exit 3 when the write did not settle (the API unreachable,
    the key refused, an answer that leaves the outcome open: the log says which)."""
    state = after.state if after else "not moved"
    typer.echo(f"action {action_id}: {state}")
    if state not in wanted:
        raise fail(
            f"actions {verb}: action {action_id} is {state}, not {' or '.join(wanted)}: "
            f"see `budgetguard actions log {action_id}`",
            EXIT_UNAVAILABLE,
        )


def _may_write(settings: Settings, loaded: Rules, store: Store, row: ActionRow, verb: str) -> None:
    """Both locks, the kill switch and a key to write with (else one line, exit 2)."""
    action = loaded.actions.get(row.action_name)
    if not settings.actions:
        raise fail(f"actions {verb}: actions are off (set BUDGETGUARD_ACTIONS=on)", EXIT_INPUT)
    if settings.clock_blocks_actions:
        raise fail(
            f"actions {verb}: a fixed --now (or BUDGETGUARD_NOW) never writes to OpenAI's live "
            "controls: run it at the real clock",
            EXIT_INPUT,
        )
    if action is None or not action.enforce:
        raise fail(
            f"actions {verb}: the rules' action {row.action_name!r} is not enforce: true",
            EXIT_INPUT,
        )
    if store.actions.switched_off():
        raise fail(f"actions {verb}: the kill switch is on (`budgetguard actions on`)", EXIT_INPUT)
    if settings.action_key is None:
        raise fail(
            f"actions {verb}: no key to write with (BUDGETGUARD_OPENAI_ACTION_KEY or "
            "OPENAI_ADMIN_KEY)",
            EXIT_INPUT,
        )


@actions.command("off")
def off(
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """The kill switch: no action is written or reverted, on any replica, until ``on``."""
    with _opened(rules, db, now, verbose) as (_, _, clock, store):
        store.actions.switch(True, _who(), int(clock.timestamp()))
    typer.echo("actions off: nothing is written or reverted until `budgetguard actions on`")


@actions.command("on")
def on(
    rules: RulesPath = None,
    db: Database = None,
    now: Now = None,
    verbose: Verbose = False,
) -> None:
    """End the kill switch (the rules' enforce and BUDGETGUARD_ACTIONS still apply)."""
    with _opened(rules, db, now, verbose) as (_, _, clock, store):
        store.actions.switch(False, _who(), int(clock.timestamp()))
    typer.echo("actions on")
