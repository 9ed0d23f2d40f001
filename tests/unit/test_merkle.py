"""RFC 6962 trees and C2SP signed notes, against published vectors and a second library.

The tree vectors are RFC 6962's, as Certificate Transparency's and transparency-dev's
implementations test with them; pymerkle (an independent implementation) checks roots and
proofs on trees of every size up to 70. The note is the published example of Go's
golang.org/x/mod/sumdb/note, which every tlog witness implements.
"""

from __future__ import annotations

import base64

import pytest
from pymerkle import InmemoryTree

from service import merkle
from service.signed_note import (
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    open_note,
    signer_from_seed,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf, size, path), the leaf counted from one as the vectors count it.
INCLUSION = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def in_memory(leaf_hashes: list[bytes]) -> merkle.Nodes:
    """Complete nodes of a tree held in memory, as a store would keep them."""
    nodes: dict[tuple[int, int], bytes] = {}
    tree = merkle.CompactRange()
    for leaf in leaf_hashes:
        for level, index, value in tree.append(leaf):
            nodes[level, index] = value
    return lambda level, index: nodes[level, index]


NODES = in_memory([merkle.leaf_hash(leaf) for leaf in LEAVES])


def test_the_roots_of_the_rfc_vectors():
    for size, expected in enumerate(ROOTS, start=1):
        assert merkle.root(size, NODES).hex() == expected
    assert merkle.root(0, NODES) == merkle.EMPTY_ROOT


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_proofs_of_the_rfc_vectors(leaf, size, path):
    proof = merkle.inclusion_proof(leaf - 1, size, NODES)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size - 1])
    leaf_hash = merkle.leaf_hash(LEAVES[leaf - 1])
    assert merkle.verify_inclusion(leaf - 1, size, leaf_hash, proof, root)
    # What the vectors' own suite refuses: another index, size, leaf or root; a proof
    # with an element changed, added or dropped.
    assert not merkle.verify_inclusion(leaf % size, size, leaf_hash, proof, root)
    assert not merkle.verify_inclusion(leaf - 1, size * 2, leaf_hash, proof, root)
    assert not merkle.verify_inclusion(leaf - 1, size, merkle.leaf_hash(b"x"), proof, root)
    assert not merkle.verify_inclusion(leaf - 1, size, leaf_hash, proof, merkle.EMPTY_ROOT)
    assert not merkle.verify_inclusion(leaf - 1, size, leaf_hash, [*proof, root], root)
    assert not merkle.verify_inclusion(leaf - 1, size, leaf_hash, proof[:-1], root)
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        assert not merkle.verify_inclusion(leaf - 1, size, leaf_hash, flipped, root)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_of_the_rfc_vectors(old, new, path):
    proof = merkle.consistency_proof(old, new, NODES)
    assert [p.hex() for p in proof] == path
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    assert not merkle.verify_consistency(old, new, new_root, old_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not merkle.verify_consistency(old, new, old_root, new_root, [*proof, old_root])
    assert not merkle.verify_consistency(old, new, old_root, new_root, [])
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        assert not merkle.verify_consistency(old, new, old_root, new_root, flipped)


def test_roots_and_proofs_agree_with_pymerkle_on_every_size_up_to_70():
    data = [f"event {i}".encode() for i in range(70)]
    nodes = in_memory([merkle.leaf_hash(d) for d in data])
    other = InmemoryTree(algorithm="sha256")
    for d in data:
        other.append_entry(d)
    for size in range(1, 71):
        assert merkle.root(size, nodes) == other.get_root(size)
        for index in range(0, size, 7):
            ours = merkle.inclusion_proof(index, size, nodes)
            # pymerkle's path starts with the leaf itself; the RFC's audit path does not.
            theirs = other.prove_inclusion(index + 1, size).path
            assert ours == theirs[1:]
        for old in range(1, size + 1, 5):
            proof = merkle.consistency_proof(old, size, nodes)
            assert merkle.verify_consistency(
                old, size, other.get_root(old), other.get_root(size), proof
            )


def test_a_compact_range_keeps_the_root_and_only_the_right_edge():
    tree = merkle.CompactRange()
    for size, leaf in enumerate(LEAVES, start=1):
        tree.append(merkle.leaf_hash(leaf))
        assert tree.root().hex() == ROOTS[size - 1]
        assert len(tree.edge) == bin(size).count("1")
    resumed = merkle.CompactRange(
        6, [NODES(level, index) for level, index in merkle.CompactRange.edge_nodes(6)]
    )
    resumed.append(merkle.leaf_hash(LEAVES[6]))
    resumed.append(merkle.leaf_hash(LEAVES[7]))
    assert resumed.root().hex() == ROOTS[7]


# -- signed notes ------------------------------------------------------------------------

GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]


def test_the_published_note_opens_and_signing_its_text_gives_it_byte_for_byte():
    verifier = Verifier.parse(GO_VERIFIER)
    assert open_note(GO_NOTE, verifier) == GO_TEXT
    signer = signer_from_seed("PeterNeumann", GO_SEED)
    assert str(signer.verifier) == GO_VERIFIER
    assert signer.sign(GO_TEXT) == GO_NOTE  # Ed25519 is deterministic


def test_a_note_altered_or_signed_by_another_key_does_not_open():
    verifier = Verifier.parse(GO_VERIFIER)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("answer", "Answer"), verifier)
    stranger = signer_from_seed("PeterNeumann", bytes(32))
    with pytest.raises(NoteError, match="not signed by"):
        open_note(stranger.sign(GO_TEXT), verifier)
    with pytest.raises(NoteError):
        Verifier.parse(GO_VERIFIER.replace("c74f20a3", "c74f20a4"))


def test_a_checkpoint_round_trips_and_names_its_origin():
    signer = signer_from_seed("mappa-record.test/log", bytes(range(32)))
    checkpoint = Checkpoint("mappa-record.test/log", 8, bytes.fromhex(ROOTS[7]))
    note = signer.sign(checkpoint.text())
    assert note.startswith("mappa-record.test/log\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqt")
    assert open_checkpoint(note, signer.verifier) == checkpoint
    with pytest.raises(NoteError, match="not mappa-record.test/other"):
        other = signer_from_seed("mappa-record.test/other", bytes(range(32)))
        open_checkpoint(other.sign(checkpoint.text()), other.verifier)


def test_a_verifier_key_whose_base64_holds_a_plus_parses():
    seed = next(
        bytes([i]) * 32
        for i in range(256)
        if str(signer_from_seed("k", bytes([i]) * 32).verifier).count("+") > 2
    )
    verifier = signer_from_seed("k", seed).verifier
    assert Verifier.parse(str(verifier)) == verifier
