"""The action state machine: planned → pending_approval → applying → applied | failed →
reverting → reverted | drifted (and rejected, by a person), one claimed row at a time.

Applying snapshots the live state (kept on the row before anything is written), writes,
reads back and compares: a read-back that differs from what was written is ``drifted``, a
refused call is ``failed``, and neither is retried blindly. A revert writes the snapshot back
only while the live state is still what budgetguard wrote; otherwise the action is
``drifted`` and nothing is written. A row whose lease ran out mid-write (its process killed)
is finished by the next claimant from what is live: the write landed (``applied``), it did not
(written now, once), or someone else changed it (``drifted``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from budgetguard.actions.controls import ControlError, Controls, change
from budgetguard.actions.messages import describe_state
from budgetguard.actions.plan import revert_due
from budgetguard.rules import Rules
from budgetguard.rules.actions import IRREVERSIBLE_TYPES
from budgetguard.store.actions import ActionRow, ActionStore, Notes, Step
from budgetguard.store.outbox import new_owner

__all__ = ["ActionRun", "Gate", "Runner", "machine_name"]

log = logging.getLogger("budgetguard.actions")

_DAY = 86400


def _iso(at: int | None) -> str:
    return "—" if at is None else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def machine_name() -> str:
    """Who acts when nobody asked: this process."""
    return f"budgetguard@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Gate:
    """The environment's lock (``BUDGETGUARD_ACTIONS=on``)."""

    enabled: bool


@dataclass
class ActionRun:
    """What one pass did, for the command's output and the service's log."""

    moved: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


