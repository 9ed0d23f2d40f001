"""The edge: a per-client rate limit, the bearer token, the request body's size.

Each is pure ASGI middleware, so it acts before FastAPI reads or parses anything; in that
order (app.py), so an unauthenticated request is refused before its body is read.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import bearer_token, verified
from api.problems import problem, unauthenticated
from service.auth import Principal, TokenVerifier, Unauthenticated
from service.rate_limits import SharedBuckets, TokenBuckets

__all__ = ["Authenticate", "BodySizeLimit", "RateLimit", "TokenBuckets"]

log = logging.getLogger(__name__)

# A JSON body's limit. The largest payloads the schemas allow fit with room to spare even
# with every character written as a \uXXXX escape, as json.dumps writes by default: an
# entry's body of 20,000 characters outside the Basic Multilingual Plane is 240 kB on the
# wire, a registration with 50 aliases of ten given names, every name at its 200
# characters of an accented letter, about 700 kB. docs/adr/008.
MAX_JSON_BYTES = 1024 * 1024
# The one route that takes a file: the minutes upload, up to MAPPA_MAX_BODY_BYTES.
UPLOAD_PATHS = re.compile(r"/v1/nominals/[^/]+/minutes")
# Every route under it wants a bearer token (docs/design.md#authentication-and-access).
AUTHENTICATED_PREFIX = "/v1/"


class _BodyTooLarge(Exception):
    """Raised into the app from `receive` when the streamed body passes the limit."""


class BodySizeLimit:
    """413 for a body over its route's limit: by Content-Length up front, else by counting
    the stream. The minutes upload may send `upload_bytes`; any other route the smaller of
    that and `json_bytes`.

    A chunked or lying client is cut off at the first chunk over the limit; whatever the
    app makes of the interrupted body is dropped and the 413 goes out instead.
    """

    def __init__(self, app: ASGIApp, upload_bytes: int, json_bytes: int = MAX_JSON_BYTES) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.json_bytes = min(json_bytes, upload_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if UPLOAD_PATHS.fullmatch(scope["path"]) else self.json_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
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
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413,
            "payload-too-large",
            "Payload too large",
            f"the request body is over {limit} bytes",
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class Authenticate:
    """401 for a request under /v1/ without a valid bearer token, before its body is read.

    FastAPI reads and parses a route's body before it solves the route's dependencies, the
    token among them: a 20 MiB body without a token was read and parsed only to be refused
    (issue 16). Here the token is verified from the headers alone, and the principal left
    in the request's state for the route's dependency (api/deps.py, BearerAuth). A refused
    request that announced a body is answered with `Connection: close`, so the server does
    not read the body to find the next request on the connection.
    """

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(AUTHENTICATED_PREFIX):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if state.get("principal") is None:  # the rate limit may have verified it already
            try:
                state["principal"] = await _principal(self.verifier, scope)
            except Unauthenticated as e:
                response = unauthenticated(e)
                if _has_body(scope):
                    response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _principal(verifier: TokenVerifier, scope: Scope) -> Principal:
    token = bearer_token(_header(scope, b"authorization"))
    if token is None:
        raise Unauthenticated("no bearer token")
    return await verified(verifier, token)


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or length not in (None, "0")


class RateLimit:
    """429 with Retry-After once a client has used its bucket.

    A client is the verified token's agency and `sub` (an officer), or the peer address when
    the request carries no valid token (so bad tokens are throttled too). An officer's
    bucket is shared by every API process through PostgreSQL when `shared` is given
    (service/rate_limits.py, docs/adr/025); an address's stays in this process, so a flood of
    bad tokens costs the database nothing. Health probes are not limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        rate: float,
        burst: int,
        shared: SharedBuckets | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.buckets = TokenBuckets(rate, burst)
        self.shared = shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/health/"):
            await self.app(scope, receive, send)
            return
        wait = await self._take(await self._client(scope))
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

    async def _take(self, key: str) -> float:
        if self.shared is None or not key.startswith("token:"):
            return self.buckets.take(key)
        if self.shared.take_held(key):
            return 0.0
        return await run_in_threadpool(self.shared.take, key)

    async def _client(self, scope: Scope) -> str:
        try:
            principal = await _principal(self.verifier, scope)
        except Unauthenticated:
            pass
        else:
            scope.setdefault("state", {})["principal"] = principal  # for Authenticate
            return f"token:{principal.agency}:{principal.sub}"
        client: Any = scope.get("client")
        return f"peer:{client[0] if client else 'unknown'}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
