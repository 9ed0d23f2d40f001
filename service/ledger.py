"""The records this process holds: what posting and reading share.

One `Ledger` per process, built at start-up: the event store, the records kept in memory
and the locks on them, the group committers, the consultation log, the clock, and the
threads for work that cannot run on the event loop. `Records` (posting and registering,
service/records.py) and `Reading` (views, look-up, history, service/reading.py) are both
built on it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.nominal import Nominal
from service.auth import Principal
from service.consultation import RESTRICTED_READ, Consultation, ConsultationLog
from service.runtime.database import Database
from service.runtime.settings import Settings, SettingsError
from service.store.cache import RecordCache, RecordLocks
from service.store.committer import Batched, GroupCommitter
from service.store.eventstore import (
    Nominals,
    act_as,
    moved_on,
    read_indexed,
    read_newer,
    replayed,
    store_env,
)

R = TypeVar("R")

# Threads for what a request cannot do on the event loop: rebuild a record, wait its turn.
BLOCKING_THREADS = 40


class Ledger:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        env = store_env(
            db.eventsourcing_env(),
            pool_size=settings.pool_size,
            cipher_key=settings.cipher_key,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
        self.app = Nominals(env=env)
        act_as(self.app, settings.db_role)
        self.datastore = self.app.recorder.datastore  # type: ignore[attr-defined]
        self.consultations = ConsultationLog(self.datastore, functools.partial(moved_on, self.app))
        self.committer = GroupCommitter(self.app)
        # A cached record is brought up to date before it is read: the reads waiting ask the
        # store together, in one query (docs/adr/011).
        self.catch_up = Batched("catch-up", functools.partial(read_newer, self.app), max_batch=128)
        # A retried post is answered from the event index, the retries waiting asked together.
        self.replays = Batched("replays", functools.partial(read_indexed, self.app), max_batch=128)
        self.cache = RecordCache(settings.aggregate_cache, settings.aggregate_cache_mb * 2**20)
        self.locks = RecordLocks()
        self._clock = clock
        self._blocking = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="records")

    def close(self) -> None:
        self._blocking.shutdown(cancel_futures=True)  # what runs there may still need a save
        self.committer.close()
        self.catch_up.close()
        self.replays.close()
        self.consultations.close()
        self.app.close()

    def check_cipher(self) -> None:
        """Refuse to start when the configured key cannot read what is stored."""
        notifications = self.app.recorder.select_notifications(start=None, limit=1)
        if not notifications:
            return
        try:
            self.app.mapper.to_domain_event(notifications[0])
        except Exception:  # noqa: BLE001 - any failure to decode means the wrong key
            raise SettingsError(
                "MAPPA_CIPHER_KEY: the stored events cannot be read with this key "
                "(wrong key, or a key set or unset since they were written)"
            ) from None

    def now(self) -> datetime:
        return self._clock()

    async def in_thread(self, work: Callable[..., R], *args: Any) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._blocking, functools.partial(work, *args))

    def load(
        self,
        nominal_id: UUID,
        version: int | None = None,
        *,
        current: bool = True,
        read_only: bool = False,
    ) -> Nominal | None:
        """The record at `version`, or as it stands now; None if there is no such record.

        A record in the cache is brought up to date with the events stored since its
        version (one query, asked together with other reads), unless `current` is False:
        then it is as this process last saw it, for a post that lets the store refuse it if
        the record has moved on. The caller owns what it is given and puts it back in the
        cache once it has stored what it changed, unless it only reads (`read_only`): then
        it is given the copy every reader shares, and must not change it."""
        if version is not None:
            return self.rebuild(nominal_id, version)
        if read_only:
            return self._shared(nominal_id)
        nominal = self.cache.take(nominal_id)
        if nominal is None:
            return self.rebuild(nominal_id, None)
        if current:
            nominal = caught_up(nominal, self.catch_up.ask((nominal_id, nominal.version)))
        return nominal

    def _shared(self, nominal_id: UUID) -> Nominal | None:
        """The record as every reader shares it, brought up to date on a copy of its own."""
        nominal = self.cache.shared(nominal_id)
        if nominal is not None:
            newer = self.catch_up.ask((nominal_id, nominal.version))
            if not newer:
                return nominal
            nominal = self.cache.take(nominal_id)
            if nominal is not None:
                nominal = caught_up(nominal, newer)
        if nominal is None:
            nominal = self.rebuild(nominal_id, None)
        if nominal is not None:
            self.cache.put(nominal, shared=True)
        return nominal

    def rebuild(self, nominal_id: UUID, version: int | None) -> Nominal | None:
        """The record folded from the store (its latest snapshot first), now or at a version."""
        try:
            nominal: object = self.app.repository.get(
                nominal_id, version=version, projector_func=replayed
            )
        except AggregateNotFoundError:
            return None
        assert isinstance(nominal, Nominal)
        if nominal.__dict__.get("area_history_partial"):
            # From a snapshot taken before the areas' history was kept, of a record that had
            # moved: folded from its events instead (Nominal.upcast_v1_v2).
            folded = replayed(None, self.app.events.get(nominal_id, lte=version))
            assert isinstance(folded, Nominal)
            return folded
        return nominal

    def holder(self, kind: str, value: str) -> UUID | None:
        """The nominal holding a normalised identifier, for the service's own use (no read)."""
        with self.datastore.transaction() as curs:
            curs.execute(_HOLDER, (kind, value))
            row = curs.fetchone()
        return row["nominal_id"] if row else None

    def partners(self, nominal_id: UUID) -> frozenset[str] | None:
        """A record's current partners from the partner index; None with no rows."""
        with self.datastore.transaction() as curs:
            curs.execute("SELECT agency FROM nominal_partners WHERE nominal_id = %s", (nominal_id,))
            rows = curs.fetchall()
        return frozenset(row["agency"] for row in rows) if rows else None

    def log(
        self,
        principal: Principal,
        nominal_id: UUID,
        route: str,
        action: str,
        outcome: str,
        justification: str | None,
        entries: Sequence[str] = (),
    ) -> None:
        """One row of the consultation log (and one per restricted entry read whole),
        committed before this returns."""
        self.consultations.append(
            Consultation(
                principal, nominal_id, route, action, outcome, justification, entries=tuple(entries)
            )
        )

    def log_restricted_reads(
        self,
        principal: Principal,
        nominal_id: UUID,
        route: str,
        justification: str | None,
        entries: Sequence[str],
    ) -> None:
        """A row of the consultation log per restricted entry a read showed whole, for a read
        logged already (a page read after its right to read was decided)."""
        self.consultations.append(
            Consultation(
                principal,
                nominal_id,
                route,
                RESTRICTED_READ,
                "allowed",
                justification,
                entries=tuple(entries),
            )
        )


# The claim of an identifier not released (migration 0010: at most one; docs/adr/019).
_HOLDER = (
    "SELECT i.nominal_id FROM nominal_identifiers i WHERE i.kind = %s AND i.value = %s"
    " AND NOT EXISTS (SELECT FROM identifier_releases r"
    " WHERE r.kind = i.kind AND r.value = i.value AND r.claim_no = i.claim_no)"
)


def caught_up(nominal: Nominal, newer: Sequence[Nominal.Event]) -> Nominal:
    """The record with those of `newer` it lacks applied (a copy taken since the question
    may already hold some)."""
    lacking = [e for e in newer if e.originator_version > nominal.version]
    if not lacking:
        return nominal
    result = replayed(nominal, lacking)
    assert isinstance(result, Nominal)
    return result
