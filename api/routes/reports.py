"""The reports of docs/design.md#api: MAPPA's gaps, from the read models, as JSON or CSV.

Reports carry no names or identifiers of people: record ids, areas, agencies, dates and
levels only. They read the read models, which may lag the event store by the runner's
lag (see /metrics). Every report takes `as_of` (the figures as they stood at the end of that
day, from the facts recorded by then) and `by=quarter&quarters=N` (a series: the report at
the end of each quarter); docs/adr/025.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from api.deps import PrincipalDep
from api.problems import ReportTimedOut
from domain.agencies import parse_agency
from domain.calendar import end_of_london_day, london_date, quarters_to
from domain.errors import InvalidValue
from domain.mappa import parse_area, parse_category, parse_level
from projections import (
    actions,
    attendance,
    disclosure_coverage,
    due_soon,
    late_minutes,
    level_profile,
    minutes_outstanding,
    outcomes,
    partnering_audit,
    plans_out_of_date,
    pre_release,
    profile,
    recording_activity,
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
DEFAULT_QUARTERS = 8
MAX_QUARTERS = 40  # ten years
SERIES_CONNECTIONS = 4  # a series' quarters asked at once, each on a connection of its own
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
    category: int | None = None,
    as_of: Annotated[
        date | None,
        Query(description="the figures as they stood at the end of this day (London)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Filters:
    return Filters(
        today=as_of or london_date(datetime.now(UTC)),
        cutoff=end_of_london_day(as_of) if as_of is not None else None,
        area=parse_area(area) if area is not None else None,
        agency=parse_agency(agency) if agency is not None else None,
        level=int(parse_level(level)) if level is not None else None,
        category=int(parse_category(category)) if category is not None else None,
        date_from=from_,
        date_to=to,
        limit=limit,
        offset=offset,
    )


FiltersDep = Annotated[Filters, Depends(filters)]


def series(
    by: Annotated[
        Literal["quarter"] | None,
        Query(description="quarter: a series of the figures at the end of each quarter"),
    ] = None,
    quarters: Annotated[
        int | None, Query(ge=1, le=MAX_QUARTERS, description="how many quarters (default 8)")
    ] = None,
) -> int | None:
    """How many quarters a series asks for, or None for the figures of one day."""
    if by is None:
        if quarters is not None:
            raise InvalidValue("quarters is given with by=quarter", field="quarters")
        return None
    return quarters or DEFAULT_QUARTERS


SeriesDep = Annotated[int | None, Depends(series)]


def due_soon_filters(
    f: FiltersDep,
    within_days: Annotated[
        int, Query(ge=0, le=due_soon.MAX_DAYS, description="days from today (or as_of)")
    ] = 28,
) -> Filters:
    return replace(f, within_days=within_days)


async def _one(request: Request, f: Filters, query: Query_) -> dict[str, Any]:
    async with reports_engine(request).connect() as conn:
        return await query(conn, f)


async def _series(
    request: Request, f: Filters, query: Query_, quarters: int, windowed: bool
) -> dict[str, Any]:
    """The report at the end of each of the last `quarters` quarters (the last one: as of
    `f.today`), each as it stood then; a windowed report's dates kept to each quarter."""
    gate = asyncio.Semaphore(SERIES_CONNECTIONS)

    async def point(first: date, last: date) -> dict[str, Any]:
        day = min(last, f.today)
        at = replace(f, today=day, cutoff=end_of_london_day(day), limit=0, offset=0)
        if windowed:
            at = replace(
                at,
                date_from=max(first, f.date_from or first),
                date_to=min(last, f.date_to or last),
            )
        async with gate:
            body = await _one(request, at, query)
        head = {
            "quarter": f"{first.year}-Q{(first.month - 1) // 3 + 1}",
            "from": first.isoformat(),
            "to": last.isoformat(),
            "as_of": day.isoformat(),
            "complete": day == last,
        }
        return head | {k: v for k, v in body.items() if k != "rows"}

    points = await asyncio.gather(*(point(*q) for q in quarters_to(f.today, quarters)))
    return {"by": "quarter", "quarters": quarters, "series": list(points)}


