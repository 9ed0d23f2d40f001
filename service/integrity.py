"""Was the record altered behind the service's back? The hash chain, recomputed
(docs/design.md#integrity; docs/integrity.md).

Each stored row of a nominal's stream is checked, in version order, against five facts
that the service establishes when it writes and that a direct edit breaks:

1. versions run 1, 2, 3, ... with no gap (a deleted row leaves one);
2. global positions increase along the stream (an event is always stored after its
   predecessor, so a row moved or inserted mid-stream stands out);
3. the event's `prev_hash` is the previous event's `hash` (64 zeros for the first);
4. its `hash` is SHA-256 over `prev_hash` and the canonical JSON of the event as read
   back, with the version of the row it sits in (an edited field changes it);
5. its event_id is indexed at exactly this nominal and version (event_index is written in
   the same transaction as the event; a forged row has no entry there);
6. a snapshot taken at this version (the library's, every 100 events) restores exactly
   the record that folding the events up to here gives (a snapshot is not chained, and
   loading starts from it, so an edited one would change the current view).

And once the stream is read, one fact about the record as a whole:

7. the partner index (`nominal_partners`, which reads of a long history trust, ADR 010)
   names exactly the partners that folding the events gives: a row inserted behind the
   service's back would let a stranger read the record.

The first version where any fails is the answer (for 7, the record's latest version).
Reading is through the library's mapper, so the check covers the plaintext whether or not
payloads are encrypted at rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

from domain.chain import GENESIS_HASH, chain_hash
from domain.nominal import Nominal
from service.store.eventstore import NominalRecorder, Nominals

BATCH = 5_000


@dataclass(frozen=True)
class Verdict:
    """The outcome for one nominal: intact, or the first version that does not match."""

    nominal_id: UUID
    events: int
    first_bad_version: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_version is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "nominal_id": str(self.nominal_id),
            "intact": self.intact,
            "events_checked": self.events,
            "first_bad_version": self.first_bad_version,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Row:
    nominal_id: UUID
    version: int
    position: int
    topic: str
    state: bytes
    indexed_event_id: UUID | None


class ChainCheck:
    """Folds one nominal's rows, in version order, into a Verdict."""

    def __init__(
        self, app: Nominals, nominal_id: UUID, snapshot_versions: frozenset[int] = frozenset()
    ) -> None:
        self._app = app
        self.nominal_id = nominal_id
        self._snapshot_versions = snapshot_versions
        self._folded: Nominal | None = None
        self.expected_version = 1
        self.last_position = 0
        self.last_hash = GENESIS_HASH
        self.bad: tuple[int, str] | None = None

    def feed(self, row: Row) -> None:
        if self.bad is not None:
            return
        self.bad = self._check(row)
        self.expected_version += 1

    def _check(self, row: Row) -> tuple[int, str] | None:
        checked = self._chained(row)
        if isinstance(checked, tuple):
            return checked
        self._folded = checked.mutate(self._folded)  # type: ignore[arg-type]
        if checked.originator_version in self._snapshot_versions:
            return self._check_snapshot(checked.originator_version)
        return None

    def _chained(self, row: Row) -> Nominal.Event | tuple[int, str]:
        """The row's event if it holds its place in the chain (facts 1-5), else the fault."""
        v = self.expected_version
        if row.version != v:
            return v, f"version {v} is missing (the next stored row is version {row.version})"
        if row.position <= self.last_position:
            return v, "stored out of order (its position is before its predecessor's)"
        self.last_position = row.position
        try:
            event = self._app.mapper.to_domain_event(
                StoredEvent(
                    originator_id=row.nominal_id,
                    originator_version=row.version,
                    topic=row.topic,
                    state=row.state,
                )
            )
        except Exception as e:  # noqa: BLE001 - an unreadable row is a broken row
            return v, f"the stored event cannot be read ({type(e).__name__})"
        if not isinstance(event, Nominal.Event):
            return v, "the stored event is not an event of a nominal"
        if event.prev_hash != self.last_hash:
            return v, "prev_hash does not match the previous event's hash"
        envelope = event.envelope()
        claimed = envelope.pop("hash")
        if chain_hash(self.last_hash, envelope) != claimed:
            return v, "the hash does not match the event's content"
        if row.indexed_event_id is None or str(row.indexed_event_id) != event.event_id:
            return v, "the event is not in the event index at this version"
        self.last_hash = claimed
        return event

    def _check_snapshot(self, v: int) -> tuple[int, str] | None:
        snapshots = self._app.snapshots
        assert snapshots is not None and self._folded is not None
        try:
            (snapshot,) = snapshots.get(self.nominal_id, gt=v - 1, lte=v)
            restored = snapshot.mutate(None)  # type: ignore[attr-defined]
            matches = isinstance(restored, Nominal) and _same(restored, self._folded)
        except Exception:  # noqa: BLE001 - an unreadable snapshot is a broken one
            matches = False
        if not matches:
            return v, f"the snapshot at version {v} does not match the events up to it"
        return None

    def verdict(
        self, indexed_head: int = 0, indexed_partners: frozenset[str] = frozenset()
    ) -> Verdict:
        """The outcome, given the highest version event_index holds for this nominal and
        the partners `nominal_partners` names (none: a record written before the index,
        whose reads rebuild it, ADR 010)."""
        checked = self.expected_version - 1
        if self.bad is not None:
            return Verdict(self.nominal_id, checked, *self.bad)
        if indexed_head > checked:
            # Rows removed from the end leave no gap in the stream, but the index remembers.
            return Verdict(
                self.nominal_id,
                checked,
                checked + 1,
                f"version {checked + 1} is missing (the event index goes up to {indexed_head})",
            )
        if indexed_partners:
            wrong = _partner_index_fault(self._folded, indexed_partners)
            if wrong is not None:
                return Verdict(self.nominal_id, checked, max(checked, 1), wrong)
        return Verdict(self.nominal_id, checked)


