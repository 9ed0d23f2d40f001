"""The projection runner: the event store's global order, applied to every read model once.

Each batch is one transaction that (1) takes the runner's advisory lock, so two runners
(several `serve` workers, or `projections run` beside them) never apply the same events,
(2) reads every projection's position, (3) reads the next events (up to `batch_size`) in
`notification_id` order, loads the read-model rows of the records they touch (of the
read models those events change, and of the ones they read: Projection.reads), applies
each event to each projection still behind it in memory (base.Batch), writes what changed
with a DELETE and a COPY per table, and (4) writes the new positions. The rows and the
positions commit together or not at all, so each event is applied exactly once, whenever
the process dies. Only the events whose payload some handler reads are decoded; for the
others the notification's header (type, record, version) is enough.

Gaps: the event store's recorder takes an EXCLUSIVE lock on the events table before it
is given notification ids and holds it until commit, so ids commit in order, and a gap
can only be an id whose transaction is still running or was rolled back. The runner
stops at a gap while any transaction holds that lock; when none does, every id handed
out so far is either committed (and visible to a fresh read) or never will be, so it
reads again and passes the gap. No event that commits later is ever skipped.

Any number of runners may run (`projections run` processes, and one in each `serve` worker),
on any number of hosts; one of them, elected through PostgreSQL, applies events at a time
(docs/adr/024). A runner stands for election by trying the leader's advisory lock
(LEADER_LOCK, at session level) every second; the one that gets it applies every batch on
that same session, so if its process or host dies the server ends the session, the lock is
free, and another runner takes it at its next try. Leadership decides nothing about
correctness: each batch still takes the runners' transaction lock and the positions FOR
UPDATE, so even two runners that both believed they led would apply each event once.
`projection_leader` names the runner elected last, for `projections status`.

An event a projection cannot apply does not stop the others (docs/adr/018): the batch is
applied inside a savepoint; if it fails, its halves are applied, each in a savepoint of its
own, down to the one event that fails, which is tried projection by projection and set aside
(projection_dead_letters) for those that cannot apply it. Every other event is applied once,
and the positions move once, past all of them, in the same transaction. `retry` applies
what was set aside again, in its place in its record's history; a rebuild sets aside afresh.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.queues
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson
import psycopg
from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic
from psycopg import sql
from psycopg.rows import tuple_row
from sqlalchemy import Connection, Engine, create_engine, text

from domain.nominal import Nominal
from projections import (
    actions,
    attendance,
    current_view,
    dead_letters,
    disclosure_coverage,
    event_areas,
    late_minutes,
    outcomes,
    partnering_audit,
    plans_out_of_date,
    recording_activity,
    referrals,
    registration_timeliness,
    review_schedule,
)
from projections.base import EVERY_EVENT, Batch, Handler, Projection, Stored

log = logging.getLogger(__name__)

PROJECTIONS: tuple[Projection, ...] = (
    current_view.PROJECTION,
    partnering_audit.PROJECTION,
    attendance.PROJECTION,
    late_minutes.PROJECTION,
    referrals.PROJECTION,
    actions.PROJECTION,
    disclosure_coverage.PROJECTION,
    review_schedule.PROJECTION,
    registration_timeliness.PROJECTION,
    event_areas.PROJECTION,
    plans_out_of_date.PROJECTION,
    recording_activity.PROJECTION,
    outcomes.PROJECTION,
    # Last: its rows are computed from the read models above, at the same position.
    partnering_audit.GAPS_PROJECTION,
)

RUNNER_LOCK = 7_413_003  # pg_advisory_xact_lock key: one runner applies at a time
# pg_advisory_lock key, held for as long as it leads by the session of the elected runner;
# below RUNNER_LOCK, as a rebuild's groups take the keys just above it (RUNNER_LOCK + 1 + i).
LEADER_LOCK = 7_412_010
# How often a runner that does not lead tries to: the longest a dead leader stays unreplaced
# once the server has ended its session (at once when the process dies; within
# LEADER_KEEPALIVE's seconds when its host does).
ELECTION_INTERVAL = 1.0
# The leader's session has the server probe its client after 1 s of silence, every second,
# and give up after two unanswered probes: a leader whose host vanished loses the lock in
# about 3 s rather than after the kernel's two hours. Ignored on a Unix socket.
LEADER_KEEPALIVE = {
    "tcp_keepalives_idle": 1,
    "tcp_keepalives_interval": 1,
    "tcp_keepalives_count": 2,
    "tcp_user_timeout": 3000,
}
EVENTS_TABLE = "nominals_events"
END = 2**63  # past every notification id
# PostgreSQL error classes that say nothing about the events being applied: the connection
# (08), a conflict with another transaction (40), the server's resources (53), a lock or an
# object in use (55), the operator or a timeout (57), the system (58), the configuration file
# (F0), the server itself (XX). The batch is tried again later; nothing is set aside for them.
TRANSIENT = frozenset({"08", "40", "53", "55", "57", "58", "F0", "XX"})

# Builds, in a rebuild's worker process, a runner of the named projections that takes the
# given advisory lock key. Picklable (a module-level function, or a partial of one): the
# service's command line makes it, as only the service knows how to reach the event store.
GroupRunner = Callable[[tuple[str, ...], int], "ProjectionRunner"]


def rebuild_groups(projections: Sequence[Projection], workers: int) -> list[list[Projection]]:
    """The projections in at most `workers` groups, each applied by a process of its own.

    A projection whose handlers read another's tables (Projection.reads: partnering_gaps
    reads the current view, partnerships, officers and meetings at its own position) stays in one
    group with it; such units are dealt, heaviest first, to the lightest group (`_weight`);
    each group keeps the projections' own order."""
    owner = {t.name: p.name for p in projections for t in p.tables}
    unit = {p.name: frozenset({p.name}) for p in projections}
    for p in projections:
        for table in p.reads:
            if table.name in owner:
                merged = unit[p.name] | unit[owner[table.name]]
                unit.update(dict.fromkeys(merged, merged))
    units = list(dict.fromkeys(unit[p.name] for p in projections))
    weight = {p.name: _weight(p) for p in projections}
    groups: list[list[str]] = [[] for _ in range(max(workers, 1))]
    for names in sorted(units, key=lambda u: sum(weight[n] for n in u), reverse=True):
        min(groups, key=lambda g: sum(weight[n] for n in g)).extend(names)
    return [[p for p in projections if p.name in g] for g in groups if g]


