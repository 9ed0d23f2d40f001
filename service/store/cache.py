"""Recently used records, kept in memory per process so a request need not rebuild them.

Each entry is one version of a record, held in up to three forms (docs/adr/011-record-cache.md):
- `live`: the record itself, for the next writer. `take` hands it over, so one caller at a
  time owns it and may change it; a post that stores its event puts the record back, so a
  run of posts to one record copies nothing.
- `shared`: the copy every reader is given, which nothing may change. The first reader of a
  version turns `live` into it, so a version is copied at most once for the readers.
- `state`: the record pickled, from which a writer takes a private copy when the readers
  hold the record.
Whether an entry is current is checked by whoever uses it: reads bring it up to date with
the events stored since its version; posts decide on it as it is and rely on the store,
which refuses an event whose version is already taken.

The cache is bounded in records and in bytes. A record's bytes are estimated from its
pickled size (a record in memory takes about LIVE_PER_PICKLED times that: measured 3.0-4.5
on the bench's histories), measured when it is first kept and again whenever it has grown by
a quarter since, and scaled by its events in between; so a run of posts pickles a record a
handful of times in its life, not once a post.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from uuid import UUID

from domain.nominal import Nominal

VIEWS_PER_VERSION = 4  # rendered views kept per version: most records have only one
LIVE_PER_PICKLED = 4  # a record's bytes in memory per byte of its pickle (upper end measured)
REMEASURE_GROWTH = 1.25  # a record is pickled again to weigh it once it has grown this much


class _Entry:
    __slots__ = ("live", "measured", "shared", "state", "version", "view", "weight")

    def __init__(self, version: int, weight: int, measured: tuple[int, int]) -> None:
        self.version = version
        self.weight = weight  # its estimated bytes in memory
        self.measured = measured  # (version, bytes) when it was last weighed by pickling
        self.live: Nominal | None = None  # owned by the cache until a writer takes it
        self.shared: Nominal | None = None  # the readers' copy: never changed
        self.state: bytes | None = None  # pickled, for writers when the readers hold it
        # Its view as JSON, rendered once per kind of reader (the day its orders are for, the
        # restricted entries hidden from the reader), for the readers.
        self.view: dict[Hashable, bytes] = {}


class RecordCache:
    """A least-recently-used map of nominal id -> one version of the record, bounded in
    records (`maxsize`) and in estimated bytes (`max_bytes`)."""

    def __init__(self, maxsize: int, max_bytes: int = 256 * 2**20) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.bytes = 0  # the estimated bytes of every record kept
        self._entries: OrderedDict[UUID, _Entry] = OrderedDict()
        # How records a writer took whole were last weighed, for when they are put back.
        self._taken: OrderedDict[UUID, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, nominal_id: UUID) -> Nominal | None:
        """The cached record for the caller to change, or None: no one else has it."""
        with self._lock:
            entry = self._used(nominal_id)
            if entry is None:
                return None
            nominal, entry.live = entry.live, None
            if nominal is not None:
                if entry.shared is None and entry.state is None:
                    self._drop(nominal_id)  # nothing left to read from
                    self._taken[nominal_id] = entry.measured
                    while len(self._taken) > self.maxsize:
                        self._taken.popitem(last=False)
                return nominal
            state, shared = entry.state, entry.shared
        if state is None:
            assert shared is not None
            state = entry.state = pickle.dumps(shared, pickle.HIGHEST_PROTOCOL)
        return _unpickled(state)

    def shared(self, nominal_id: UUID) -> Nominal | None:
        """The cached record as every reader sees it, or None: nothing may change it."""
        with self._lock:
            entry = self._used(nominal_id)
            if entry is None:
                return None
            if entry.shared is None and entry.live is not None:
                entry.shared, entry.live = entry.live, None  # no writer has it: the readers' now
            nominal, state = entry.shared, entry.state
        if nominal is None:  # two readers may both unpickle it; either copy will do
            assert state is not None
            nominal = entry.shared = _unpickled(state)
        return nominal

    def holds_event(self, nominal_id: UUID, event_id: str) -> bool:
        """Whether the cached record already holds an event of this id (a retried post):
        asked without handing the record to anyone."""
        with self._lock:
            entry = self._entries.get(nominal_id)
            nominal = entry.live or entry.shared if entry is not None else None
            return nominal is not None and event_id in nominal.event_log

    def _used(self, nominal_id: UUID) -> _Entry | None:
        """The record's entry, now the most recently used; the caller holds the lock."""
        entry = self._entries.get(nominal_id)
        if entry is not None:
            self._entries.move_to_end(nominal_id)
        return entry

    def rendered(
        self, nominal: Nominal, render: Callable[[Nominal], bytes], key: Hashable = None
    ) -> bytes:
        """`render(nominal)`, kept with the entry of the same version for the next reader
        whose view has the same `key` (the day, the entries hidden from the reader)."""
        with self._lock:
            entry = self._entries.get(nominal.id)
        if entry is None or entry.version != nominal.version:
            return render(nominal)
        view = entry.view.get(key)
        if view is None:  # two readers may both render it; either will do
            view = render(nominal)
            if len(entry.view) >= VIEWS_PER_VERSION:
                entry.view.clear()
            entry.view[key] = view
        return view

    def put(self, nominal: Nominal, *, shared: bool = False) -> None:
        """Keep this version of the record, unless a later one is kept already.

        The cache owns it from now on: the caller must not change it. It goes to the next
        writer that takes it, or, if `shared`, to the readers (a writer then takes a copy)."""
        if self.maxsize <= 0:
            return
        if nominal.pending_events:
            raise ValueError("only a record with nothing pending (stored or loaded) is cached")
        with self._lock:
            kept = self._entries.get(nominal.id)
            measured = kept.measured if kept is not None else self._taken.pop(nominal.id, None)
        weight, measured = _weighed(nominal, measured)
        if weight > self.max_bytes:
            return
        entry = _Entry(nominal.version, weight, measured)
        if shared:
            entry.shared = nominal
        else:
            entry.live = nominal
        with self._lock:
            kept = self._entries.get(nominal.id)
            if kept is not None and kept.version > nominal.version:
                return
            self._drop(nominal.id)
            self._entries[nominal.id] = entry
            self.bytes += weight
            while len(self._entries) > self.maxsize or self.bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, nominal_id: UUID) -> None:
        """Forget the record's entry, if any; the caller holds the lock."""
        entry = self._entries.pop(nominal_id, None)
        if entry is not None:
            self.bytes -= entry.weight

    def __len__(self) -> int:
        return len(self._entries)


