"""FastAPI dependencies: the application objects and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.auth import Principal, TokenVerifier, Unauthenticated
from service.payloads import StorableText
from service.reading import Reading
from service.records import Records

# The dependencies are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
# a hop that cost more than the work itself on every request.


async def get_records(request: Request) -> Records:
    records: Records = request.app.state.records
    return records


async def get_reading(request: Request) -> Reading:
    reading: Reading = request.app.state.reading
    return reading


class BearerAuth(HTTPBearer):
    """The caller named by a valid bearer token; 401 for anything else.

    One dependency that is also FastAPI's security scheme, so /openapi.json says which
    routes want a token: a plain function depending on `HTTPBearer()` made FastAPI solve two
    dependencies on every request, which cost about 4 % of a post's CPU time."""

    def __init__(self) -> None:
        super().__init__(scheme_name="HTTPBearer", auto_error=False)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        # Verified already, before the body was read (api/limits.py, Authenticate).
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is not None:
            return principal
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("no bearer token")
        principal = await verified(request.app.state.verifier, token)
        request.state.principal = principal
        return principal


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def verified(verifier: TokenVerifier, token: str) -> Principal:
    """The token's principal: remembered at once, else verified in the thread pool (an
    unknown kid may fetch the JWKS over the network); `Unauthenticated` for any fault."""
    principal = verifier.remembered(token)
    if principal is None:
        principal = await run_in_threadpool(verifier.verify, token)
    return principal


RecordsDep = Annotated[Records, Depends(get_records)]
ReadingDep = Annotated[Reading, Depends(get_reading)]
PrincipalDep = Annotated[Principal, Depends(BearerAuth())]
# A plain header parameter, not a dependency: each dependency FastAPI solves costs CPU on
# every request. Routes give it the default None. It is written to the consultation log, so
# it is held to the text the database can store (a 422 naming header.Justification).
JustificationHeader = Annotated[StorableText | None, Header(alias="Justification", max_length=1000)]
