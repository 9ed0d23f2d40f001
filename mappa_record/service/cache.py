"""Recently used records, kept in memory per process so a request need not rebuild them.

An entry is a record's state pickled at a version. It is never changed in place, so a thread
taking a copy can never see another thread's half-applied change, and unpickling the bytes
is the copy each request mutates. Readers, which change nothing, share one unpickled copy
per entry (`shared`), so a read costs no copy at all. Whether an entry is current is checked
by whoever uses it (docs/adr/011-record-cache.md): reads bring it up to date with the events
stored since its version; posts decide on it as it is and rely on the store, which refuses
an event whose version is already taken.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from uuid import UUID

from mappa_record.domain.nominal import Nominal


class _Entry:
    __slots__ = ("shared", "state", "version", "view")

    def __init__(self, version: int, state: bytes) -> None:
        self.version = version
        self.state = state  # the record pickled
        self.shared: Nominal | None = None  # unpickled once, for readers
        self.view: bytes | None = None  # its view as JSON, rendered once, for readers


class RecordCache:
    """A bounded, least-recently-used map of nominal id -> the record pickled at a version."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[UUID, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, nominal_id: UUID) -> Nominal | None:
        """A private copy of the cached record, or None: the caller may change it."""
        entry = self._entry(nominal_id)
        return None if entry is None else _unpickled(entry.state)

    def shared(self, nominal_id: UUID) -> Nominal | None:
        """The cached record as every reader sees it, or None: nothing may change it."""
        entry = self._entry(nominal_id)
        if entry is None:
            return None
        nominal = entry.shared
        if nominal is None:  # two readers may both unpickle it; either copy will do
            nominal = entry.shared = _unpickled(entry.state)
        return nominal

    def rendered(self, nominal: Nominal, render: Callable[[Nominal], bytes]) -> bytes:
        """`render(nominal)`, kept with the entry of the same version for the next reader."""
        with self._lock:
            entry = self._entries.get(nominal.id)
        if entry is None or entry.version != nominal.version:
            return render(nominal)
        view = entry.view
        if view is None:  # two readers may both render it; either will do
            view = entry.view = render(nominal)
        return view

    def _entry(self, nominal_id: UUID) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(nominal_id)
            if entry is not None:
                self._entries.move_to_end(nominal_id)
            return entry

    def put(self, nominal: Nominal) -> None:
        """Keep this state of the record, unless a later one is kept already."""
        if self.maxsize <= 0:
            return
        if nominal.pending_events:
            raise ValueError("only a record with nothing pending (stored or loaded) is cached")
        state = pickle.dumps(nominal, pickle.HIGHEST_PROTOCOL)
        with self._lock:
            kept = self._entries.get(nominal.id)
            if kept is not None and kept.version > nominal.version:
                return
            self._entries[nominal.id] = _Entry(nominal.version, state)
            self._entries.move_to_end(nominal.id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


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