def _weight(p: Projection) -> int:
    """A projection's share of a rebuild's work, roughly: a handler for every event touches
    a row per event, several times one type's handlers; reading every event's envelope
    fetches and reads every stored state besides (issue 18: dealt by count alone, the
    envelopes, the event areas and the current view fell in one process, and a national
    rebuild of 4,046,259 events took 222 s; dealt by weight, 164 s; 143 s before the
    envelopes, on the same data and machine)."""
    return 1 + 3 * (EVERY_EVENT in p.handlers) + 4 * p.envelopes


@dataclass(frozen=True)
class Leader:
    """The runner elected last: who (host, process, what it runs in), since when, and whether
    it still leads (its server session still holds LEADER_LOCK)."""

    holder: str
    backend_pid: int
    elected_at: datetime
    term: int
    leads: bool


LEADER_SQL = (
    "SELECT holder, backend_pid, elected_at, term, EXISTS (SELECT FROM pg_locks k"
    " WHERE k.locktype = 'advisory' AND k.classid = 0 AND k.objid = :key AND k.objsubid = 1"
    " AND k.granted AND k.pid = l.backend_pid) AS leads FROM projection_leader l"
)


def candidate_name(role: str) -> str:
    """How a runner names itself when elected: host, process id, and what it runs in."""
    return f"{socket.gethostname()} pid {os.getpid()} ({role})"


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    set_aside: int = 0  # events it could not apply (dead_letters)

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


# Each projection's position and the number of events it has set aside.
STATUS_SQL = (
    "SELECT p.name, p.position, count(d.position) AS set_aside FROM projection_positions p"
    " LEFT JOIN projection_dead_letters d ON d.projection = p.name"
    " GROUP BY p.name, p.position ORDER BY p.name"
)