class Runner:
    """Advances the actions of one store with one provider's controls."""

    def __init__(
        self,
        store: ActionStore,
        rules: Rules,
        controls: Controls | None,
        gate: Gate,
        notes: Notes,
        now: datetime,
        who: str | None = None,
        lease: float = 300.0,
    ) -> None:
        self.lease = int(lease)
        self.store, self.rules, self.controls, self.gate = store, rules, controls, gate
        self.notes, self.at = notes, int(now.timestamp())
        self.who = who or machine_name()
        self.owner = new_owner()
        self.report = ActionRun()

    # -- the pass ------------------------------------------------------------------------

    def run(self) -> ActionRun:
        """One pass: finish what a dead process left, revert what is due, check what is
        applied for drift, then move planned actions on (within the blast-radius limits)."""
        if self.store.switched_off():
            self.report.held.append("the kill switch is on: no action moves")
            return self.report
        # each row once a pass (a step that leaves it claimable must not loop)
        for row in self.store.all(("applying", "reverting")):
            claimed = self._claim((row.state,), action_id=row.id)  # only a dead lease's
            if claimed is not None:
                self._recover(claimed)
        for row in self.store.all(("applied",)):
            if row.revert_at is None or row.revert_at > self.at:
                continue
            claimed = self._claim(("applied",), action_id=row.id, due=True)
            if claimed is not None:
                when = "its delay ran out" if "revert_after" in row.params else "the period ended"
                self._revert(claimed, f"{when} at {_iso(row.revert_at)}")
        for row in self.store.all(("applied",)):
            if row.type in IRREVERSIBLE_TYPES or (row.revert_at or self.at + 1) <= self.at:
                continue  # a deleted key or an archived project cannot be read back
            claimed = self._claim(("applied",), action_id=row.id)
            if claimed is not None:
                self._check_drift(claimed)
        self._advance_planned()
        return self.report

    def _claim(
        self, states: tuple[str, ...], *, due: bool = False, action_id: int | None = None
    ) -> ActionRow | None:
        return self.store.claim(
            self.owner,
            self.lease,
            states=states,
            action_id=action_id,
            due_before=self.at if due else None,
        )

    def _step(self, row: ActionRow, step: Step, **kw: Any) -> ActionRow | None:
        moved = self.store.step(row, self.owner, step, self.at, self.notes, **kw)
        if moved is not None:
            self.report.moved.append(f"action {row.id}: {row.state} -> {step.to_state}")
        return moved

    def _advance_planned(self) -> None:
        per_tick = self.rules.action_limits.per_tick
        today = self.store.started_since(self.at - _DAY)
        started = 0
        seen: set[int] = set()
        for row in self.store.all(("planned",)):
            action = self.rules.actions.get(row.action_name)
            if action is None or not (action.enforce and row.enforce) or not self.gate.enabled:
                continue  # dry-run: planned and reported, never written
            if row.id in seen:
                continue
            seen.add(row.id)
            claimed = self._claim(("planned",), action_id=row.id)
            if claimed is None:
                continue
            protected = self._protected(claimed, action.protect)
            if action.approval == "manual" or protected:
                why = " (a protected project: only a person may approve)" if protected else ""
                self._step(
                    claimed,
                    Step(
                        "pending_approval", self.who, f"waits for approval{why}: {claimed.reason}"
                    ),
                )
                continue
            if started >= per_tick or today + started >= self.rules.action_limits.per_day:
                self.store.release(claimed.id, self.owner)
                self.report.held.append(f"action {claimed.id}: held by the blast-radius limits")
                continue
            started += 1
            self.apply(claimed)

    def _protected(self, row: ActionRow, own: tuple[str, ...]) -> bool:
        project = row.target.get("project")
        globs = (*own, *self.rules.action_limits.protect)
        return project is not None and any(fnmatch.fnmatchcase(project, g) for g in globs)

    # -- applying ------------------------------------------------------------------------

    def apply(self, row: ActionRow, note: str = "") -> ActionRow | None:
        """A claimed planned or approved action: applying, then applied, failed or drifted."""
        if self.controls is None:
            self.store.release(row.id, self.owner)
            self.report.held.append(f"action {row.id}: no action key to write with")
            return None
        going = self._step(
            row, Step("applying", self.who, note or "reading the live state"), keep=True
        )
        if going is None:
            return None
        try:
            live = self.controls.read(row.type, row.target)
        except ControlError as exc:
            return self._failed(going, exc, None)  # nothing written
        self.store.snapshot(going.id, self.owner, live.state)
        return self._write(going, live.state, live.state)

    def _write(self, row: ActionRow, before: Any, live: Any) -> ActionRow | None:
        assert self.controls is not None
        wanted = change(row.type, row.params, before)
        if wanted is None:
            return self._step(
                row,
                Step(
                    "applied",
                    self.who,
                    f"nothing to write: already {describe_state(before)}",
                    before,
                    before,
                ),
                record_after=True,
                record_before=True,
            )
        try:
            wrote = self.controls.write(row.type, row.target, wanted.state, live)
        except ControlError as exc:
            if exc.retryable:  # a timeout or a 5xx: it may have landed
                self._unsure(row, exc)
                return None
            return self._failed(row, exc, before)
        try:
            back = self.controls.read(row.type, row.target)
        except ControlError as exc:
            self._unsure(row, exc)
            return None
        ok = back.state == wanted.state
        step = Step(
            "applied" if ok else "drifted",
            self.who,
            f"wrote {describe_state(wanted.state)}, read back {describe_state(back.state)}"
            + ("" if ok else ": the read-back differs from what was written"),
            before,
            back.state,
            wrote.status,
            wrote.request_id,
        )
        moved = self._step(row, step, record_after=True, record_before=True)
        after = revert_due(row.params, self.at)
        if moved is not None and ok and after is not None:
            self.store.set_revert_at(moved.id, after)
        return moved

    def _unsure(self, row: ActionRow, exc: ControlError) -> None:
        """A write that may have landed (or was not read back): left ``applying`` with its
        snapshot and given back; the next pass reads what is live and finishes it, as after
        a crash (landed: applied; not: written once; else: drifted)."""
        self.store.release(row.id, self.owner)
        self.report.held.append(f"action {row.id}: not known whether it landed ({exc})")

    def _failed(self, row: ActionRow, exc: ControlError, before: Any) -> ActionRow | None:
        return self._step(
            row,
            Step("failed", self.who, str(exc), before, None, exc.status, exc.request_id),
        )

    def _recover(self, row: ActionRow) -> None:
        """A row left mid-step by a process that died (its lease ran out)."""
        if self.controls is None:
            self.store.release(row.id, self.owner)
            return
        if row.type in IRREVERSIBLE_TYPES and row.snapped:
            note = (
                "interrupted mid-write, and a deleted key or an archived project cannot be "
                "read back: see OpenAI's dashboard (never written twice)"
            )
            self._step(row, Step("failed", self.who, note, row.before, None))
            return
        try:
            live = self.controls.read(row.type, row.target).state
        except ControlError as exc:  # finished on a later pass, from what is live then
            self.store.release(row.id, self.owner)
            self.report.held.append(f"action {row.id}: left {row.state}, cannot read: {exc}")
            return
        if row.state == "reverting":
            self._revert_from(row, live)
            return
        if not row.snapped:  # died before reading: nothing was written
            self.store.snapshot(row.id, self.owner, live)
            self._write(row, live, live)
            return
        wanted = change(row.type, row.params, row.before)
        if wanted is None or live == wanted.state:
            self._step(
                row,
                Step(
                    "applied", self.who, "the write before a restart had landed", row.before, live
                ),
                record_after=True,
            )
        elif live == row.before:
            self._write(row, row.before, live)  # it never landed: written now, once
        else:
            self._drifted(
                row, live, "the live state is neither the snapshot nor what was to be written"
            )

    # -- reverting -----------------------------------------------------------------------

    def revert(self, row: ActionRow, note: str = "") -> ActionRow | None:
        return self._revert(row, note)

    def _revert(self, row: ActionRow, note: str = "") -> ActionRow | None:
        if self.controls is None:
            self.store.release(row.id, self.owner)
            self.report.held.append(f"action {row.id}: no action key to revert with")
            return None
        going = self._step(row, Step("reverting", self.who, note or "reverting"), keep=True)
        if going is None:
            return None
        try:
            live = self.controls.read(row.type, row.target).state
        except ControlError as exc:
            return self._revert_later(going, exc)
        return self._revert_from(going, live)

    def _revert_from(self, row: ActionRow, live: Any) -> ActionRow | None:
        assert self.controls is not None
        if live == row.before:
            return self._step(
                row, Step("reverted", self.who, "the live state is the snapshot again", live, live)
            )
        if live != row.after:
            return self._drifted(
                row, live, "changed since budgetguard wrote it: nothing written back"
            )
        try:
            wrote = self.controls.write(row.type, row.target, row.before, live)
            back = self.controls.read(row.type, row.target)
        except ControlError as exc:
            return self._revert_later(row, exc)
        ok = back.state == row.before
        return self._step(
            row,
            Step(
                "reverted" if ok else "drifted",
                self.who,
                (
                    f"wrote back {describe_state(row.before)}"
                    if row.before is not None
                    else "removed it (nothing was set before)"
                )
                + f", read back {describe_state(back.state)}",
                live,
                back.state,
                wrote.status,
                wrote.request_id,
            ),
        )

    def _revert_later(self, row: ActionRow, exc: ControlError) -> ActionRow | None:
        """A revert whose call failed stays owed: back to ``applied``, tried again on the
        next pass (which reads and compares first, so it is never a blind retry)."""
        note = f"revert not done ({exc}): tried again on the next pass"
        return self._step(
            row, Step("applied", self.who, note, None, None, exc.status, exc.request_id)
        )

    def _check_drift(self, row: ActionRow) -> None:
        if self.controls is None:
            self.store.release(row.id, self.owner)
            return
        try:
            live = self.controls.read(row.type, row.target).state
        except ControlError:
            self.store.release(row.id, self.owner)
            return
        if live == row.after:
            self.store.release(row.id, self.owner)
            return
        self._drifted(row, live, "changed behind budgetguard's back: it will not be reverted over")

    def _drifted(self, row: ActionRow, live: Any, why: str) -> ActionRow | None:
        return self._step(
            row,
            Step(
                "drifted",
                self.who,
                f"{why} (live: {describe_state(live)}, written: {describe_state(row.after)})",
                row.after,
                live,
            ),
        )

    # -- people --------------------------------------------------------------------------

    def claim_one(self, action_id: int, states: tuple[str, ...]) -> ActionRow | None:
        return self._claim(states, action_id=action_id)

    def reject(self, row: ActionRow, note: str) -> ActionRow | None:
        return self._step(row, Step("rejected", self.who, note))