async def _answer(
    request: Request,
    principal: Any,
    f: Filters,
    query: Query_,
    name: str,
    quarters: int | None = None,
    windowed: bool = False,
) -> Any:
    require_scope(principal, "reports:read")
    try:
        if quarters is None:
            body = await _one(request, f, query)
        else:
            body = await _series(request, f, query, quarters, windowed)
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) != QUERY_CANCELED:
            raise
        seconds = request.app.state.service.settings.statement_timeout_ms / 1000
        raise ReportTimedOut(
            f"the report took longer than {seconds:g} s and was stopped: narrow its filters "
            "(area, agency, level, dates), or try again later"
        ) from None
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            to_csv(csv_rows(body)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    # The values are JSON-ready already (projections.base.plain): skip FastAPI's encoder.
    return JSONResponse(body)


def csv_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What a report's CSV lists: its rows (or cells), or for a series one line a quarter,
    the summary's figures as columns."""
    if "series" in body:
        return [
            {k: v for k, v in point.items() if k != "summary"} | point.get("summary", {})
            for point in body["series"]
        ]
    return body.get("rows", body.get("cells", []))


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


def _route(
    path: str,
    query: Query_,
    doc: str,
    *,
    windowed: bool = False,
    filtered_by: Any = filters,
) -> None:
    """A report route: the filters, `as_of` and `by=quarter`. `windowed`: the report's dates
    (`from`, `to`) select the facts of a period, so each quarter of a series is kept to its
    own; otherwise each quarter is the report as it stood at the quarter's end."""
    name = path.strip("/")

    async def report(
        request: Request,
        principal: PrincipalDep,
        quarters: SeriesDep,
        f: Filters = Depends(filtered_by),  # noqa: B008 - the dependency differs per route
    ) -> Any:
        return await _answer(request, principal, f, query, name, quarters, windowed)

    report.__doc__ = doc
    router.add_api_route(path, report, methods=["GET"], name=name.replace("-", "_"), summary=doc)


_route(
    "/late-minutes",
    late_minutes.report,
    "Minutes posted against their due date (10 working days, 5 at level 3), and those missing.",
    windowed=True,
)
_route(
    "/minutes-outstanding",
    minutes_outstanding.report,
    "Meetings past their minutes' due date with no minutes uploaded.",
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
_route(
    "/due-soon",
    due_soon.report,
    "Reviews, minutes, actions and referral decisions falling due within N days.",
    filtered_by=due_soon_filters,
)
_route(
    "/actions-outstanding",
    actions.report,
    "Actions not yet completed, those overdue, and completion on time per agency.",
    windowed=True,
)
_route(
    "/disclosure-coverage",
    disclosure_coverage.report,
    "Meetings with and without a disclosure decision.",
    windowed=True,
)
_route(
    "/attendance",
    attendance.report,
    "Per agency: required, invited, attended, apologies, absent, required but not invited.",
    windowed=True,
)
_route(
    "/registration-timeliness",
    registration_timeliness.report,
    "Registrations against the three days from sentence.",
    windowed=True,
)
_route(
    "/referrals",
    referrals.report,
    "Referrals answered within ten days; from custody six months before release.",
    windowed=True,
)
_route(
    "/pre-release",
    pre_release.report,
    "People in custody near release without a referral, a level decision or a partnered prison.",
)
_route(
    "/recording-activity",
    recording_activity.report,
    "Responsible Authority partners who posted nothing on a record in 12 months.",
)
_route(
    "/plans-out-of-date",
    plans_out_of_date.report,
    "Risk management plans older than the last meeting, level change or new restriction.",
)
_route(
    "/outcomes",
    outcomes.report,
    "Breaches, recalls, further and serious further offences by area, category and level.",
    windowed=True,
)
_route("/level-profile", level_profile.report, "Active records by MAPPA category and level.")
_route(
    "/profile",
    profile.report,
    "Active records by gender, age band and ethnicity; counts under 5 hidden.",
)
