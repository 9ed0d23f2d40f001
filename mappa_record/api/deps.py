"""FastAPI dependencies: the application objects and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from mappa_record.service.auth import Principal, TokenVerifier, Unauthenticated
from mappa_record.service.records import Records

_bearer = HTTPBearer(auto_error=False)


# The dependencies are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
# a hop that cost more than the work itself on every request.


async def get_records(request: Request) -> Records:
    records: Records = request.app.state.records
    return records


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller named by a valid bearer token; 401 for anything else."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("no bearer token")
    principal = await verified(request.app.state.verifier, credentials.credentials)
    request.state.principal = principal
    return principal


async def verified(verifier: TokenVerifier, token: str) -> Principal:
    """The token's principal: remembered at once, else verified in the thread pool (an
    unknown kid may fetch the JWKS over the network); `Unauthenticated` for any fault."""
    principal = verifier.remembered(token)
    if principal is None:
        principal = await run_in_threadpool(verifier.verify, token)
    return principal


async def justification(
    value: Annotated[str | None, Header(alias="Justification", max_length=1000)] = None,
) -> str | None:
    return value


RecordsDep = Annotated[Records, Depends(get_records)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
JustificationDep = Annotated[str | None, Depends(justification)]
