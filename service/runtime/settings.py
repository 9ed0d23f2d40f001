"""Every setting the service reads, in one place (DESIGN.md section 9)."""

import base64
import binascii
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting is wrong: the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAPPA_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAPPA_DATABASE_URL")
    )
    data_dir: Path = Path(".data")
    jwt_issuer: str = "mappa-record-dev"
    jwt_audience: str = "mappa-record"
    jwt_algorithms: str = "RS256 ES256"
    jwks_url: str | None = None
    jwks_file: Path | None = None
    cipher_key: str | None = None
    # The role the event store's connections act as (SET ROLE): no UPDATE, DELETE or
    # TRUNCATE on the append-only tables (docs/adr/004). Empty: the URL's user as it is.
    db_role: str | None = Field(default="mappa_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_size: int = Field(default=10, ge=1, le=200)
    # Records kept in memory per process (service/store/cache.py, docs/adr/011): 0 turns it off.
    aggregate_cache: int = Field(default=2_000, ge=0, le=1_000_000)
    # ... and their estimated bytes in memory, in MiB (service/store/cache.py).
    aggregate_cache_mb: int = Field(default=256, ge=1, le=1_000_000)
    statement_timeout_ms: int = Field(default=15_000, ge=100)
    max_body_bytes: int = Field(default=21 * 1024 * 1024, ge=1024)
    # Per client (token agency+sub, or peer address), per worker process: docs/adr/008.
    rate_limit_per_second: float = Field(default=500.0, gt=0)
    rate_limit_burst: int = Field(default=5000, ge=1)
    run_projections: bool = True
    # The transparency log (docs/adr/020): its origin line (also the checkpoint key's name),
    # the Ed25519 key that signs its checkpoints (PEM; unset: a development key made in the
    # data directory), and how often `serve` issues one when the log has grown (0: never).
    log_origin: str = Field(default="mappa-record.local/log", pattern=r"^[^\s+]{1,200}$")
    checkpoint_key_file: Path | None = None
    checkpoint_seconds: float = Field(default=60.0, ge=0)

    @field_validator("database_url")
    @classmethod
    def _libpq_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a libpq URL starting postgresql://")
        return v

    @field_validator("cipher_key")
    @classmethod
    def _aes_key(cls, v: str | None) -> str | None:
        if not v:
            return None
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 of a 16, 24 or 32 byte AES key") from None
        if len(raw) not in (16, 24, 32):
            raise ValueError("must be base64 of a 16, 24 or 32 byte AES key")
        return v

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, v: str) -> str:
        allowed = {"RS256", "ES256"}
        chosen = set(v.split())
        if not chosen or not chosen <= allowed:
            raise ValueError("may list only RS256 and ES256")
        return v

    @field_validator("jwks_file")
    @classmethod
    def _readable(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"{v} is not a readable file")
        return v

    @property
    def uses_dev_key(self) -> bool:
        return self.jwks_url is None and self.jwks_file is None


def load_settings() -> Settings:
    """Read the environment; a wrong setting raises SettingsError with one clear line."""
    try:
        return Settings()
    except ValidationError as e:
        first = e.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
        if name != "DATABASE_URL" and not name.startswith("MAPPA_"):
            name = "MAPPA_" + name
        raise SettingsError(f"{name}: {first['msg'].removeprefix('Value error, ')}") from None
