"""The development signing key: kept in the data directory, trusted only when no JWKS is set.

`mappa-record token` mints tokens with it (docs/design.md#authentication-and-access).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from domain.agencies import parse_agency
from service.auth import SCOPES

KEY_FILE = "dev-signing-key.pem"
ALGORITHM = "ES256"


@dataclass(frozen=True)
class DevKey:
    """The development ES256 key and its RFC 7638 thumbprint, used as the kid."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with its kid, alg and use."""
        jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """The public JWKS a TokenVerifier trusts for this key."""
        return {"keys": [self.public_jwk()]}


def ensure_dev_key(data_dir: Path) -> DevKey:
    """Load the development key from the data directory, creating it the first time."""
    data_dir = Path(data_dir)
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create_key_file(path)
    return _load(path)


def mint_token(
    key: DevKey,
    *,
    agency: str,
    scopes: Sequence[str] | str,
    sub: str,
    ttl: int,
    issuer: str,
    audience: str,
    now: datetime,
) -> str:
    """A signed development token for an agency and space-separated scopes."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds")
    if not sub.strip():
        raise ValueError("sub must not be empty")
    wanted = scopes.split() if isinstance(scopes, str) else [s for s in scopes]
    unknown = sorted(set(wanted) - SCOPES)
    if unknown:
        raise ValueError(
            f"unknown scope {', '.join(unknown)}; use any of {', '.join(sorted(SCOPES))}"
        )
    issued = int(now.timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "agency": parse_agency(agency),
        "scope": " ".join(dict.fromkeys(wanted)),
        "iat": issued,
        "exp": issued + ttl,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def _create_key_file(path: Path) -> None:
    """Write a new key without ever replacing one: two processes may race here."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        # link() fails if the name exists, so the first complete key wins and is never
        # overwritten; the loser reads the winner's key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _load(path: Path) -> DevKey:
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise ValueError(f"{path} is not a P-256 (ES256) private key")
    return DevKey(private_key=private_key, kid=_thumbprint(private_key.public_key()))


def _thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638: SHA-256 of the required members in lexical order, without whitespace."""
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode("ascii")
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
