"""The event store: the eventsourcing library's PostgreSQL recorder, and what we add to it.

`NominalRecorder` is the library's application recorder with one addition: rows of our own
index tables (event ids for idempotency, identifiers for uniqueness, their releases, the
partners) are inserted in the same transaction as the stored events, after the recorder's
table lock and its insert, so an event and its index rows are committed together or not at
all. Called with no extra rows it behaves exactly as the library's recorder (its own test
cases run against it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.nominal import Nominal
from service.runtime.database import CONNINFO
from service.runtime.settings import SettingsError
from service.store.transcoder import EventJSONTranscoder

EVENTS_TABLE = "nominals_events"


@dataclass(frozen=True)
class IndexedEvent:
    """The row of event_index that makes posting idempotent."""

    event_id: UUID
    nominal_id: UUID
    version: int
    request_digest: str
    agency: str


@dataclass(frozen=True)
class IdentifierClaim:
    kind: str
    value: str
    nominal_id: UUID


@dataclass(frozen=True)
class IdentifierRelease:
    """A corrected-away identifier, released by the event that corrected it (docs/adr/019)."""

    kind: str
    value: str
    nominal_id: UUID
    event_id: UUID


def identifier_rows(
    nominals: Sequence[Nominal],
) -> tuple[list[IdentifierRelease], list[IdentifierClaim]]:
    """The identifier rows the nominals' pending events imply: what each releases, what each
    claims. Per record, what one pending event claims and a later one releases is neither
    (it was never stored as held), and what one releases and a later one claims again is
    still held; so the releases are of identifiers held before these events, and are written
    first: another record's claim in the same transaction may then take what they free."""
    releases: list[IdentifierRelease] = []
    claims: list[IdentifierClaim] = []
    for n in nominals:
        net: dict[tuple[str, str], UUID | None] = {}  # None: claimed; an event id: released
        for e in n.pending_events:
            assert isinstance(e, Nominal.Event)
            for kind, value, released in _identifier_changes(e):
                key = (kind, value)
                if key in net and (net[key] is None) != (released is None):
                    del net[key]  # claimed then released, or released then claimed again
                else:
                    net[key] = released
        for (kind, value), released in net.items():
            if released is None:
                claims.append(IdentifierClaim(kind, value, n.id))
            else:
                releases.append(IdentifierRelease(kind, value, n.id, released))
    return releases, claims


def _identifier_changes(e: Nominal.Event) -> list[tuple[str, str, UUID | None]]:
    """(kind, value, the releasing event's id or None for a claim), in the event's order."""
    p = e.payload
    if e.type == "NominalRegistered":
        return [(kind, value, None) for kind, value in p["identifiers"].items()]
    if e.type == "IdentifierAdded":
        return [(p["kind"], p["value"], None)]
    if e.type == "IdentifierCorrected":
        return [(p["kind"], p["from"], UUID(e.event_id)), (p["kind"], p["to"], None)]
    return []


@dataclass(frozen=True)
class PartnerSet:
    """A record's current partners, after the events being stored."""

    nominal_id: UUID
    agencies: frozenset[str]


PARTNERING_EVENTS = frozenset(
    {"NominalRegistered", "AgencyPartnered", "PartneringEnded", "AreaTransferAccepted"}
)


def partner_sets(nominals: Sequence[Nominal]) -> list[PartnerSet]:
    """The partner rows to write for nominals whose pending events change partnering."""
    return [
        PartnerSet(n.id, frozenset(n.partners))
        for n in nominals
        if any(type(e).__name__ in PARTNERING_EVENTS for e in n.pending_events)
    ]


