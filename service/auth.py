"""Bearer token verification: who is calling, for which agency, with which scopes.

Tokens are JWTs signed with an asymmetric key published in a JWKS
(docs/design.md#authentication-and-access).
Every fault raises `Unauthenticated`; its message is for the logs, never for the client.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from domain.agencies import parse_agency
from domain.errors import InvalidValue
from service.payloads import unstorable

logger = logging.getLogger(__name__)

SCOPES = frozenset(
    {"records:write", "records:read", "audit:read", "reports:read", "feed:read", "inbound:hmpps"}
)

REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "agency", "scope")

# Which JWK may verify which algorithm: (kty, crv). A key never verifies an algorithm of
# another family, so an RSA key cannot be abused for ES256 nor as an HMAC secret.
_KEY_FIT: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}

_FETCH_TIMEOUT = httpx.Timeout(5.0)
# Verified tokens remembered, so a client's next request skips the signature check.
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a person or system acting for one agency."""

    sub: str
    agency: str
    scopes: frozenset[str]
    # When the token it came from expires (seconds since the epoch); None: not from a token.
    expires_at: float | None = field(default=None, compare=False)

    def has(self, scope: str) -> bool:
        """Whether the token granted this scope."""
        return scope in self.scopes


class Unauthenticated(Exception):
    """The token is missing, malformed, unsigned, expired or not ours (log the message only)."""


class JwksUnavailable(Exception):
    """The JWKS could not be read or is not a JWKS."""


@dataclass(frozen=True)
class _KeySet:
    """One snapshot of the JWKS: candidate keys by kid, parsed lazily per algorithm."""

    by_kid: Mapping[str, tuple[Mapping[str, Any], ...]]
    # Parsing a key costs more than verifying with it; racing threads at worst parse twice.
    _parsed: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict, compare=False)

    @classmethod
    def from_document(cls, document: Any) -> _KeySet:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailable("not a JWKS: expected an object with a 'keys' list")
        by_kid: dict[str, list[Mapping[str, Any]]] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict):
                continue
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                logger.warning("JWKS key without a kid ignored")
                continue
            if jwk.get("use", "sig") != "sig":
                continue
            by_kid.setdefault(kid, []).append(jwk)
        return cls({kid: tuple(jwks) for kid, jwks in by_kid.items()})

    def key_for(self, kid: str, alg: str) -> jwt.PyJWK | None:
        key = self._parsed.get((kid, alg))
        if key is None:
            key = self._parse(kid, alg)
            if key is not None:
                self._parsed[(kid, alg)] = key
        return key

    def _parse(self, kid: str, alg: str) -> jwt.PyJWK | None:
        kty, crv = _KEY_FIT[alg]
        for jwk in self.by_kid.get(kid, ()):
            if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
                continue
            if jwk.get("alg", alg) != alg:
                continue
            try:
                return jwt.PyJWK(dict(jwk), algorithm=alg)
            except jwt.PyJWTError as error:
                logger.warning("JWKS key %r unusable for %s: %s", kid, alg, error)
        return None


@dataclass(frozen=True)
class _Verified:
    """A token that passed every check, and the wall-clock window it stays valid in."""

    principal: Principal
    keys: _KeySet  # the key set that verified it: a JWKS refresh forgets it
    valid_from: float  # nbf less the leeway (or -inf)
    valid_until: float  # exp plus the leeway


