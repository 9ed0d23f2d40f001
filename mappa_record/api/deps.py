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
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.remembered(credentials.credentials)
    if principal is None:
        # In the thread pool: an unknown kid may fetch the JWKS over the network.
        principal = await run_in_threadpool(verifier.verify, credentials.credentials)
    request.state.principal = principal
    return principal


async def justification(
    value: Annotated[str | None, Header(alias="Justification", max_length=1000)] = None,
) -> str | None:
    return value


RecordsDep = Annotated[Records, Depends(get_records)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
JustificationDep = Annotated[str | None, Depends(justification)]