class NominalRecorder(PostgresApplicationRecorder):
    """The library's recorder, writing our index rows in the same transaction."""

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Runs inside the recorder's transaction, after its table lock and the stored-event
        # insert (so a stream conflict has already been raised). Every writer holds that one
        # lock before touching the index tables, so no two can wait on each other.
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        indexed: Sequence[IndexedEvent] = kwargs.get("indexed_events", ())
        releases: Sequence[IdentifierRelease] = kwargs.get("identifier_releases", ())
        claims: Sequence[IdentifierClaim] = kwargs.get("identifier_claims", ())
        partners: Sequence[PartnerSet] = kwargs.get("partner_sets", ())
        if indexed or releases or claims or partners:
            # A nested pipeline block syncs on exit, so a unique violation is raised here, as
            # the library's IntegrityError, and not later as an aborted pipeline.
            with curs.connection.pipeline():
                if indexed:
                    curs.executemany(
                        "INSERT INTO event_index"
                        " (event_id, nominal_id, version, request_digest, agency)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        [
                            (e.event_id, e.nominal_id, e.version, e.request_digest, e.agency)
                            for e in indexed
                        ],
                    )
                if releases:
                    # After the event index (a release names its event), before the claims.
                    curs.executemany(
                        "INSERT INTO identifier_releases (kind, value, nominal_id, event_id)"
                        " VALUES (%s, %s, %s, %s)",
                        [(r.kind, r.value, r.nominal_id, r.event_id) for r in releases],
                    )
                if claims:
                    curs.executemany(
                        "INSERT INTO nominal_identifiers (kind, value, nominal_id)"
                        " VALUES (%s, %s, %s)",
                        [(c.kind, c.value, c.nominal_id) for c in claims],
                    )
                if partners:
                    curs.execute(
                        "DELETE FROM nominal_partners WHERE nominal_id = ANY(%s)",
                        ([p.nominal_id for p in partners],),
                    )
                    curs.executemany(
                        "INSERT INTO nominal_partners (nominal_id, agency) VALUES (%s, %s)",
                        [(p.nominal_id, agency) for p in partners for agency in p.agencies],
                    )
        return notification_ids


class NominalsFactory(PostgresFactory):
    """The library's PostgreSQL factory, connecting with the whole DATABASE_URL and with a
    `statement_timeout` on every pooled connection.

    The library's datastore connects with five parts of the URL (database, host, port, user,
    password) and drops the rest: `sslmode`, `sslrootcert`, `target_session_attrs`,
    keepalives... So its pool is given the URL itself (`CONNINFO`, before the pool first
    opens), and the parts are taken out of its arguments, where they would override it.

    The timeout travels in libpq's `options` of this pool's connections only, after any
    options the URL has, so it bounds the service's statements without touching the role,
    the database, or any other client of the server.
    """

    STATEMENT_TIMEOUT_MS = "POSTGRES_STATEMENT_TIMEOUT_MS"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        kwargs = pool.kwargs
        assert isinstance(kwargs, dict)
        conninfo = self.env.get(CONNINFO) or ""
        if conninfo:
            pool.conninfo = conninfo
            for part in ("dbname", "host", "port", "user", "password"):
                kwargs.pop(part, None)
        options = [str(conninfo_to_dict(conninfo).get("options", ""))]
        timeout_ms = int(self.env.get(self.STATEMENT_TIMEOUT_MS) or 0)
        if timeout_ms > 0:
            options.append(f"-c statement_timeout={timeout_ms}")
        if " ".join(options).strip():
            kwargs["options"] = " ".join(options).strip()


def replayed(nominal: Nominal | None, events: Iterable[Any]) -> Nominal | None:
    """The nominal with `events` (a snapshot first, perhaps) applied in turn, as the library's
    `project_aggregate`, without its question of every event whether it implements
    `CanMutateProtocol`: a runtime protocol check, 27 µs an event on Python 3.11, was a
    third of the CPU of rebuilding a record (ADR 011)."""
    for event in events:
        nominal = event.mutate(nominal)
    return nominal


