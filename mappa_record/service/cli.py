"""The `mappa-record` command line (DESIGN.md section 9)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from .bootstrap import StartupError, start
from .settings import SettingsError, load_settings


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = load_settings()
    start(settings).close()  # migrations once, before any worker starts
    print(
        f"mappa-record serving on http://{args.host}:{args.port} "
        f"({'embedded PostgreSQL in ' + str(settings.data_dir) if not settings.database_url else 'DATABASE_URL'})",
        flush=True,
    )
    uvicorn.run(
        "mappa_record.api.main:build",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )


def _migrate(args: argparse.Namespace) -> None:
    start(load_settings()).close()
    print("migrations applied")


def _token(args: argparse.Namespace) -> None:
    from .devkeys import ensure_dev_key, mint_token

    settings = load_settings()
    if not settings.uses_dev_key:
        print(
            "warning: a JWKS is configured, so the service does not trust development tokens",
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


def _projections(args: argparse.Namespace) -> None:
    # The read side is wired here, at the edge: service code itself never imports projections.
    from mappa_record.projections.cli import run_command

    service = start(load_settings())
    try:
        run_command(service, args.action)
    finally:
        service.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mappa-record", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=_serve)

    mig = sub.add_parser("migrate", help="create or upgrade the database tables")
    mig.set_defaults(func=_migrate)

    tok = sub.add_parser("token", help="print a signed development token")
    tok.add_argument("--agency", required=True, help="e.g. police:kent")
    tok.add_argument("--scope", required=True, help='space-separated, e.g. "records:read records:write"')
    tok.add_argument("--sub", default=None, help="who the token is for")
    tok.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    tok.set_defaults(func=_token)

    proj = sub.add_parser("projections", help="run, rebuild or inspect the read models")
    proj.add_argument("action", choices=["run", "rebuild", "status"])
    proj.set_defaults(func=_projections)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (StartupError, SettingsError, ValueError) as e:
        print(f"mappa-record: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
