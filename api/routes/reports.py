"""The reports of docs/design.md#api: MAPPA's gaps, from the read models, as JSON or CSV.

Reports carry no names or identifiers of people: record ids, areas, agencies, dates and
levels only. They read the read models, which may lag the event store by the runner's
lag (see /metrics).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from api.deps import PrincipalDep
from api.problems import ReportTimedOut
from domain.agencies import parse_agency
from domain.calendar import london_date
from domain.mappa import parse_area, parse_level
from projections import (
    actions,
    attendance,
    disclosure_coverage,
    late_minutes,
    level_profile,
    partnering_audit,
    referrals,
    registration_timeliness,
    review_schedule,
)
from projections.base import Filters
from service.access import require_scope
from service.runtime.database import Database

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Query_ = Callable[[AsyncConnection, Filters], Awaitable[dict[str, Any]]]
MAX_ROWS = 100_000
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement stopped by its timeout


def reports_engine(request: Request) -> AsyncEngine:
    """The read side's asyncpg engine, made on first use and disposed at shutdown."""
    engine: AsyncEngine | None = getattr(request.app.state, "reports_engine", None)
    if engine is None:
        service = request.app.state.service
        engine = reports_engine_for(service.db, service.settings.statement_timeout_ms)
        request.app.state.reports_engine = engine
    return engine


def reports_engine_for(db: Database, statement_timeout_ms: int | None = None) -> AsyncEngine:
    """An asyncpg engine on the database, DATABASE_URL honoured whole (docs/adr/017)."""
    arguments = db.asyncpg_arguments()
    # Filters are written "(:p IS NULL OR col = :p)": plan them with their values, never
    # as a generic plan that must serve both branches.
    ours = {"plan_cache_mode": "force_custom_plan"}
    if statement_timeout_ms:
        # A report never holds a worker and a connection longer than a post may.
        ours["statement_timeout"] = str(statement_timeout_ms)
    arguments["server_settings"] = arguments.get("server_settings", {}) | ours
    # Everything travels in the arguments: the URL names the dialect only.
    return create_async_engine(
        URL.create("postgresql+asyncpg"), pool_size=5, max_overflow=5, connect_args=arguments
    )


def filters(
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    area: str | None = None,
    agency: str | None = None,
    level: int | None = None,
    as_of: Annotated[date | None, Query(description="today, for overdue rules")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Filters:
    return Filters(
        today=as_of or london_date(datetime.now(UTC)),
        area=parse_area(area) if area is not None else None,
        agency=parse_agency(agency) if agency is not None else None,
        level=int(parse_level(level)) if level is not None else None,
        date_from=from_,
        date_to=to,
        limit=limit,
        offset=offset,
    )


FiltersDep = Annotated[Filters, Depends(filters)]


async def _answer(request: Request, principal: Any, f: Filters, query: Query_, name: str) -> Any:
    require_scope(principal, "reports:read")
    try:
        async with reports_engine(request).connect() as conn:
            body = await query(conn, f)
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) != QUERY_CANCELED:
            raise
        seconds = request.app.state.service.settings.statement_timeout_ms / 1000
        raise ReportTimedOut(
            f"the report took longer than {seconds:g} s and was stopped: narrow its filters "
            "(area, agency, level, dates), or try again later"
        ) from None
    if "text/csv" in request.headers.get("accept", ""):
        rows = body.get("rows", body.get("cells", []))
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    # The values are JSON-ready already (projections.base.plain): skip FastAPI's encoder.
    return JSONResponse(body)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV with a header; nested values as JSON text."""
    out = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
        )
    return out.getvalue()


def _route(path: str, query: Query_, doc: str) -> None:
    name = path.strip("/")

    async def report(request: Request, principal: PrincipalDep, f: FiltersDep) -> Any:
        return await _answer(request, principal, f, query, name)

    report.__doc__ = doc
    router.add_api_route(path, report, methods=["GET"], name=name.replace("-", "_"), summary=doc)


_route(
    "/late-minutes",
    late_minutes.report,
    "Minutes posted against their due date (10 working days, 5 at level 3).",
)
_route(
    "/partnering-audit",
    partnering_audit.report,
    "Current and past partners per record, and the partnering gaps.",
)
_route(
    "/reviews-overdue",
    review_schedule.report,
    "Records whose level 2/3 meeting or level 1 review is overdue.",
)
_route("/actions-outstanding", actions.report, "Actions not yet completed, and those overdue.")
_route(
    "/disclosure-coverage",
    disclosure_coverage.report,
    "Meetings with and without a disclosure decision.",
)
_route("/attendance", attendance.report, "Per agency: invited, attended, apologies, absent.")
_route(
    "/registration-timeliness",
    registration_timeliness.report,
    "Registrations against the three days from sentence.",
)
_route(
    "/referrals",
    referrals.report,
    "Referrals answered within ten days; from custody six months before release.",
)
_route("/level-profile", level_profile.report, "Active records by MAPPA category and level.")