class Nominals(Application[UUID]):
    """The event-sourced application that holds every nominal's stream."""

    name = "nominals"
    snapshotting_intervals = {Nominal: 100}  # noqa: RUF012 - the library's class attribute
    snapshotting_projectors = {Nominal: replayed}  # noqa: RUF012 - the library's, too

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON, written and read faster for events (service/store/transcoder.py)."""
        transcoder = EventJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder


def detached_mapper(env: Mapping[str, str]) -> Mapper[UUID]:
    """The mapper an application built from `env` has, without its database.

    The library builds it from the same settings (transcoder, cipher, compressor), so events
    it maps are stored exactly as the application would store them; for processes that only
    turn events into rows (the import's builders)."""
    settings = {k: v for k, v in env.items() if not k.endswith("PERSISTENCE_MODULE")}
    return Nominals(env=settings | {"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def act_as(app: Nominals, role: str | None) -> None:
    """Make every connection of the event store's pool act as `role` (docs/adr/004).

    Passed as a libpq start-up option, so it holds from the first statement of every
    connection; the pool opened its first connections when the application was built, so
    they are replaced."""
    if not role:
        return
    pool = app.recorder.datastore.pool  # type: ignore[attr-defined]
    # Keep what the factory set (the URL's options, statement_timeout) and add the role.
    options = f"{pool.kwargs.get('options', '')} -c role={role}".strip()
    trial = pool.kwargs | {"options": options}
    if "connect_timeout" not in conninfo_to_dict(pool.conninfo):
        trial["connect_timeout"] = 10
    try:
        with psycopg.connect(pool.conninfo, **trial):
            pass
    except psycopg.Error as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SettingsError(
            f"MAPPA_DB_ROLE: cannot act as the role {role!r} ({first}); run `mappa-record "
            "migrate` as the database owner, or set MAPPA_DB_ROLE= to use the URL's user as is"
        ) from None
    pool.wait(timeout=30)  # no connection still being opened with the old arguments
    pool.kwargs["options"] = options
    pool.drain()


def store_env(
    base: dict[str, str],
    *,
    pool_size: int,
    cipher_key: str | None,
    statement_timeout_ms: int = 0,
) -> dict[str, str]:
    """The library's environment for our recorder on the given database."""
    env = dict(base)
    env.update(
        {
            "PERSISTENCE_MODULE": f"{__name__}:{NominalsFactory.__qualname__}",
            NominalsFactory.STATEMENT_TIMEOUT_MS: str(statement_timeout_ms),
            "APPLICATION_RECORDER_TOPIC": (
                f"{NominalRecorder.__module__}:{NominalRecorder.__qualname__}"
            ),
            "CREATE_TABLE": "no",  # `migrate` creates the tables; the service never alters them
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": "0",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            "ORIGINATOR_ID_TYPE": "uuid",
        }
    )

    if cipher_key:
        # AES-GCM from `cryptography` (ADR 023): the same nonce, tag and ciphertext layout as
        # the pycryptodome cipher that wrote the records before, so both read each other's.
        env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
        env["CIPHER_KEY"] = cipher_key
    return env


@functools.cache
def _rendered(template: str, schema: str, table: str) -> str:
    # Rendered once: psycopg would otherwise compose and quote it again on every execute,
    # which cost about a third of a short query's client time.
    return SQL(template).format(Identifier(schema), Identifier(table)).as_string(None)


_STREAM = (
    "SELECT originator_id, originator_version, topic, state, notification_id FROM {}.{}"
    " WHERE originator_id = %s AND originator_version > %s AND originator_version <= %s"
    " ORDER BY originator_version LIMIT %s"
)
_NEWER = (
    "SELECT w.n, e.originator_id, e.originator_version, e.topic, e.state"
    " FROM unnest(%s::uuid[], %s::bigint[]) WITH ORDINALITY AS w(id, after, n)"
    " JOIN {}.{} e ON e.originator_id = w.id AND e.originator_version > w.after"
    " ORDER BY w.n, e.originator_version"
)
_MOVED_ON = (
    "SELECT w.n FROM unnest(%s::uuid[], %s::bigint[]) WITH ORDINALITY AS w(id, seen, n)"
    " WHERE EXISTS (SELECT FROM {}.{} e"
    " WHERE e.originator_id = w.id AND e.originator_version > w.seen)"
)


def read_stream(
    app: Nominals,
    nominal_id: UUID,
    *,
    after_version: int = 0,
    up_to_version: int | None = None,
    limit: int | None = None,
    batch: int = 500,
) -> Iterator[tuple[int, Nominal.Event]]:
    """A nominal's events in order with their global position, read in bounded batches."""
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    statement = _rendered(_STREAM, recorder.datastore.schema, recorder.events_table_name)
    remaining = limit
    last = after_version
    ceiling = up_to_version if up_to_version is not None else 2**62
    while remaining is None or remaining > 0:
        size = batch if remaining is None else min(batch, remaining)
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (nominal_id, last, ceiling, size))
            rows = curs.fetchall()
        for row in rows:
            yield row["notification_id"], _event_of(app, row)
        if len(rows) < size:
            return
        last = rows[-1]["originator_version"]
        if remaining is not None:
            remaining -= len(rows)


def read_newer(app: Nominals, wanted: Sequence[tuple[UUID, int]]) -> list[list[Nominal.Event]]:
    """For each (nominal, version held), the nominal's events after that version, in order:
    one query for them all. The same nominal may be asked for twice."""
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    statement = _rendered(_NEWER, recorder.datastore.schema, recorder.events_table_name)
    newer: list[list[Nominal.Event]] = [[] for _ in wanted]
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, ([w[0] for w in wanted], [w[1] for w in wanted]))
        rows = curs.fetchall()
    for row in rows:
        newer[row["n"] - 1].append(_event_of(app, row))
    return newer


_INDEXED = (
    "SELECT w.n, i.request_digest, e.notification_id, e.originator_id, e.originator_version,"
    " e.topic, e.state"
    " FROM unnest(%s::uuid[]) WITH ORDINALITY AS w(event_id, n)"
    " JOIN event_index i ON i.event_id = w.event_id"
    " JOIN {}.{} e ON e.originator_id = i.nominal_id AND e.originator_version = i.version"
)


@dataclass(frozen=True)
class Indexed:
    """A stored event found by its event_id, with the digest of the request that stored it."""

    request_digest: str
    position: int
    event: Nominal.Event


def read_indexed(app: Nominals, event_ids: Sequence[UUID]) -> list[Indexed | None]:
    """For each event_id, the event stored under it (None if none): one query for them all."""
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    statement = _rendered(_INDEXED, recorder.datastore.schema, recorder.events_table_name)
    found: list[Indexed | None] = [None] * len(event_ids)
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (list(event_ids),))
        rows = curs.fetchall()
    for row in rows:
        found[row["n"] - 1] = Indexed(
            row["request_digest"], row["notification_id"], _event_of(app, row)
        )
    return found


