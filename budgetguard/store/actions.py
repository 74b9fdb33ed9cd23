"""Budget actions in the store: one row per action, an append-only log of every step, and the
global kill switch.

``bg_actions`` has one row per budget, group, threshold, action and period (``action_key`` is
unique), so replicas and retries that plan the same action find it planned and add nothing.
A step is a conditional update (the row must still be in the state the step starts from, and
held by the caller's owner token) with its log entry and its notifications in the same
transaction: a step happens once, is logged once, and is notified once. A row is claimed
like an outbox row (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``) and
leased until a wall-clock instant: the lease of a process killed mid-step runs out, and the
next claimant finds the row in the state it was left in (``applying`` with the snapshot of
what was there before), never a second plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)

from budgetguard.store.dialects import upsert_insert
from budgetguard.store.outbox import insert_rows
from budgetguard.store.schema import metadata

__all__ = [
    "ActionLogRow",
    "ActionRow",
    "ActionStore",
    "NewAction",
    "Step",
    "action_log",
    "action_switch",
    "actions",
]

actions = Table(
    "bg_actions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("action_key", String(64), nullable=False, unique=True),
    Column("budget", String(100), nullable=False),
    Column("group_json", Text, nullable=False),
    Column("threshold", String(40), nullable=False),
    Column("trigger", String(20), nullable=False),  # threshold | forecast | burn_rate | ...
    Column("action_name", String(100), nullable=False),
    Column("type", String(40), nullable=False),
    Column("target_json", Text, nullable=False),  # {"project": "proj_a"} ...
    Column("params_json", Text, nullable=False),  # what the plan asks (amount, models, ...)
    Column("period_key", String(40), nullable=False),
    Column("revert_at", BigInteger),  # when it is undone (None: manual only)
    Column("approval", String(10), nullable=False),  # manual | auto
    Column("enforce", Boolean, nullable=False),
    Column("state", String(20), nullable=False),
    Column("before_json", Text),  # the live state read before the write
    Column("after_json", Text),  # what budgetguard wrote (as read back)
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("claimed_by", String(40)),
    Column("lease_until", BigInteger),  # wall-clock seconds
    Index("ix_actions_state", "state"),
)

action_log = Table(
    "bg_action_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("action_id", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("who", String(200), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("before_json", Text),
    Column("after_json", Text),
    Column("http_status", Integer),
    Column("request_id", String(200)),
    Column("note", Text, nullable=False, default=""),
    Index("ix_action_log_action", "action_id"),
)

#: The global kill switch: one row; while ``off`` no action is written or reverted.
action_switch = Table(
    "bg_action_switch",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("off", Boolean, nullable=False),
    Column("who", String(200), nullable=False),
    Column("at", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class NewAction:
    """A planned action as the planner hands it to the store."""

    action_key: str
    budget: str
    group: dict[str, str]
    threshold: str
    trigger: str
    action_name: str
    type: str
    target: dict[str, str]
    params: dict[str, Any]
    period_key: str
    revert_at: int | None
    approval: str
    enforce: bool
    reason: str


@dataclass(frozen=True)
class ActionRow:
    id: int
    action_key: str
    budget: str
    group: dict[str, str]
    threshold: str
    trigger: str
    action_name: str
    type: str
    target: dict[str, str]
    params: dict[str, Any]
    period_key: str
    revert_at: int | None
    approval: str
    enforce: bool
    state: str
    before: Any
    after: Any
    reason: str
    created_at: int
    updated_at: int
    claimed_by: str | None
    #: whether the live state was read before the write (``before`` may be None: nothing set)
    snapped: bool = False


@dataclass(frozen=True)
class ActionLogRow:
    id: int
    action_id: int
    at: int
    who: str
    from_state: str | None
    to_state: str
    before: Any
    after: Any
    http_status: int | None
    request_id: str | None
    note: str


@dataclass(frozen=True)
class Step:
    """One step of an action: the state it moves to and what the log records of it."""

    to_state: str
    who: str
    note: str = ""
    before: Any = None
    after: Any = None
    http_status: int | None = None
    request_id: str | None = None


#: (action row after the step, log row) -> the outbox rows (key, notifier, payload) to queue
Notes = Callable[[ActionRow, ActionLogRow], Iterable[tuple[str, str, str]]]

_MISSING = "null"


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _row(m: Any) -> ActionRow:
    return ActionRow(
        id=int(m["id"]),
        action_key=m["action_key"],
        budget=m["budget"],
        group=json.loads(m["group_json"]),
        threshold=m["threshold"],
        trigger=m["trigger"],
        action_name=m["action_name"],
        type=m["type"],
        target=json.loads(m["target_json"]),
        params=json.loads(m["params_json"]),
        period_key=m["period_key"],
        revert_at=m["revert_at"],
        approval=m["approval"],
        enforce=bool(m["enforce"]),
        state=m["state"],
        before=_load(m["before_json"]),
        after=_load(m["after_json"]),
        reason=m["reason"],
        created_at=int(m["created_at"]),
        updated_at=int(m["updated_at"]),
        claimed_by=m["claimed_by"],
        snapped=m["before_json"] is not None,
    )


def _log_row(m: Any) -> ActionLogRow:
    return ActionLogRow(
        id=int(m["id"]),
        action_id=int(m["action_id"]),
        at=int(m["at"]),
        who=m["who"],
        from_state=m["from_state"],
        to_state=m["to_state"],
        before=_load(m["before_json"]),
        after=_load(m["after_json"]),
        http_status=m["http_status"],
        request_id=m["request_id"],
        note=m["note"] or "",
    )


class ActionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- planning ------------------------------------------------------------------------

    def plan(self, new: Sequence[NewAction], now: int, who: str, notes: Notes) -> list[int]:
        """Record the actions not recorded yet (their key decides), each with its first log
        entry (``planned``) and notifications, in one transaction. The ids of the new ones."""
        made: list[int] = []
        with self.engine.begin() as conn:
            for item in new:
                statement = (
                    upsert_insert(conn)(actions)
                    .values(
                        action_key=item.action_key,
                        budget=item.budget,
                        group_json=json.dumps(item.group, sort_keys=True),
                        threshold=item.threshold,
                        trigger=item.trigger,
                        action_name=item.action_name,
                        type=item.type,
                        target_json=json.dumps(item.target, sort_keys=True),
                        params_json=json.dumps(item.params, sort_keys=True),
                        period_key=item.period_key,
                        revert_at=item.revert_at,
                        approval=item.approval,
                        enforce=item.enforce,
                        state="planned",
                        reason=item.reason,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["action_key"])
                    .returning(actions.c.id)
                )
                found = conn.execute(statement).first()
                if found is None:
                    continue  # planned before: by another replica, or an earlier tick
                made.append(int(found[0]))
                self._log(conn, int(found[0]), None, Step("planned", who, item.reason), now, notes)
        return made

    # -- claiming ------------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        lease: int,
        *,
        states: Sequence[str],
        action_id: int | None = None,
        due_before: int | None = None,
    ) -> ActionRow | None:
        """Lease one action in ``states`` (the one ``action_id``, else the oldest) not held by
        a live lease to ``owner`` for ``lease`` wall-clock seconds; with ``due_before``, only
        one whose ``revert_at`` has come."""
        wall = int(time.time())
        conditions = [
            actions.c.state.in_(list(states)),
            or_(actions.c.claimed_by.is_(None), actions.c.lease_until <= wall),
        ]
        if action_id is not None:
            conditions.append(actions.c.id == action_id)
        if due_before is not None:
            conditions.append(
                and_(actions.c.revert_at.is_not(None), actions.c.revert_at <= due_before)
            )
        chosen = (
            select(actions.c.id)
            .where(and_(*conditions))
            .order_by(actions.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(actions)
            .where(actions.c.id.in_(chosen.scalar_subquery()))
            .values(claimed_by=owner, lease_until=wall + lease)
            .returning(*actions.c)
        )
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            found = conn.execute(statement).mappings().first()
            conn.commit()
            return None if found is None else _row(found)

    def release(self, action_id: int, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(actions)
                .where(and_(actions.c.id == action_id, actions.c.claimed_by == owner))
                .values(claimed_by=None, lease_until=None)
            )

    def snapshot(self, action_id: int, owner: str, before: Any) -> bool:
        """Keep what was live before the write (under the lease), so that whoever finds the
        row after a crash knows what to compare with."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(actions)
                .where(and_(actions.c.id == action_id, actions.c.claimed_by == owner))
                .values(before_json=_dump(before) or _MISSING)
            )
            return bool(done.rowcount)

    def set_revert_at(self, action_id: int, at: int) -> None:
        """When a ``revert: {after: ...}`` action is undone: counted from when it applied."""
        with self.engine.begin() as conn:
            conn.execute(update(actions).where(actions.c.id == action_id).values(revert_at=at))

    # -- steps ---------------------------------------------------------------------------

    def step(
        self,
        row: ActionRow,
        owner: str | None,
        step: Step,
        now: int,
        notes: Notes,
        *,
        keep: bool = False,
        record_before: bool = False,
        record_after: bool = False,
    ) -> ActionRow | None:
        """Move ``row`` from its state to ``step.to_state``, if it is still in that state and
        held by ``owner`` (None: held by no live lease); log and notify it in the same
        transaction. ``keep``: keep the lease (more steps follow). The row after, or None when
        another process moved it first."""
        wall = int(time.time())
        held = (
            actions.c.claimed_by == owner
            if owner is not None
            else or_(actions.c.claimed_by.is_(None), actions.c.lease_until <= wall)
        )
        values: dict[str, Any] = {"state": step.to_state, "updated_at": now}
        if not keep:
            values.update(claimed_by=None, lease_until=None)
        if record_before:
            values["before_json"] = _dump(step.before) or _MISSING
        if record_after:
            values["after_json"] = _dump(step.after) or _MISSING
        with self.engine.begin() as conn:
            done = conn.execute(
                update(actions)
                .where(and_(actions.c.id == row.id, actions.c.state == row.state, held))
                .values(**values)
            )
            if not done.rowcount:
                return None
            self._log(conn, row.id, row.state, step, now, notes)
            found = conn.execute(select(actions).where(actions.c.id == row.id)).mappings().one()
            return _row(found)

    def _log(
        self,
        conn: Connection,
        action_id: int,
        from_state: str | None,
        step: Step,
        now: int,
        notes: Notes,
    ) -> None:
        inserted = (
            conn.execute(
                action_log.insert()
                .values(
                    action_id=action_id,
                    at=now,
                    who=step.who[:200],
                    from_state=from_state,
                    to_state=step.to_state,
                    before_json=_dump(step.before),
                    after_json=_dump(step.after),
                    http_status=step.http_status,
                    request_id=None if step.request_id is None else step.request_id[:200],
                    note=step.note,
                )
                .returning(*action_log.c)
            )
            .mappings()
            .one()
        )
        current = conn.execute(select(actions).where(actions.c.id == action_id)).mappings().one()
        insert_rows(conn, notes(_row(current), _log_row(inserted)), now)

    # -- reading -------------------------------------------------------------------------

    def get(self, action_id: int) -> ActionRow | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(actions).where(actions.c.id == action_id)).mappings()
            first = found.first()
            return None if first is None else _row(first)

    def all(self, states: Sequence[str] | None = None) -> list[ActionRow]:
        query = select(actions).order_by(actions.c.id)
        if states is not None:
            query = query.where(actions.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [_row(m) for m in conn.execute(query).mappings()]

    def log(self, action_id: int | None = None) -> list[ActionLogRow]:
        query = select(action_log).order_by(action_log.c.id)
        if action_id is not None:
            query = query.where(action_log.c.action_id == action_id)
        with self.engine.connect() as conn:
            return [_log_row(m) for m in conn.execute(query).mappings()]

    def started_since(self, since: int) -> int:
        """How many writes began (steps to ``applying``) at or after ``since``."""
        query = select(func.count()).where(
            and_(action_log.c.to_state == "applying", action_log.c.at >= since)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- the kill switch -----------------------------------------------------------------

    def switched_off(self) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(action_switch.c.off).where(action_switch.c.id == 1))
            first = found.first()
            return bool(first[0]) if first is not None else False

    def switch(self, off: bool, who: str, now: int) -> None:
        with self.engine.begin() as conn:
            statement = upsert_insert(conn)(action_switch).values(id=1, off=off, who=who, at=now)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"], set_={"off": off, "who": who, "at": now}
                )
            )
