"""Start-up: settings -> database -> migrations -> token verifier -> the application layer
(the ledger, posting and reading), once per process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import OperationalError

from service.auth import TokenVerifier
from service.devkeys import ensure_dev_key
from service.ledger import Ledger
from service.reading import Reading
from service.records import Records
from service.runtime.database import (
    Database,
    DatabaseUnavailable,
    open_database,
    with_network_defaults,
)
from service.runtime.settings import Settings, SettingsError
from service.store.migrate import migrate
from service.transparency import TransparencyLog, signer_for

log = logging.getLogger(__name__)

PROBE_WAIT = 3.0  # seconds a readiness or metrics request waits for a pooled connection
T = TypeVar("T")


class StartupError(Exception):
    """The service cannot start; the message is the one line to show."""


@dataclass
class Application:
    """The application layer of one process: the ledger, and posting and reading on it."""

    ledger: Ledger
    records: Records
    reading: Reading

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> Application:
        ledger = Ledger(settings, db, clock)
        return cls(ledger=ledger, records=Records(ledger), reading=Reading(ledger))

    def close(self) -> None:
        self.ledger.close()


@dataclass
class Service(Application):
    """A started service: its settings, database and token verifier, and its application."""

    settings: Settings
    db: Database
    verifier: TokenVerifier
    transparency: TransparencyLog

    def probe(self, query: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`query` run on one of the event store's pooled connections (a health or metrics
        read), waited for at most PROBE_WAIT seconds: probes open no connection of their own,
        so a flood of them costs the server nothing new. A connection the server has closed
        (a restart, a failover) has the pool's idle ones checked and the query run once more,
        so readiness is back with the database. A database error is the store's (503)."""
        pool = self.ledger.datastore.pool
        for last in (False, True):
            conn = None
            try:
                with pool.connection(timeout=PROBE_WAIT) as conn:
                    return query(conn)
            except psycopg.Error as e:
                if last or conn is None or not conn.broken:
                    raise OperationalError(f"the database did not answer: {e}") from e
                pool.check()
        raise AssertionError("unreachable")


def build_verifier(settings: Settings) -> TokenVerifier:
    """The JWKS the settings name; without one, the development key where it may be
    trusted (docs/design.md#authentication-and-access), and SettingsError elsewhere."""
    algorithms = tuple(settings.jwt_algorithms.split())
    common = {
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
        "algorithms": algorithms,
    }
    if settings.jwks_configured:
        return TokenVerifier(
            jwks_file=settings.jwks_file,
            jwks_url=settings.jwks_url,
            **common,  # type: ignore[arg-type]
        )
    if not settings.trusts_dev_key:
        raise SettingsError(
            "no MAPPA_JWKS_URL or MAPPA_JWKS_FILE: with DATABASE_URL set the service trusts "
            "only a JWKS (MAPPA_DEV_TOKENS=true trusts the development key instead, never in "
            "production)"
        )
    key = ensure_dev_key(settings.data_dir)
    log.warning(
        "no MAPPA_JWKS_URL or MAPPA_JWKS_FILE and %s: trusting the development key %s in %s "
        "(tokens from `mappa-record token`); configure a JWKS in production",
        "the embedded database" if settings.embedded else "MAPPA_DEV_TOKENS=true",
        key.kid,
        settings.data_dir,
    )
    return TokenVerifier(jwks=key.jwks(), **common)  # type: ignore[arg-type]


def start(settings: Settings, *, run_migrations: bool = True) -> Service:
    """Open the database, apply migrations and build the service; StartupError if it can't."""
    try:
        verifier = build_verifier(settings)  # whom to trust is settled before the database
        if settings.checkpoint_key_file is None and not (settings.embedded or settings.dev_tokens):
            raise StartupError(
                "MAPPA_CHECKPOINT_KEY_FILE is not set: a deployment signs its checkpoints with "
                "an Ed25519 key of its own (PEM); a development key is made only on the "
                "embedded database or with MAPPA_DEV_TOKENS=true"
            )
        db = open_database(settings)
        if run_migrations:
            # As the owner, when its URL is given (docs/adr/026); else as DATABASE_URL's user,
            # which changes nothing when the database is already at this code's revision.
            migrate(
                Database(with_network_defaults(settings.migrate_url))
                if settings.migrate_url
                else db
            )
        application = Application.build(settings, db)
        application.ledger.check_cipher()
        signer = signer_for(settings.log_origin, settings.checkpoint_key_file, settings.data_dir)
    except (SettingsError, DatabaseUnavailable) as e:
        raise StartupError(str(e)) from None
    except ValueError as e:
        raise StartupError(f"bad setting: {e}") from None
    return Service(
        ledger=application.ledger,
        records=application.records,
        reading=application.reading,
        settings=settings,
        db=db,
        verifier=verifier,
        transparency=TransparencyLog(application.ledger.app, signer),
    )
