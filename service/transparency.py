"""The transparency log: every event in the RFC 6962 tree, signed checkpoints, proofs, and
the check that today's log extends a checkpoint someone kept (docs/adr/020).

Leaf i of the tree is the i-th event in position order, its leaf hash
SHA-256(0x00 || the event's chain hash). `grow` appends the events stored since the last
leaf and every complete node they form (migration 0008), so issuing a checkpoint costs
O(new events); a proof reads the O(log n) nodes it needs in one query. Whoever holds an
earlier checkpoint and the public key can ask for a consistency proof, or run
`verify_extends`, which recomputes the tree from the events themselves: a stream rewritten
with its index rows by a database superuser no longer gives the checkpoint's root.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from eventsourcing.persistence import StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from domain.nominal import Nominal
from service import merkle
from service.signed_note import Checkpoint, NoteError, Signer, Verifier, open_checkpoint
from service.store.eventstore import NominalRecorder, Nominals

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: one process grows the tree at a time. Not the projection
# runners' 7_413_003, which it once shared: a checkpoint made the elected runner skip its
# batch, and a rebuild (which holds the runners' lock throughout) held up every checkpoint.
# Two processes of different releases growing the tree at once still cannot both succeed:
# the second's leaves meet the first's primary keys and its transaction is rolled back.
LOG_LOCK = 7_412_020
BATCH = 10_000  # events read, and leaves stored, per transaction


class NotInLog(Exception):
    """The event, or the tree size asked for, is not in the log (yet)."""


def signer_for(origin: str, key_file: Path | None, data_dir: Path) -> Signer:
    """The checkpoint signer: the key in `key_file` (PEM, Ed25519), or in development a key
    made once in the data directory, as the token key is."""
    path = key_file or data_dir / "checkpoint-key.pem"
    if key_file is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        log.warning("made a development checkpoint key in %s", path)
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return Signer(origin, key)


@dataclass(frozen=True)
class Extension:
    """Whether the log today extends a checkpoint; where it first does not, if not."""

    checkpoint_size: int
    log_size: int
    first_bad_leaf: int | None = None
    first_bad_position: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.reason is None


class TransparencyLog:
    def __init__(self, app: Nominals, signer: Signer) -> None:
        self._app = app
        self._datastore = app.recorder.datastore  # type: ignore[attr-defined]
        self.signer = signer
        recorder = app.recorder
        assert isinstance(recorder, NominalRecorder)
        self._events = SQL("{}.{}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )

    # -- growing and signing -----------------------------------------------------------

    def checkpoint(self) -> str | None:
        """Grow the tree to every stored event and sign it; the new checkpoint, or None when
        the log has not grown since the last one."""
        while True:
            with self._datastore.transaction(commit=True) as curs:
                curs.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK,))
                tree, position = self._edge(curs)
                added = self._grow(curs, tree, position)
                if added == BATCH:
                    continue  # more to read: commit this much, and go on
                last = _count(curs, "SELECT coalesce(max(size), 0) FROM log_checkpoints")
                if tree.size == 0 or tree.size <= last:
                    return None
                note = self.signer.sign(Checkpoint(self.signer.name, tree.size, tree.root()).text())
                curs.execute(
                    "INSERT INTO log_checkpoints (size, root, note) VALUES (%s, %s, %s)",
                    (tree.size, tree.root(), note),
                )
                return note

    def _edge(self, curs: Cursor[DictRow]) -> tuple[merkle.CompactRange, int]:
        """The tree as stored (its right edge) and the position of its last leaf."""
        curs.execute("SELECT idx, position FROM log_leaves ORDER BY idx DESC LIMIT 1")
        last = curs.fetchone()
        size = last["idx"] + 1 if last else 0
        wanted = merkle.CompactRange.edge_nodes(size)
        nodes = self._nodes(curs, set(wanted))
        return merkle.CompactRange(size, [nodes[w] for w in wanted]), last[
            "position"
        ] if last else 0

    def _grow(self, curs: Cursor[DictRow], tree: merkle.CompactRange, after: int) -> int:
        leaves, nodes = [], []
        for position, event_hash in self._event_hashes(curs, after, BATCH):
            leaves.append((tree.size, position))
            nodes.extend(tree.append(merkle.leaf_hash(event_hash)))
        if leaves:
            with curs.copy("COPY log_leaves (idx, position) FROM STDIN") as copy:
                for leaf in leaves:
                    copy.write_row(leaf)
            with curs.copy("COPY log_nodes (level, idx, hash) FROM STDIN") as copy:
                for node in nodes:
                    copy.write_row(node)
        return len(leaves)

    def _event_hashes(
        self, curs: Cursor[DictRow], after: int, limit: int | None
    ) -> Iterator[tuple[int, bytes]]:
        """(position, the event's chain hash) of the events stored after `after`, in order."""
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s ORDER BY notification_id"
        ).format(self._events)
        if limit is not None:
            statement = SQL("{} LIMIT {}").format(statement, limit)
        curs.execute(statement, (after,))
        for row in curs.fetchall():
            yield row["notification_id"], self._hash_of(row)

    def _hash_of(self, row: DictRow) -> bytes:
        event = self._app.mapper.to_domain_event(
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
        )
        assert isinstance(event, Nominal.Event)
        return bytes.fromhex(event.hash)

    # -- answering ------------------------------------------------------------------------

    def latest(self) -> tuple[int, str] | None:
        """The size and signed note of the last checkpoint issued, if any."""
        with self._datastore.transaction() as curs:
            curs.execute("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
            row = curs.fetchone()
        return (row["size"], row["note"]) if row else None

    def inclusion(self, event_id: UUID, size: int | None) -> dict[str, Any]:
        """The proof that an event is in the log of `size` (the last checkpoint's if None)."""
        with self._datastore.transaction() as curs:
            curs.execute(
                SQL(
                    "SELECT l.idx, e.notification_id FROM event_index i"
                    " JOIN {} e ON e.originator_id = i.nominal_id"
                    " AND e.originator_version = i.version"
                    " LEFT JOIN log_leaves l ON l.position = e.notification_id"
                    " WHERE i.event_id = %s"
                ).format(self._events),
                (event_id,),
            )
            found = curs.fetchone()
            size = self._size(curs, size)
            if found is None:
                raise NotInLog("no such event")
            index = found["idx"]
            if index is None or index >= size:
                raise NotInLog(f"the event is not in the log of size {size} (not yet)")
            leaf, proof = self._leaf_and_path(curs, index, size)
        return {
            "event_id": str(event_id),
            "position": found["notification_id"],
            "leaf_index": index,
            "tree_size": size,
            "leaf_hash": _b64(leaf),
            "inclusion_path": [_b64(p) for p in proof],
        }

    def leaf_and_path(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Leaf `index`'s hash and its audit path in the tree of `size` leaves."""
        with self._datastore.transaction() as curs:
            return self._leaf_and_path(curs, index, size)

    def _leaf_and_path(
        self, curs: Cursor[DictRow], index: int, size: int
    ) -> tuple[bytes, list[bytes]]:
        def path(node: merkle.Nodes) -> list[bytes]:
            node(0, index)  # the leaf itself, read in the same query
            return merkle.inclusion_proof(index, size, node)

        nodes = self._nodes(curs, merkle.needed(path))
        return nodes[0, index], path(lambda level, i: nodes[level, i])

    def consistency(self, old: int, new: int | None) -> dict[str, Any]:
        """The proof that the log of size `new` (the last checkpoint's if None) extends the
        log of size `old`."""
        with self._datastore.transaction() as curs:
            new = self._size(curs, new)
            if not 0 < old <= new:
                raise NotInLog(f"no proof from size {old} to size {new}: 0 < from <= to")
            proof = self._prove(curs, lambda node: merkle.consistency_proof(old, new, node))
        return {"from": old, "to": new, "consistency_path": [_b64(p) for p in proof]}

    def _size(self, curs: Cursor[DictRow], size: int | None) -> int:
        if size is None:
            size = _count(curs, "SELECT coalesce(max(size), 0) FROM log_checkpoints")
            if size == 0:
                raise NotInLog("no checkpoint has been issued yet")
            return size
        if not 0 < size <= _count(curs, "SELECT coalesce(max(idx) + 1, 0) FROM log_leaves"):
            raise NotInLog(f"the log has no tree of size {size} (not yet)")
        return size

    def _prove(self, curs: Cursor[DictRow], proof: Any) -> list[bytes]:
        nodes = self._nodes(curs, merkle.needed(proof))
        result: list[bytes] = proof(lambda level, index: nodes[level, index])
        return result

    def _nodes(
        self, curs: Cursor[DictRow], wanted: set[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        if not wanted:
            return {}
        levels, indexes = zip(*sorted(wanted), strict=True)
        curs.execute(
            "SELECT n.level, n.idx, n.hash FROM unnest(%s::smallint[], %s::bigint[]) AS w(l, i)"
            " JOIN log_nodes n ON n.level = w.l AND n.idx = w.i",
            (list(levels), list(indexes)),
        )
        found = {(r["level"], r["idx"]): bytes(r["hash"]) for r in curs.fetchall()}
        if len(found) != len(wanted):
            raise AssertionError("the log's nodes are incomplete")
        return found

    # -- checking a kept checkpoint ------------------------------------------------------

    def verify_extends(self, note: str, verifier: Verifier) -> Extension:
        """Whether the log, recomputed from the events as stored now, extends the checkpoint
        (NoteError if `verifier` did not sign it). Where it does not: the first leaf that
        differs from the tree as the service built it; or, if that was rewritten too, the
        span between the last checkpoint the service issued that still holds and the first
        that does not."""
        kept = open_checkpoint(note, verifier)
        issued = self._issued(verifier)
        tree = merkle.CompactRange()
        root_at_kept: bytes | None = None
        first_bad: tuple[int, int] | None = None  # (leaf, position): the first unlike the stored
        holds, breaks = 0, 0  # the last issued checkpoint that holds; the first that does not
        with self._datastore.transaction() as curs:
            after = 0
            while True:
                batch = list(self._event_hashes(curs, after, BATCH))
                stored = self._leaves(curs, tree.size, len(batch))
                for position, event_hash in batch:
                    leaf = merkle.leaf_hash(event_hash)
                    if first_bad is None and stored.get(tree.size, leaf) != leaf:
                        first_bad = (tree.size, position)
                    tree.append(leaf)
                    if tree.size == kept.size:
                        root_at_kept = tree.root()
                    if not breaks and tree.size in issued:
                        if issued[tree.size] == tree.root():
                            holds = tree.size
                        else:
                            breaks = tree.size
                if len(batch) < BATCH:
                    break
                after = batch[-1][0]
        if tree.size < kept.size:
            return Extension(
                kept.size,
                tree.size,
                tree.size,
                None,
                f"the log holds {tree.size} events, fewer than the {kept.size} the checkpoint "
                f"describes: the leaves from {tree.size} on are gone",
            )
        if root_at_kept == kept.root:
            return Extension(kept.size, tree.size)
        reason = "the log's first events do not give the checkpoint's root: history was rewritten"
        if first_bad is not None and (not breaks or first_bad[0] < breaks):
            bad_leaf, position = first_bad
            return Extension(
                kept.size,
                tree.size,
                bad_leaf,
                position,
                f"{reason}; the first leaf that differs is {bad_leaf} (position {position})",
            )
        if breaks:
            where = f"; it differs within leaves {holds} to {breaks - 1}"
            return Extension(kept.size, tree.size, holds, None, reason + where)
        return Extension(kept.size, tree.size, None, None, reason)

    def _leaves(self, curs: Cursor[DictRow], start: int, count: int) -> dict[int, bytes]:
        """The leaf hashes the service stored for leaves [start, start + count)."""
        curs.execute(
            "SELECT idx, hash FROM log_nodes WHERE level = 0 AND idx >= %s AND idx < %s",
            (start, start + count),
        )
        return {r["idx"]: bytes(r["hash"]) for r in curs.fetchall()}

    def _issued(self, verifier: Verifier) -> dict[int, bytes]:
        """The checkpoints the service issued that `verifier` signed: size -> root."""
        issued = {}
        with self._datastore.transaction() as curs:
            curs.execute("SELECT note FROM log_checkpoints ORDER BY size")
            notes = [r["note"] for r in curs.fetchall()]
        for note in notes:
            try:
                checkpoint = open_checkpoint(note, verifier)
            except NoteError:  # not signed by the key: no evidence of anything
                continue
            issued[checkpoint.size] = checkpoint.root
        return issued


def _count(curs: Cursor[DictRow], sql: str) -> int:
    curs.execute(sql)
    row = curs.fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