def _weighed(nominal: Nominal, measured: tuple[int, int] | None) -> tuple[int, tuple[int, int]]:
    """The record's estimated bytes in memory, and the (version, bytes) it was last weighed
    at: pickled again unless it has grown by less than a quarter since it last was."""
    if measured is None or nominal.version >= measured[0] * REMEASURE_GROWTH:
        pickled = len(pickle.dumps(nominal, pickle.HIGHEST_PROTOCOL))
        measured = (nominal.version, pickled * LIVE_PER_PICKLED)
    version, size = measured
    return size * nominal.version // max(version, 1), measured


def _unpickled(state: bytes) -> Nominal:
    nominal = pickle.loads(state)  # noqa: S301 - bytes this process pickled
    assert isinstance(nominal, Nominal)
    return nominal


class RecordLocks:
    """One lock per record in use: this process's posts to one record take turns.

    Without it, posts racing for one record's next version would each decide, and all but
    one be refused by the store and retried; the fastest could win again and again (a post
    could lose every one of its attempts). Posts from other processes still race, and the
    store still refuses the loser."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[UUID, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, nominal_id: UUID, timeout: float) -> Iterator[bool]:
        """Hold the record's lock; yields False if it could not be had within `timeout`."""
        with self._guard:
            lock, users = self._held.get(nominal_id, (threading.Lock(), 0))
            self._held[nominal_id] = (lock, users + 1)
        acquired = lock.acquire(timeout=timeout)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
            with self._guard:
                lock, users = self._held[nominal_id]
                if users == 1:
                    del self._held[nominal_id]
                else:
                    self._held[nominal_id] = (lock, users - 1)
