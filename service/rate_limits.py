"""How many requests a client may make now: token buckets, in this process or shared by every
API process through PostgreSQL (docs/design.md#beyond-one-machine;
docs/adr/025, which amends docs/adr/008).

An officer's bucket (the token's agency and subject) is kept in the database
(`rate_limit_take`, migration 0020: the generic cell rate algorithm on the server's clock), so
two processes, or twenty on five hosts, together allow what one would. Not every request pays
a round trip for it: a process draws up to `chunk` requests at once (a tenth of a second's
rate, at most a tenth of the burst) and spends them here, for at most HOLD seconds; what it
has not spent by then is dropped, not saved up. A client can therefore pass the limit by at
most a chunk per process it reaches in any one HOLD, and is never refused while its bucket
has room except for what another process drew and has not spent. At the default 500 a
second a chunk is 50; with a rate under 10 a second it is 1, and the limit is exact.

While the database cannot be asked (a failover, a pool exhausted for PROBE seconds), each
process falls back to a bucket of its own with the same rate and burst, and asks again a
second later: requests are limited per process, not refused for want of a database, and the
log says so once a minute.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per client key in this process: `rate` requests a second on average,
    `burst` at once."""

    MAX_KEYS = 10_000

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds until it would."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: drop those to bound memory.
        for key in [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]:
            del self._buckets[key]


class SharedBuckets:
    """Token buckets kept in PostgreSQL, drawn on a chunk at a time (see the module)."""

    HOLD = 1.0  # seconds a process may keep requests it drew before they are dropped
    PROBE = 1.0  # seconds to wait for a pooled connection before falling back
    RETRY = 1.0  # seconds after a failure before the database is asked again
    MAX_KEYS = 10_000

    def __init__(
        self,
        pool: Any,
        rate: float,
        burst: int,
        *,
        chunk: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool  # psycopg_pool's: the event store's, acting as the service's role
        self.rate = rate
        self.burst = burst
        self.chunk = chunk or max(1, min(burst // 10, math.ceil(rate / 10)))
        self._clock = clock
        self._held: dict[str, tuple[int, float]] = {}  # key -> (requests drawn, when)
        self._lock = threading.Lock()
        self._fallback = TokenBuckets(rate, burst, clock)
        self._warned = -math.inf
        self._down_until = -math.inf

    def take_held(self, key: str) -> bool:
        """Spend one of the requests this process drew for `key`, if it holds one still
        fresh (no I/O: for the event loop)."""
        with self._lock:
            held = self._held.get(key)
            if held is None or held[0] < 1 or self._clock() - held[1] >= self.HOLD:
                return False
            self._held[key] = (held[0] - 1, held[1])
            return True

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds until it would (blocking: asks the
        database when nothing fresh is held)."""
        if self.take_held(key):
            return 0.0
        now = self._clock()
        if now < self._down_until:
            return self._fallback.take(key)
        try:
            with self._pool.connection(timeout=self.PROBE) as conn:
                row = conn.execute(
                    "SELECT rate_limit_take(%s, %s, %s, %s) AS answer",
                    (key, self.chunk, self.rate, self.burst),
                ).fetchone()
        except psycopg.Error as e:  # psycopg_pool's PoolTimeout is one too
            return self._alone(key, e)
        answer = float(row["answer"] if isinstance(row, dict) else row[0])
        if answer < 1:
            return -answer
        with self._lock:
            if len(self._held) >= self.MAX_KEYS:
                self._held = {k: v for k, v in self._held.items() if now - v[1] < self.HOLD}
            self._held[key] = (int(answer) - 1, now)
        return 0.0

    def _alone(self, key: str, error: Exception) -> float:
        """The database cannot be asked: this process's own bucket decides, for this request
        and those of the next RETRY seconds, which do not wait for the pool."""
        now = self._clock()
        self._down_until = now + self.RETRY
        if now - self._warned > 60:
            self._warned = now
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            log.warning(
                "rate limits held per process while the database cannot be asked: %s", first
            )
        return self._fallback.take(key)