def moved_on(app: Nominals, curs: Cursor[DictRow], seen: Sequence[tuple[UUID, int]]) -> list[bool]:
    """For each (nominal, version seen), whether the store holds a later version: one query,
    in the caller's transaction."""
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    statement = _rendered(_MOVED_ON, recorder.datastore.schema, recorder.events_table_name)
    curs.execute(statement, ([s[0] for s in seen], [s[1] for s in seen]))
    later = {row["n"] - 1 for row in curs.fetchall()}
    return [i in later for i in range(len(seen))]


def _event_of(app: Nominals, row: DictRow) -> Nominal.Event:
    """A row of the events table as the domain event the application's mapper makes of it."""
    stored = StoredEvent(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
    event = app.mapper.to_domain_event(stored)
    assert isinstance(event, Nominal.Event)
    return event


# Rows for `bulk_append`, in their tables' column order. Plain tuples: an import builds
# them in other processes, and tuples of strings and bytes cost little to send back.
EventRow = tuple[str, int, str, bytes]  # originator_id, originator_version, topic, state
IndexRow = tuple[str, str, int, str, str]  # event_id, nominal_id, version, request_digest, agency
ClaimRow = tuple[str, str, str]  # kind, value, nominal_id


def event_row(stored: StoredEvent) -> EventRow:
    """A stored event (as the application's mapper made it) as a row of the events table."""
    return (str(stored.originator_id), stored.originator_version, stored.topic, stored.state)


def bulk_append(
    app: Nominals,
    events: Sequence[EventRow],
    indexed: Sequence[IndexRow],
    claims: Sequence[ClaimRow],
    partners: Sequence[PartnerSet] = (),
) -> None:
    """Store many new events, with their index rows, in one transaction by COPY.

    For bulk import: the events as the application's mapper made them (`app.mapper`, or
    `detached_mapper` in another process) and the same index rows `NominalRecorder` writes,
    under the same table lock (so positions are still handed out in commit order and the
    feed sees no gap filled later), but sent as COPY streams rather than one array
    parameter, which psycopg's pipeline mode cannot send past a few hundred events (it
    stalls). A unique violation (an event id, a version or an identifier already stored)
    rolls everything back as IntegrityError.
    """
    recorder = app.recorder
    assert isinstance(recorder, NominalRecorder)
    table = SQL("{}.{}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        columns = "originator_id, originator_version, topic, state"
        with curs.copy(SQL("COPY {} ({}) FROM STDIN").format(table, SQL(columns))) as copy:
            for row in events:
                copy.write_row(row)
        with curs.copy(
            "COPY event_index (event_id, nominal_id, version, request_digest, agency) FROM STDIN"
        ) as copy:
            for index_row in indexed:
                copy.write_row(index_row)
        if claims:
            with curs.copy("COPY nominal_identifiers (kind, value, nominal_id) FROM STDIN") as copy:
                for claim_row in claims:
                    copy.write_row(claim_row)
        if partners:
            curs.execute(
                "DELETE FROM nominal_partners WHERE nominal_id = ANY(%s)",
                ([p.nominal_id for p in partners],),
            )
            with curs.copy("COPY nominal_partners (nominal_id, agency) FROM STDIN") as copy:
                for p in partners:
                    for agency in p.agencies:
                        copy.write_row((p.nominal_id, agency))
        curs.execute(SQL("NOTIFY {}").format(Identifier(recorder.channel_name)))