class TokenVerifier:
    """Verifies bearer tokens against a JWKS given directly, in a file, or at an URL.

    A verified token is remembered (by its exact text) until it expires or the JWKS is read
    again: its signature, issuer and audience cannot change, so a client's next request is
    checked against the remembered expiry alone, not by a signature verification.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        jwks: dict | None = None,
        jwks_file: Path | None = None,
        jwks_url: str | None = None,
        leeway: int = 30,
        refresh_interval: float = 30.0,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("the token issuer and audience must both be set")
        self._algorithms = _checked_algorithms(algorithms)
        sources = [s for s in (jwks, jwks_file, jwks_url) if s is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of jwks, jwks_file or jwks_url")
        if leeway < 0 or refresh_interval < 0:
            raise ValueError("leeway and refresh_interval cannot be negative")

        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._refresh_interval = refresh_interval
        self._jwks_file = Path(jwks_file) if jwks_file is not None else None
        self._jwks_url = jwks_url
        self._lock = threading.Lock()
        self._last_load = time.monotonic()
        self._verified: dict[str, _Verified] = {}

        if jwks is not None:
            self._keys = _KeySet.from_document(jwks)
        elif self._jwks_file is not None:
            try:
                self._keys = self._load()
            except JwksUnavailable as error:
                raise ValueError(f"cannot use the JWKS file {self._jwks_file}: {error}") from None
        else:
            # An identity provider that is down at start-up should not stop the service:
            # start without keys and fetch again on the first token (rate limited).
            try:
                self._keys = self._load()
            except JwksUnavailable as error:
                logger.warning("JWKS not loaded from %s, will retry: %s", jwks_url, error)
                self._keys = _KeySet({})

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before and still valid; None otherwise."""
        hit = self._verified.get(token)
        if hit is None or hit.keys is not self._keys:
            return None
        if not hit.valid_from <= time.time() < hit.valid_until:
            return None
        return hit.principal

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; `Unauthenticated` for any fault."""
        principal = self.remembered(token)
        if principal is not None:
            return principal
        keys = self._keys
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError) as error:
            raise Unauthenticated(f"malformed token: {error}") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise Unauthenticated(f"algorithm {alg!r} not allowed")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token header has no kid")

        key = self._key_for(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"token refused: {error}") from None
        principal = _principal(claims)
        self._remember(token, principal, keys, claims)
        return principal

    def _remember(
        self, token: str, principal: Principal, keys: _KeySet, claims: Mapping[str, Any]
    ) -> None:
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # crude but bounded: the next requests verify again
        nbf = claims.get("nbf")
        self._verified[token] = _Verified(
            principal=principal,
            keys=keys,
            valid_from=float(nbf) - self._leeway if nbf is not None else float("-inf"),
            valid_until=float(claims["exp"]) + self._leeway,
        )

    def _key_for(self, kid: str, alg: str) -> jwt.PyJWK:
        key = self._keys.key_for(kid, alg)
        if key is None and kid not in self._keys.by_kid:
            self._refresh()
            key = self._keys.key_for(kid, alg)
        if key is None:
            raise Unauthenticated(f"no key {kid!r} usable for {alg}")
        return key

    def _refresh(self) -> None:
        """Re-read the JWKS source, at most once per refresh interval across all threads."""
        if self._jwks_file is None and self._jwks_url is None:
            return
        # Threads that arrive while one refreshes wait here, then use its result.
        with self._lock:
            now = time.monotonic()
            if now - self._last_load < self._refresh_interval:
                return
            self._last_load = now
            try:
                self._keys = self._load()
            except JwksUnavailable as error:
                logger.warning("JWKS refresh failed, keeping the last good keys: %s", error)
            else:
                logger.info("JWKS refreshed: kids %s", sorted(self._keys.by_kid))

    def _load(self) -> _KeySet:
        try:
            if self._jwks_file is not None:
                document = json.loads(self._jwks_file.read_text(encoding="utf-8"))
            else:
                assert self._jwks_url is not None
                response = httpx.get(self._jwks_url, timeout=_FETCH_TIMEOUT)
                response.raise_for_status()
                document = response.json()
        except (OSError, ValueError, httpx.HTTPError) as error:
            raise JwksUnavailable(str(error) or type(error).__name__) from None
        return _KeySet.from_document(document)


def _checked_algorithms(algorithms: Sequence[str]) -> frozenset[str]:
    if isinstance(algorithms, str):
        algorithms = [algorithms]
    if not algorithms:
        raise ValueError("at least one signature algorithm must be allowed")
    for alg in algorithms:
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise ValueError(f"algorithm {alg!r} is never accepted: tokens must be signed")
        if alg not in _KEY_FIT:
            supported = ", ".join(sorted(_KEY_FIT))
            raise ValueError(f"algorithm {alg!r} is not supported (one of {supported})")
    return frozenset(algorithms)


def _principal(claims: Mapping[str, Any]) -> Principal:
    sub, agency, scope = claims["sub"], claims["agency"], claims["scope"]
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthenticated(f"claim {name} is not a number")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthenticated("claim sub is empty or not a string")
    if unstorable(sub) is not None:  # it is written with every post and read (recorded_by)
        raise Unauthenticated(f"claim sub {unstorable(sub)}")
    if not isinstance(agency, str):
        raise Unauthenticated("claim agency is not a string")
    if not isinstance(scope, str):
        raise Unauthenticated("claim scope is not a space-separated string")
    try:
        normalised = parse_agency(agency)
    except InvalidValue as error:
        raise Unauthenticated(f"claim agency invalid: {error}") from None
    # Scopes this service does not know are someone else's business, not an error.
    return Principal(
        sub=sub,
        agency=normalised,
        scopes=frozenset(scope.split()) & SCOPES,
        expires_at=float(claims["exp"]),
    )