class Header(NamedTuple):
    """A notification without its state."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str


class Busy(Exception):
    """Another runner holds the lock."""


class ProjectionRunner:
    """Applies the notification log to the read models; the same code catches up and rebuilds."""

    def __init__(
        self,
        engine: Engine,
        recorder: Any,
        mapper: Any,
        projections: Sequence[Projection] = PROJECTIONS,
        batch_size: int = 5000,
        lock_key: int = RUNNER_LOCK,
        owner: object = None,
        name: str | None = None,
    ) -> None:
        self.owner = owner  # kept alive with the runner: the application the recorder is of
        self.name = name or candidate_name("runner")  # in projection_leader while it leads
        self.leading = False
        self.engine = engine
        self.recorder = recorder
        self.mapper = mapper
        self.projections = tuple(projections)
        self.batch_size = batch_size
        self.lock_key = lock_key
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._types: dict[str, str] = {}  # topic -> event type
        self.ensure_positions()
        self._columns = self._read_columns()
        table = sql.SQL("{}.{}").format(
            sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name)
        )
        # The log's headers first; states only of the events some handler decodes.
        self._select_sql = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic"
            " FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table)
        self._states_sql = sql.SQL(
            "SELECT notification_id, state FROM {} WHERE notification_id = ANY(%s)"
        ).format(table)
        self._records_sql = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic FROM {}"
            " WHERE originator_id = ANY(%s) AND notification_id <= %s ORDER BY notification_id"
        ).format(table)

    @classmethod
    def for_service(cls, service: Any, **kwargs: Any) -> ProjectionRunner:
        """A runner on a started service's database and event store."""
        # Pinged when taken from the pool: after a failover its idle connections are to a
        # server that is gone.
        engine = create_engine(
            service.db.sqlalchemy_url("psycopg"), pool_size=2, max_overflow=0, pool_pre_ping=True
        )
        app = service.ledger.app
        return cls(engine, app.recorder, app.mapper, **kwargs)

    # -- positions -------------------------------------------------------------------------

    def ensure_positions(self) -> None:
        with self.engine.begin() as conn:
            for p in self.projections:
                conn.execute(
                    text(
                        "INSERT INTO projection_positions (name) VALUES (:name)"
                        " ON CONFLICT (name) DO NOTHING"
                    ),
                    {"name": p.name},
                )

    def _read_columns(self) -> dict[str, dict[str, str]]:
        """Each read-model table's columns and their SQL types, in table order."""
        names = [t.name for p in self.projections for t in p.tables]
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)"
                    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " WHERE c.oid = ANY(CAST(:names AS regclass[])) AND a.attnum > 0"
                    " AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
                ),
                {"names": names},
            ).all()
        columns: dict[str, dict[str, str]] = {name: {} for name in names}
        for table, column, type_ in rows:
            columns[table][column] = type_
        return columns

    def head(self) -> int:
        """The highest notification id stored (0 when the store is empty)."""
        return int(self.recorder.max_notification_id() or 0)

    def status(self) -> list[ProjectionStatus]:
        """Each projection's position, the head of the log it lags behind, and how many
        events it has set aside."""
        head = self.head()
        with self.engine.connect() as conn:
            rows = conn.execute(text(STATUS_SQL)).all()
        known = {r.name: (int(r.position), int(r.set_aside)) for r in rows}
        return [
            ProjectionStatus(p.name, position, head, set_aside)
            for p in self.projections
            for position, set_aside in [known.get(p.name, (0, 0))]
        ]

    def leader(self) -> Leader | None:
        """The runner elected last (None before any was), and whether it still leads."""
        with self.engine.connect() as conn:
            row = conn.execute(text(LEADER_SQL), {"key": LEADER_LOCK}).one_or_none()
        if row is None:
            return None
        return Leader(row.holder, row.backend_pid, row.elected_at, row.term, row.leads)

    # -- applying --------------------------------------------------------------------------

    def run_once(self, conn: Connection | None = None) -> int:
        """Apply the next batch in one transaction (on `conn`, the leader's session, if
        given); the number of events read (0: caught up)."""
        if conn is None:
            with self.engine.connect() as own:
                return self.run_once(own)
        with conn.begin():
            positions = self._lock(conn)
            behind = [p for p in self.projections if p.name in positions]
            if not behind:
                return 0
            start = min(positions[p.name] for p in behind)
            notifications = self._next(conn, start)
            if not notifications:
                return 0
            self._apply_or_set_aside(conn, behind, positions, notifications)
            last = notifications[-1].id
            conn.execute(
                text(
                    "UPDATE projection_positions SET position = :last, updated_at = now()"
                    " WHERE name = ANY(:names) AND position < :last"
                ),
                {"last": last, "names": [p.name for p in behind]},
            )
            return len(notifications)

    def _lock(self, conn: Connection) -> dict[str, int]:
        """Take the runners' lock (Busy if another runner holds it) and this runner's
        projections' positions, each row locked, in one order by every runner."""
        if not conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key}
        ).scalar():
            raise Busy
        rows = conn.execute(
            text(
                "SELECT name, position FROM projection_positions"
                " WHERE name = ANY(:names) ORDER BY name FOR UPDATE"
            ),
            {"names": [p.name for p in self.projections]},
        ).all()
        return {r.name: int(r.position) for r in rows}

    def _apply_or_set_aside(
        self,
        conn: Connection,
        behind: Sequence[Projection],
        positions: dict[str, int],
        headers: Sequence[Header],
        *,
        until: dict[str, int] | None = None,
        fresh: bool = True,
    ) -> set[tuple[str, int]]:
        """Apply the notifications as one batch; if that fails, apply its halves, each in a
        savepoint, down to the one event that fails, which each projection applies alone or
        sets aside. The (projection, position) pairs set aside."""
        set_aside: set[tuple[str, int]] = set()
        cur = _driver(conn).cursor()
        apply = functools.partial(self._apply, conn, positions=positions, until=until, fresh=fresh)
        chunks = [list(headers)]  # a stack: the next chunk to apply last
        while chunks:
            chunk = chunks.pop()
            failed = _in_savepoint(cur, functools.partial(apply, behind, headers=chunk))
            if failed is None:
                continue
            if len(chunk) > 1:
                half = len(chunk) // 2
                chunks += [chunk[half:], chunk[:half]]
                continue
            [h] = chunk
            for p in behind:
                error = (
                    failed
                    if len(behind) == 1
                    else _in_savepoint(cur, functools.partial(apply, [p], headers=chunk))
                )
                if error is None:
                    continue
                log.warning("%s set aside the event at %d: %s", p.name, h.id, error)
                dead_letters.set_aside(
                    cur,
                    p.name,
                    position=h.id,
                    nominal_id=h.originator_id,
                    version=h.originator_version,
                    topic=h.topic,
                    error=error,
                )
                set_aside.add((p.name, h.id))
        return set_aside

    def _apply(
        self,
        conn: Connection,
        behind: Sequence[Projection],
        positions: dict[str, int],
        headers: Sequence[Header],
        *,
        until: dict[str, int] | None = None,
        fresh: bool = True,
    ) -> None:
        """Apply the notifications to the projections behind them (and, given `until`, not
        past that position): load, fold, write. `fresh`: a record registered among them after
        every position has no rows yet, and none are loaded for it."""
        cur = _driver(conn).cursor()
        events = self._events(
            cur,
            headers,
            frozenset().union(*(p.decodes for p in behind)),
            envelopes=any(p.envelopes for p in behind),
        )
        new: set[UUID] = set()
        if fresh:
            newest = max(positions[p.name] for p in behind)
            new = {
                e.originator_id
                for h, e in zip(headers, events, strict=True)
                if e.type == "NominalRegistered" and h.id > newest
            }
        touched = {e.originator_id for e in events} - new
        # Only the tables of the projections these events change, and what those read: a
        # batch of posted entries changes one read model, not thirteen tables.
        kinds = {e.type for e in events}
        acting = [p for p in behind if p.acts_on(kinds)]
        tables = list(dict.fromkeys(t for p in acting for t in (*p.tables, *p.reads)))
        batch = Batch(self._columns)
        batch.load(cur, tables, touched)
        # Per event type: (from, to, handler) of each projection behind, in projection order.
        steps: dict[str, list[tuple[int, int, Handler]]] = {}
        for h, event in zip(headers, events, strict=True):
            todo = steps.get(event.type)
            if todo is None:
                todo = steps[event.type] = [
                    (positions[p.name], until[p.name] if until else END, f)
                    for p in behind
                    for f in p.handlers_for(event.type)
                ]
            for at, to, handler in todo:
                if at < h.id <= to:
                    handler(batch, event, h.id)
        batch.flush(cur, tables)

    def _events(
        self,
        cur: Any,
        headers: Sequence[Header],
        decodes: frozenset[str],
        envelopes: bool = False,
    ) -> list[Any]:
        """Domain events, decoded by the library's mapper where a handler reads the payload;
        for the others the header (base.Stored) is enough, and their state is not read,
        unless a projection reads every event's envelope (`envelopes`): then the instant and
        the poster are read from the state, without building the event."""
        kinds = [self._kind(h.topic) for h in headers]
        wanted = [
            h.id for h, kind in zip(headers, kinds, strict=True) if envelopes or kind in decodes
        ]
        states: dict[int, bytes] = {}
        if wanted:
            cur.execute(self._states_sql, [wanted])
            states = {id_: bytes(state) for id_, state in cur.fetchall()}
        out: list[Any] = []
        for h, kind in zip(headers, kinds, strict=True):
            nid = h.originator_id if isinstance(h.originator_id, UUID) else UUID(h.originator_id)
            if kind not in decodes:
                if envelopes:
                    timestamp, recorded_by = self._envelope(states[h.id])
                    out.append(Stored(kind, nid, h.originator_version, timestamp, recorded_by))
                else:
                    out.append(Stored(kind, nid, h.originator_version))
                continue
            event = self.mapper.to_domain_event(
                Notification(
                    id=h.id,
                    originator_id=nid,
                    originator_version=h.originator_version,
                    topic=h.topic,
                    state=states[h.id],
                )
            )
            assert isinstance(event, Nominal.Event)
            out.append(event)
        return out

    def _envelope(self, state: bytes) -> tuple[datetime, dict[str, str]]:
        """An event's instant and poster, from its stored state (as the mapper would read
        it: deciphered, decompressed), with orjson and no event built: about a quarter of a
        full decoding's time."""
        if self.mapper.cipher:
            state = self.mapper.cipher.decrypt(state)
        if self.mapper.compressor:
            state = self.mapper.compressor.decompress(state)
        obj = orjson.loads(state)
        return datetime.fromisoformat(obj["timestamp"]["_data_"]), obj["recorded_by"]

    def _kind(self, topic: str) -> str:
        kind = self._types.get(topic)
        if kind is None:
            kind = self._types[topic] = resolve_topic(topic).__name__
        return kind

    def _next(self, conn: Connection, start: int) -> list[Header]:
        """The next notifications after `start`, stopping before a gap that may still fill."""
        notifications = self._select(conn, start)
        contiguous = _contiguous_prefix(notifications, start)
        if len(contiguous) == len(notifications):
            return notifications
        if self._writer_active(conn):
            return contiguous
        # No writer holds the lock: every id given out so far is committed or never will be.
        return self._select(conn, start)

    def _select(self, conn: Connection, start: int) -> list[Header]:
        """What the recorder's select_notifications gives, less the states, on this
        transaction's connection: a statement of its own in READ COMMITTED sees every
        transaction committed before it, as the recorder's would."""
        with _driver(conn).cursor(row_factory=tuple_row) as cur:
            cur.execute(self._select_sql, [start, self.batch_size])
            return list(map(Header._make, cur.fetchall()))

    def _writer_active(self, conn: Connection) -> bool:
        return bool(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation'"
                    " AND relation = to_regclass(:table) AND mode = 'ExclusiveLock' AND granted)"
                ),
                {"table": EVENTS_TABLE},
            ).scalar()
        )

    def catch_up(
        self,
        *,
        timeout: float = 60.0,
        progress: Callable[[int], None] | None = None,
        target: int | None = None,
    ) -> int:
        """Apply until every projection reaches `target` (the head as it is on entry);
        the number of events read."""
        if target is None:
            target = self.head()
        deadline = time.monotonic() + timeout
        total = 0
        while min((s.position for s in self.status()), default=target) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"projections did not reach position {target} in {timeout} s")
            try:
                done = self.run_once()
            except Busy:
                time.sleep(0.05)
                continue
            total += done
            if progress is not None and done:
                progress(done)
            if not done:
                time.sleep(0.05)
        return total

    def rebuild(
        self,
        progress: Callable[[float], None] | None = None,
        timeout: float = 3600.0,
        *,
        workers: int = 1,
        group_runner: GroupRunner | None = None,
    ) -> int:
        """Empty every read model and apply the whole log again from position 0.

        With `workers` > 1 and a `group_runner`, the projections are applied by that many
        processes side by side (rebuild_groups), each reading the log itself; meanwhile,
        from before the read models are emptied, this process holds the runners' lock, so no
        other runner applies a batch."""
        groups = rebuild_groups(self.projections, workers)
        if group_runner is None or len(groups) < 2:
            with self.engine.begin() as conn:
                self._empty(conn)
            return self.catch_up(timeout=timeout, progress=progress)
        return self._rebuild_in_processes(groups, group_runner, progress, timeout)

    def _empty(self, conn: Connection) -> None:
        """Every read model emptied, its events set aside forgotten and its position set to 0,
        in `conn`'s transaction, under the runners' lock (which a session already holding it
        is granted again)."""
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RUNNER_LOCK})
        tables = [t.name for p in self.projections for t in p.tables]
        conn.execute(text(f"TRUNCATE {', '.join(tables)}"))  # noqa: S608 - our own names
        conn.execute(
            text("DELETE FROM projection_dead_letters WHERE projection = ANY(:names)"),
            {"names": [p.name for p in self.projections]},
        )
        conn.execute(
            text(
                "UPDATE projection_positions SET position = 0, updated_at = now()"
                " WHERE name = ANY(:names)"
            ),
            {"names": [p.name for p in self.projections]},
        )

    def _rebuild_in_processes(
        self,
        groups: list[list[Projection]],
        group_runner: GroupRunner,
        progress: Callable[[float], None] | None,
        timeout: float,
    ) -> int:
        spawn = multiprocessing.get_context("spawn")  # this process has the pool's threads
        reports: multiprocessing.queues.Queue[tuple[int, int | str]] = spawn.Queue()
        read: dict[int, int] = {}
        silent: set[int] = set()  # processes found exited with their last report not yet read
        # The lock is the session's, taken before the read models are emptied: no other
        # runner may apply a batch to them until the processes are done. No transaction
        # stays open meanwhile.
        with self.engine.connect() as held:
            held.execute(text("SELECT pg_advisory_lock(:k)"), {"k": RUNNER_LOCK})
            held.commit()
            processes = []
            try:
                with held.begin():
                    self._empty(held)
                target = self.head()
                processes = [
                    spawn.Process(
                        target=_catch_up_group,
                        args=(group_runner, tuple(p.name for p in group), RUNNER_LOCK + 1 + i),
                        kwargs={
                            "target": target,
                            "timeout": timeout,
                            "reports": reports,
                            "index": i,
                        },
                        name=f"rebuild-{i}",
                    )
                    for i, group in enumerate(groups)
                ]
                for process in processes:
                    process.start()
                while len(read) < len(processes):
                    try:
                        index, report = reports.get(timeout=1.0)
                    except queue.Empty:
                        silent = _exited_early(processes, read, silent)
                        continue
                    if isinstance(report, str):
                        names = ", ".join(p.name for p in groups[index])
                        raise RuntimeError(f"rebuilding {names} failed: {report}")
                    if report < 0:
                        read[index] = -report - 1
                    elif progress is not None:
                        progress(report / len(processes))
            finally:
                for process in processes:
                    if process.is_alive():
                        process.terminate()
                    process.join(timeout=30)
                held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RUNNER_LOCK})
                held.commit()
        return max(read.values())

    # -- what was set aside ----------------------------------------------------------------

    def set_aside(self, limit: int) -> list[dead_letters.DeadLetter]:
        """The first `limit` events this runner's projections set aside, in the log's order."""
        with self.engine.connect() as conn:
            return dead_letters.listed(_driver(conn), [p.name for p in self.projections], limit)

    def retry(self, *, timeout: float = 60.0) -> tuple[int, int]:
        """Apply again the events this runner's projections set aside, each in its place in
        its record's history; (events applied now, events still set aside)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.engine.begin() as conn:
                    return self._retry(conn)
            except Busy:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another runner held the lock for {timeout} s") from None
                time.sleep(0.05)

    def _retry(self, conn: Connection) -> tuple[int, int]:
        """Each record with an event set aside made again, from its first event, by the
        projections that set one aside and those that read their tables (applied out of
        order, an old LevelChanged would overwrite a newer one). Rows and dead letters
        change in one transaction, under the runners' lock; positions do not move."""
        positions = self._lock(conn)
        cur = _driver(conn).cursor()
        held = dead_letters.held(cur, list(positions))
        if not held:
            return 0, 0
        by_record: dict[UUID, set[str]] = {}
        for name, _, nominal_id in held:
            by_record.setdefault(nominal_id, set()).add(name)
        groups: dict[frozenset[str], list[UUID]] = {}
        for nominal_id, names in by_record.items():
            groups.setdefault(self._with_readers(names), []).append(nominal_id)
        still: set[tuple[str, int]] = set()
        for group, records in groups.items():
            replayed = [p for p in self.projections if p.name in group and p.name in positions]
            still |= self._replay(conn, replayed, positions, records)
        applied = {(name, at) for name, at, _ in held} - still
        dead_letters.release(cur, applied)
        return len(applied), len(still)

    def _with_readers(self, names: set[str]) -> frozenset[str]:
        """These projections and, in turn, every projection that reads one of their tables."""
        names = set(names)
        while True:
            owned = {t.name for p in self.projections if p.name in names for t in p.tables}
            readers = {p.name for p in self.projections if any(t.name in owned for t in p.reads)}
            if readers <= names:
                return frozenset(names)
            names |= readers

    def _replay(
        self,
        conn: Connection,
        replayed: Sequence[Projection],
        positions: dict[str, int],
        records: Sequence[UUID],
    ) -> set[tuple[str, int]]:
        """These records' rows of these projections emptied and made again from the records'
        events, each projection up to its own position; what is set aside again."""
        cur = _driver(conn).cursor()
        for table in dict.fromkeys(t for p in replayed for t in p.tables):
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE nominal_id = ANY(%s)").format(
                    sql.Identifier(table.name)
                ),
                [list(records)],
            )
        until = {p.name: positions[p.name] for p in replayed}
        with _driver(conn).cursor(row_factory=tuple_row) as read:
            read.execute(self._records_sql, [list(records), max(until.values())])
            headers = list(map(Header._make, read.fetchall()))
        still: set[tuple[str, int]] = set()
        for i in range(0, len(headers), self.batch_size):
            still |= self._apply_or_set_aside(
                conn,
                replayed,
                dict.fromkeys(until, 0),
                headers[i : i + self.batch_size],
                until=until,
                fresh=False,
            )
        return still

    # -- in the background -----------------------------------------------------------------

    def run_forever(
        self, interval: float = 0.25, settle: float = 0.2, elect_every: float = ELECTION_INTERVAL
    ) -> None:
        """Stand for election every `elect_every` seconds and, while leading, keep the read
        models current, until stop() is called.

        After a batch that was not full the leader waits `settle` seconds, so under a
        steady trickle of posts it applies them some at a time rather than one transaction
        per event (which cost the API process's requests a share of the GIL each)."""
        while not self._stop.is_set():
            try:
                with self.engine.connect() as conn:
                    try:
                        if self._elect(conn):
                            self._lead(conn, interval, settle)
                            self._step_down(conn)
                    except BaseException:
                        self._step_down(conn)  # the lock may be held: never back to the pool
                        raise
            except Exception:  # noqa: BLE001 - the server went away; stand again shortly
                log.exception("projection runner lost its connection; standing for election again")
                self._stop.wait(2.0)
                continue
            self._stop.wait(elect_every)

    def _elect(self, conn: Connection) -> bool:
        """Take the leader's lock on this session if no other runner holds it, and say so in
        projection_leader; whether this runner now leads."""
        for setting, value in LEADER_KEEPALIVE.items():
            conn.execute(text(f"SET {setting} = {int(value)}"))  # our own constants
        won = bool(
            conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar()
        )
        if won:
            conn.execute(
                text(
                    "INSERT INTO projection_leader (holder, backend_pid)"
                    " VALUES (:holder, pg_backend_pid()) ON CONFLICT (id) DO UPDATE"
                    " SET holder = excluded.holder, backend_pid = excluded.backend_pid,"
                    " elected_at = clock_timestamp(), term = projection_leader.term + 1"
                ),
                {"holder": self.name},
            )
            log.info("projection runner %s leads", self.name)
        conn.commit()
        self.leading = won
        return won

    def _lead(self, conn: Connection, interval: float, settle: float) -> None:
        """Apply batches on the leader's session until stop() or the session fails."""
        while not self._stop.is_set():
            try:
                done = self.run_once(conn)
            except Busy:  # a rebuild holds the runners' lock
                done = 0
            except Exception:
                if conn.invalidated or _driver(conn).broken or _driver(conn).closed:
                    raise  # the session, and with it the lock, is gone
                log.exception("projection runner failed; retrying")  # the lag shows on /metrics
                self._stop.wait(2.0)
                continue
            if not done:
                self._stop.wait(interval)
            elif done < self.batch_size:
                self._stop.wait(settle)

    def _step_down(self, conn: Connection) -> None:
        """Leave the lead: the session is closed, not returned to the pool, so the lock
        goes with it whatever state the connection is in."""
        self.leading = False
        conn.invalidate()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="projections", daemon=True)
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask run_forever to return after the current batch (from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.engine.dispose()


def _catch_up_group(
    group_runner: GroupRunner,
    names: tuple[str, ...],
    lock_key: int,
    *,
    target: int,
    timeout: float,
    reports: multiprocessing.queues.Queue[tuple[int, int | str]],
    index: int,
) -> None:
    """A rebuild's worker process: its group caught up to `target`. It reports each batch's
    events read (n > 0), then -(total + 1) when done, or the error's text."""
    try:
        runner = group_runner(names, lock_key)
        try:
            total = runner.catch_up(
                target=target, timeout=timeout, progress=lambda n: reports.put((index, n))
            )
        finally:
            runner.engine.dispose()
        reports.put((index, -total - 1))
    except BaseException as e:  # noqa: BLE001 - the parent names the group and the error
        reports.put((index, f"{type(e).__name__}: {e}"))


def _exited_early(processes: Sequence[Any], done: dict[int, int], seen: set[int]) -> set[int]:
    """The unfinished processes that have exited; an error if one was so a second ago too
    (its last report, sent before it exited, would have arrived by then)."""
    exited = {i for i, p in enumerate(processes) if i not in done and not p.is_alive()}
    for i in exited & seen:
        raise RuntimeError(f"a rebuild process exited ({processes[i].exitcode}) before it finished")
    return exited


def _in_savepoint(cur: psycopg.Cursor[Any], apply: Callable[[], None]) -> str | None:
    """Run `apply` inside a savepoint: None if it succeeded, else its error on one line, its
    writes undone. A failure of the connection or of the server (not of the events) is raised:
    the whole transaction is then tried again later, and nothing is set aside."""
    cur.execute("SAVEPOINT apply")
    try:
        apply()
    except Exception as e:
        if _transient(e) or cur.connection.broken:
            raise
        cur.execute("ROLLBACK TO SAVEPOINT apply")
        cur.execute("RELEASE SAVEPOINT apply")
        return dead_letters.one_line(e)
    cur.execute("RELEASE SAVEPOINT apply")
    return None


def _transient(error: Exception) -> bool:
    """Whether the error is the connection's or the server's, not the events' (no SQLSTATE:
    the connection failed; or a class of TRANSIENT)."""
    if isinstance(error, psycopg.InterfaceError):
        return True
    if not isinstance(error, psycopg.Error):
        return False
    if error.sqlstate is None:
        return isinstance(error, psycopg.OperationalError)
    return error.sqlstate[:2] in TRANSIENT


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under SQLAlchemy's, in the same transaction (for COPY)."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _contiguous_prefix(notifications: Sequence[Any], start: int) -> list[Any]:
    out = []
    expected = start + 1
    for n in notifications:
        if n.id != expected:
            break
        out.append(n)
        expected += 1
    return out