def _same(restored: Nominal, folded: Nominal) -> bool:
    """Whether a snapshot holds the record its events fold to. One taken before the areas'
    history was kept, of a record that had moved, cannot know that history (the record is
    read from its events instead, Nominal.upcast_v1_v2): everything else must match."""
    mine, theirs = restored.view(), folded.view()
    if restored.__dict__.get("area_history_partial"):
        mine.pop("area_history")
        theirs.pop("area_history")
    return mine == theirs


def _partner_index_fault(folded: Nominal | None, indexed: frozenset[str]) -> str | None:
    """What the partner index says that the events do not, or None when the two agree."""
    partners = frozenset(folded.partners) if folded is not None else frozenset()
    if extra := sorted(indexed - partners):
        return f"the partner index names {', '.join(extra)}, which the events do not partner"
    if missing := sorted(partners - indexed):
        return f"the partner index lacks {', '.join(missing)}, a partner by the events"
    return None


def _table(app: Nominals) -> Any:
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    return SQL("{}.{}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )


_ROWS = """
    SELECT e.originator_id, e.originator_version, e.notification_id, e.topic, e.state,
           i.event_id AS indexed_event_id
    FROM {} e
    LEFT JOIN event_index i
      ON i.nominal_id = e.originator_id AND i.version = e.originator_version
"""


def _row(r: dict[str, Any]) -> Row:
    return Row(
        nominal_id=r["originator_id"],
        version=r["originator_version"],
        position=r["notification_id"],
        topic=r["topic"],
        state=bytes(r["state"]),
        indexed_event_id=r["indexed_event_id"],
    )


def verify_nominal(app: Nominals, nominal_id: UUID) -> Verdict:
    """Recompute one nominal's chain; the first version that does not match, if any."""
    statement = SQL(
        _ROWS + " WHERE e.originator_id = %s AND e.originator_version > %s"
        " ORDER BY e.originator_version LIMIT %s"
    ).format(_table(app))
    check = ChainCheck(app, nominal_id, snapshot_versions(app, nominal_id))
    after = 0
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    while check.bad is None:
        with datastore.transaction(commit=False) as curs:
            curs.execute(statement, (nominal_id, after, BATCH))
            rows = curs.fetchall()
        for r in rows:
            check.feed(_row(r))
        if len(rows) < BATCH:
            break
        after = rows[-1]["originator_version"]
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT coalesce(max(version), 0) AS head FROM event_index WHERE nominal_id = %s",
            (nominal_id,),
        )
        head = curs.fetchone()
        curs.execute("SELECT agency FROM nominal_partners WHERE nominal_id = %s", (nominal_id,))
        partners = frozenset(r["agency"] for r in curs.fetchall())
    return check.verdict(int(head["head"]) if head else 0, partners)


def _snapshot_table(app: Nominals) -> Any:
    assert app.snapshots is not None
    recorder = app.snapshots.recorder
    return SQL("{}.{}").format(
        Identifier(recorder.datastore.schema),  # type: ignore[attr-defined]
        Identifier(recorder.events_table_name),  # type: ignore[attr-defined]
    )


def snapshot_versions(app: Nominals, nominal_id: UUID) -> frozenset[int]:
    """The versions at which the library snapshotted this nominal."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL("SELECT originator_version FROM {} WHERE originator_id = %s").format(
                _snapshot_table(app)
            ),
            (nominal_id,),
        )
        return frozenset(r["originator_version"] for r in curs.fetchall())


def all_snapshot_versions(app: Nominals) -> dict[UUID, frozenset[int]]:
    """The snapshotted versions of every nominal that has any."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    found: dict[UUID, set[int]] = {}
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL("SELECT originator_id, originator_version FROM {}").format(_snapshot_table(app))
        )
        for r in curs.fetchall():
            found.setdefault(r["originator_id"], set()).add(r["originator_version"])
    return {k: frozenset(v) for k, v in found.items()}


