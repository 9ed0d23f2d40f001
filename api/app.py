"""The FastAPI application: built once per process around one started service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api import problems
from api.limits import Authenticate, BodySizeLimit, RateLimit
from api.routes import audit, batches, feed, inbound, minutes, nominals, reports
from api.routes import log as transparency_log
from projections.metrics import projection_metrics, read_side
from projections.runner import ProjectionRunner, candidate_name
from service.bootstrap import Service
from service.rate_limits import SharedBuckets

log = logging.getLogger(__name__)


async def _issue_checkpoints(service: Service) -> None:
    """Sign a checkpoint every MAPPA_CHECKPOINT_SECONDS while the log grows (docs/adr/020);
    the processes of a deployment take turns, and only one signs each size."""
    while True:
        await asyncio.sleep(service.settings.checkpoint_seconds)
        try:
            await run_in_threadpool(service.transparency.checkpoint)
        except Exception:  # noqa: BLE001 - logged; the next turn tries again
            log.exception("could not issue a checkpoint")


def create_app(service: Service) -> FastAPI:
    """The HTTP API over a started service (database open, migrations applied)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = None
        if service.settings.run_projections:
            # Small batches inside the API process: a catch-up burst must not hold the GIL for
            # long while requests wait (a rebuild or `projections run` uses the large default).
            runner = ProjectionRunner.for_service(
                service, batch_size=500, name=candidate_name("serve")
            )
            runner.start()
        app.state.projection_runner = runner
        checkpoints = None
        if service.settings.checkpoint_seconds > 0:
            checkpoints = asyncio.create_task(_issue_checkpoints(service))
        try:
            yield
        finally:
            if checkpoints is not None:
                checkpoints.cancel()
            await feed.close(app)
            if runner is not None:
                runner.stop()
            engine = getattr(app.state, "reports_engine", None)
            if engine is not None:
                await engine.dispose()

    app = FastAPI(
        title="mappa-record",
        version="1",
        description="A shared, event-sourced record of people managed under MAPPA.",
        lifespan=lifespan,
    )
    app.state.records = service.records
    app.state.reading = service.reading
    app.state.verifier = service.verifier
    app.state.service = service
    problems.install(app)
    # Added last runs first: the rate limit, then the token, both before a body is read,
    # then the body's size (api/limits.py).
    app.add_middleware(BodySizeLimit, upload_bytes=service.settings.max_body_bytes)
    app.add_middleware(Authenticate, verifier=service.verifier)
    app.add_middleware(
        RateLimit,
        verifier=service.verifier,
        rate=service.settings.rate_limit_per_second,
        burst=service.settings.rate_limit_burst,
        shared=SharedBuckets(
            service.ledger.datastore.pool,
            service.settings.rate_limit_per_second,
            service.settings.rate_limit_burst,
        ),
    )
    app.include_router(nominals.router)
    app.include_router(batches.router)
    app.include_router(audit.router)
    app.include_router(minutes.router)
    app.include_router(feed.router)
    app.include_router(inbound.router)
    app.include_router(reports.router)
    app.include_router(transparency_log.router)

    @app.get("/health/live", tags=["health"], response_class=PlainTextResponse)
    def live() -> str:
        """The process is up."""
        return "ok"

    @app.get("/health/ready", tags=["health"], response_class=PlainTextResponse)
    def ready() -> str:
        """The database answers; then, a line per read model: the events it set aside."""
        statuses = service.probe(read_side)
        return "ok\n" + "".join(f"{s.name}: {s.set_aside} set aside\n" for s in statuses)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text format: each projection's position, lag and events set aside."""
        body, content_type = projection_metrics(service.probe(read_side))
        return PlainTextResponse(body, media_type=content_type)

    return app
