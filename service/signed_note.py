"""Signed notes (c2sp.org/signed-note) with Ed25519, and checkpoints (c2sp.org/tlog-checkpoint).

A note is a text ending in a newline, a blank line, and signature lines
`— <key name> base64(key ID || signature)`; the key ID is the first four bytes of
SHA-256(key name || 0x0A || 0x01 || public key). A verifier key is written
`<name>+<key ID in hex>+base64(0x01 || public key)`, as Go's golang.org/x/mod/sumdb/note and
every tlog witness write it. A checkpoint is a note whose text is the log's origin, its
size in decimal and its root hash in base64, one per line.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"
DASH = "\u2014 "


class NoteError(Exception):
    """The note is malformed, or not signed by the key it was checked with."""


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"{name!r} is not a key name (no spaces or '+')")
    return name


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes  # 32 bytes, RFC 8032

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    def __str__(self) -> str:
        encoded = base64.b64encode(ED25519 + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key as `name+hash+base64(0x01 || key)`."""
        try:
            name, key_hash, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise NoteError("a verifier key is name+hash+base64(key)") from None
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        verifier = cls(_check_name(name), raw[1:])
        if verifier.key_id.hex() != key_hash.lower():
            raise NoteError("the verifier key's hash does not match its name and key")
        return verifier


class Signer:
    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = _check_name(name)
        self.key = key
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, public)

    def sign(self, text: str) -> str:
        """The text, signed: a note."""
        if not text.endswith("\n"):
            raise NoteError("a note's text ends with a newline")
        signature = self.key.sign(text.encode())
        encoded = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{DASH}{self.name} {encoded}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text if `verifier`'s key signed it; NoteError otherwise."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures")
    text += "\n"
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(DASH):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(DASH) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise NoteError("a signature is not base64") from None
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue  # another key's signature: ignored, as the format says
        try:
            Ed25519PublicKey.from_public_bytes(verifier.public).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise NoteError(f"the signature of {name} does not verify") from None
        verified = True
    if not verified:
        raise NoteError(f"the note is not signed by {verifier.name}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        try:
            origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
        except (IndexError, ValueError):
            raise NoteError(
                "a checkpoint is its origin, size and base64 root, a line each"
            ) from None
        if not origin or size < 0 or len(root) != 32 or str(size) != lines[1]:
            raise NoteError("a checkpoint is its origin, size and base64 root, a line each")
        return cls(origin, size, root)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint a signed note carries, if `verifier` signed it for its own origin."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"the checkpoint is of {checkpoint.origin}, not {verifier.name}")
    return checkpoint


def signer_from_seed(name: str, seed: bytes) -> Signer:
    """A signer from a 32-byte Ed25519 seed (RFC 8032's private key)."""
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
