"""Resource limits at the edge: request body size and a per-client rate limit.

Both are pure ASGI middleware, so they act before FastAPI reads or parses anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import bearer_token, verified
from api.problems import problem
from service.auth import TokenVerifier, Unauthenticated


class _BodyTooLarge(Exception):
    """Raised into the app from `receive` when the streamed body passes the limit."""


class BodySizeLimit:
    """413 for a body over `max_bytes`: by Content-Length up front, else by counting the stream.

    A chunked or lying client is cut off at the first chunk over the limit; whatever the
    app makes of the interrupted body is dropped and the 413 goes out instead.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a cut-off body; ours goes out below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body is over {self.max_bytes} bytes",
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per client key: `rate` requests a second on average, `burst` at once.

    In memory, so each worker process keeps its own buckets: with N workers a client may
    make up to N times the rate (docs/adr/008-resource-limits.md).
    """

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


class RateLimit:
    """429 with Retry-After once a client has used its bucket.

    A client is the verified token's agency and `sub`, or the peer address when the request
    carries no valid token (so bad tokens are throttled too). Health probes are not limited.
    """

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, rate: float, burst: int) -> None:
        self.app = app
        self.verifier = verifier
        self.buckets = TokenBuckets(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/health/"):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(await self._client(scope))
        if wait == 0:
            await self.app(scope, receive, send)
            return
        response = problem(
            429,
            "rate-limited",
            "Too many requests",
            "this client has sent too many requests: wait and retry",
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        await response(scope, receive, send)

    async def _client(self, scope: Scope) -> str:
        token = bearer_token(_header(scope, b"authorization"))
        if token is not None:
            try:
                principal = await verified(self.verifier, token)
            except Unauthenticated:
                pass
            else:
                return f"token:{principal.agency}:{principal.sub}"
        client: Any = scope.get("client")
        return f"peer:{client[0] if client else 'unknown'}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
