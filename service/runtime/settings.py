"""Every setting the service reads, in one place (docs/design.md#running-it; docs/adr/017).

Each setting is an environment variable: `MAPPA_<NAME>`, and `DATABASE_URL`. A secret may be
given as a file instead, named by the variable with `_FILE` after it
(`MAPPA_CIPHER_KEY_FILE=/run/secrets/cipher-key`, `DATABASE_URL_FILE=...`), as container
platforms mount secrets; surrounding whitespace (the newline `echo` leaves) is dropped.
A `MAPPA_*` variable that names no setting stops the start, naming the nearest one: a typo
must not silently drop a security setting.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.runtime.asyncpg_args import asyncpg_arguments

PREFIX = "MAPPA_"


class SettingsError(Exception):
    """A setting is wrong: the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    # The settings that may be given as files (`<variable>_FILE`): they hold secrets.
    SECRETS: ClassVar[tuple[str, ...]] = ("database_url", "cipher_key", "migrate_url")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MAPPA_DATABASE_URL")
    )
    # The owner's URL, for migrations only (`mappa-record migrate`; docs/adr/026): the service
    # itself runs as a role that can change no table. Unset: migrations use DATABASE_URL.
    migrate_url: str | None = None
    data_dir: Path = Path(".data")
    jwt_issuer: str = "mappa-record-dev"
    jwt_audience: str = "mappa-record"
    jwt_algorithms: str = "RS256 ES256"
    jwks_url: str | None = None
    jwks_file: Path | None = None
    # Trust the development key in the data directory although DATABASE_URL is set (never
    # in production). On the embedded database it is trusted anyway; beside a JWKS, never.
    dev_tokens: bool = False
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
    # Refuse to start unless the primary has a synchronous standby connected, so that an
    # acknowledged event survives the loss of the primary (docs/design.md#beyond-one-machine,
    # docs/adr/026).
    require_sync_standby: bool = False
    # The transparency log (docs/adr/020): its origin line (also the checkpoint key's name),
    # the Ed25519 key that signs its checkpoints (PEM; unset: a development key made in the
    # data directory), and how often `serve` issues one when the log has grown (0: never).
    log_origin: str = Field(default="mappa-record.local/log", pattern=r"^[^\s+]{1,200}$")
    checkpoint_key_file: Path | None = None
    checkpoint_seconds: float = Field(default=60.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SecretFiles(settings_cls))

    @field_validator("database_url", "migrate_url")
    @classmethod
    def _libpq_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a libpq URL starting postgresql://")
        try:
            # libpq's own reading (an unknown parameter is refused), then the reports'.
            asyncpg_arguments(v)
        except Exception as e:  # noqa: BLE001 - psycopg's, ssl's or ours: one line each
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(_without_password(first, v)) from None
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

    @model_validator(mode="after")
    def _one_source_of_trust(self) -> Settings:
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError("MAPPA_JWKS_URL: set MAPPA_JWKS_URL or MAPPA_JWKS_FILE, not both")
        if self.dev_tokens and self.jwks_configured:
            which = "MAPPA_JWKS_URL" if self.jwks_url is not None else "MAPPA_JWKS_FILE"
            raise ValueError(
                f"MAPPA_DEV_TOKENS: cannot be true beside {which}: with a JWKS the service "
                "trusts its keys and nothing else"
            )
        return self

    @property
    def embedded(self) -> bool:
        """The service runs on the embedded database in the data directory."""
        return self.database_url is None

    @property
    def jwks_configured(self) -> bool:
        return self.jwks_url is not None or self.jwks_file is not None

    @property
    def trusts_dev_key(self) -> bool:
        """The development key is trusted: no JWKS, and the embedded database or
        MAPPA_DEV_TOKENS=true (docs/design.md#authentication-and-access)."""
        return not self.jwks_configured and (self.embedded or self.dev_tokens)


def _variables(name: str, field: FieldInfo) -> tuple[str, ...]:
    """The environment variables a field is read from."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (PREFIX + name.upper(),)


class SecretFiles(PydanticBaseSettingsSource):
    """`<variable>_FILE`: a secret setting read from the file it names."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for variable in _variables(field_name, field):
            path = _environ(variable + "_FILE")
            if path is None:
                continue
            if _environ(variable) is not None:
                raise SettingsError(f"{variable}_FILE: {variable} is set too; set one of them")
            try:
                return Path(path).read_text().strip(), variable, False
            except (OSError, UnicodeDecodeError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else "not text"
                raise SettingsError(f"{variable}_FILE: cannot read {path} ({reason})") from None
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in Settings.SECRETS:
            field = self.settings_cls.model_fields[name]
            value, variable, _ = self.get_field_value(field, name)
            if value is not None:
                # Given as the field reads it: by its alias if it has one.
                found[variable if field.validation_alias else name] = value
        return found


def _environ(variable: str) -> str | None:
    """The variable's value, its name matched regardless of case as the settings are."""
    for name, value in os.environ.items():
        if name.upper() == variable:
            return value
    return None


def known_variables() -> frozenset[str]:
    """Every MAPPA_* variable the service reads."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        for variable in _variables(name, field):
            names.add(variable)
            if name in Settings.SECRETS:
                names.add(variable + "_FILE")
    return frozenset(n for n in names if n.startswith(PREFIX))


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Refuse a MAPPA_* variable that names no setting, naming the nearest one."""
    known = known_variables()
    for name in sorted(os.environ if environ is None else environ):
        upper = name.upper()
        if upper.startswith(PREFIX) and upper not in known:
            nearest = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.0)
            hint = f"; did you mean {nearest[0]}?" if nearest else ""
            raise SettingsError(f"{name}: not a setting of the service{hint}")


def load_settings() -> Settings:
    """Read the environment; a wrong setting raises SettingsError with one clear line."""
    check_environment()
    try:
        return Settings()
    except ValidationError as e:
        first = e.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a rule between settings: its message names them
            raise SettingsError(message) from None
        name = str(first["loc"][0]).upper()
        if not name.startswith(PREFIX) and name != "DATABASE_URL":
            name = PREFIX + name
        if _environ(name) is None and _environ(name + "_FILE") is not None:
            name += "_FILE"  # the value came from the file that variable names
        raise SettingsError(f"{name}: {message}") from None


def _without_password(message: str, url: str) -> str:
    """The message with the URL's password, if it has one, blanked."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = str(conninfo_to_dict(url).get("password") or "")
    except Exception:  # noqa: BLE001 - a URL libpq cannot read: blank what looks like one
        password = url.partition("://")[2].partition("@")[0].partition(":")[2]
    return message.replace(password, "***") if password else message