def indexed_heads(app: Nominals) -> dict[UUID, int]:
    """The highest indexed version of every nominal."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        curs.execute("SELECT nominal_id, max(version) AS head FROM event_index GROUP BY nominal_id")
        return {r["nominal_id"]: int(r["head"]) for r in curs.fetchall()}


def indexed_partners(app: Nominals) -> dict[UUID, frozenset[str]]:
    """Every nominal's partners as the partner index names them."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT nominal_id, array_agg(agency) AS agencies"
            " FROM nominal_partners GROUP BY nominal_id"
        )
        return {r["nominal_id"]: frozenset(r["agencies"]) for r in curs.fetchall()}


def stream_all_rows(app: Nominals, batch: int = BATCH) -> Iterator[Row]:
    """Every stored row, by nominal then version, through a server-side cursor."""
    statement = SQL(_ROWS + " ORDER BY e.originator_id, e.originator_version").format(_table(app))
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    with (
        datastore.get_connection() as conn,
        conn.transaction(),
        conn.cursor(name="verify_all") as curs,
    ):
        curs.itersize = batch
        curs.execute(statement)
        for r in curs:
            yield _row(r)


def count_events(app: Nominals) -> int:
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as curs:
        curs.execute(SQL("SELECT count(*) AS n FROM {}").format(_table(app)))
        row = curs.fetchone()
    return int(row["n"]) if row else 0


def verify_rows(
    app: Nominals,
    rows: Iterable[Row],
    heads: dict[UUID, int],
    on_row: Callable[[], None] | None = None,
    snapshots: dict[UUID, frozenset[int]] | None = None,
    partners: dict[UUID, frozenset[str]] | None = None,
) -> Iterator[Verdict]:
    """Verdicts for rows grouped by nominal and ordered by version, one per nominal;
    then one for each nominal indexed (events or partners) with no row left at all."""
    check: ChainCheck | None = None
    seen: set[UUID] = set()
    for row in rows:
        if check is None or row.nominal_id != check.nominal_id:
            if check is not None:
                yield check.verdict(heads.get(check.nominal_id, 0), _of(partners, check))
            check = ChainCheck(
                app, row.nominal_id, (snapshots or {}).get(row.nominal_id, frozenset())
            )
            seen.add(row.nominal_id)
        check.feed(row)
        if on_row is not None:
            on_row()
    if check is not None:
        yield check.verdict(heads.get(check.nominal_id, 0), _of(partners, check))
    for nominal_id in sorted((set(heads) | set(partners or {})) - seen):
        yield ChainCheck(app, nominal_id).verdict(
            heads.get(nominal_id, 0), (partners or {}).get(nominal_id, frozenset())
        )


def _of(partners: dict[UUID, frozenset[str]] | None, check: ChainCheck) -> frozenset[str]:
    return (partners or {}).get(check.nominal_id, frozenset())


@dataclass(frozen=True)
class Summary:
    nominals: int
    events: int
    broken: list[Verdict]

    @property
    def intact(self) -> bool:
        return not self.broken


def verify_all(app: Nominals, *, progress: bool = False) -> Summary:
    """Recompute every nominal's chain; the broken ones with their first bad version."""
    nominals = events = 0
    broken: list[Verdict] = []

    def tally(verdicts: Iterable[Verdict]) -> None:
        nonlocal nominals, events
        for verdict in verdicts:
            nominals += 1
            events += verdict.events
            if not verdict.intact:
                broken.append(verdict)

    if not progress:
        tally(
            verify_rows(
                app,
                stream_all_rows(app),
                indexed_heads(app),
                snapshots=all_snapshot_versions(app),
                partners=indexed_partners(app),
            )
        )
        return Summary(nominals, events, broken)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    total = count_events(app)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "{task.fields[rate]} events/s",
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task("verifying", total=total, rate="-")
        seen = 0

        def advance() -> None:
            nonlocal seen
            seen += 1
            if seen % 2_000 == 0:
                elapsed = bar.tasks[task].elapsed or 0
                rate = f"{seen / elapsed:,.0f}" if elapsed else "-"
                bar.update(task, completed=seen, rate=rate)

        tally(
            verify_rows(
                app,
                stream_all_rows(app),
                indexed_heads(app),
                on_row=advance,
                snapshots=all_snapshot_versions(app),
                partners=indexed_partners(app),
            )
        )
        bar.update(task, completed=seen)
    return Summary(nominals, events, broken)
