"""RFC 6962 Merkle trees (RFC 9162 section 2.1): hashes, proofs and their verification.

The tree's nodes are read through a `Nodes` function, so the same code proves from nodes
kept in memory (tests, a witness) or in PostgreSQL (service/transparency.py): a *complete*
node is named (level, index), covering leaves [index * 2^level, (index + 1) * 2^level).
Every proof of RFC 6962 is made of complete nodes and of the roots of ranges ending at the
tree's size, which are folded here from O(log n) complete nodes; `needed` lists the complete
nodes a proof will read, so a store can fetch them in one query before proving.

Checked against the RFC's published vectors and against pymerkle (tests/unit/test_merkle.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Nodes = Callable[[int, int], bytes]  # (level, index) -> the complete node's hash
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(start: int, end: int, node: Nodes) -> bytes:
    """MTH(D[start:end]) for a range whose left edge is aligned as RFC 6962's splits give."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return node(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(subtree_root(start, start + k, node), subtree_root(start + k, end, node))


def root(size: int, node: Nodes) -> bytes:
    return subtree_root(0, size, node)


def inclusion_proof(index: int, size: int, node: Nodes) -> list[bytes]:
    """PATH(index, D[0:size]): the audit path of leaf `index`, from the leaf upwards."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            path.append(subtree_root(start, start + k, node))
            start += k
    path.reverse()
    return path


def consistency_proof(old: int, new: int, node: Nodes) -> list[bytes]:
    """PROOF(old, D[0:new]): that the tree of size `new` extends the one of size `old`."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    proof: list[bytes] = []
    start, end, complete = 0, new, True
    m = old
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k, node))
            m -= k
            start += k
            complete = False
    if not complete:
        proof.append(subtree_root(start, end, node))
    proof.reverse()
    return proof


def needed(proof: Callable[[Nodes], object]) -> set[tuple[int, int]]:
    """The complete nodes `proof(node)` reads: run it once on placeholders."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return EMPTY_ROOT

    proof(record)
    return wanted


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a leaf hash and its audit path give (RFC 9162 2.1.3.2); ValueError if the
    path has the wrong length for the index and size."""
    if not 0 <= index < size:
        raise ValueError("the leaf is not in the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("the proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_: bytes
) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, proof) == root_
    except ValueError:
        return False


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree (new, new_root) extends (old, old_root) (RFC 9162
    2.1.4.2)."""
    if old > new or old < 0:
        return False
    if old == new:
        return old_root == new_root and not proof
    if old == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node itself
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class CompactRange:
    """The complete nodes along the right edge of a growing tree: append leaves one by one,
    learn each complete node as it forms, and the root at any size, in O(log n) memory."""

    def __init__(self, size: int = 0, edge: Iterable[bytes] = ()) -> None:
        self.size = size
        # One hash per set bit of `size`, largest subtree first.
        self.edge = list(edge)
        if len(self.edge) != bin(size).count("1"):
            raise ValueError("the edge does not match the size")

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; the complete nodes it forms: (level, index, hash), the leaf first."""
        formed = [(0, self.size, leaf)]
        level, node, index = 0, leaf, self.size
        while index & 1:
            node = node_hash(self.edge.pop(), node)
            level, index = level + 1, index >> 1
            formed.append((level, index, node))
        self.edge.append(node)
        self.size += 1
        return formed

    def root(self) -> bytes:
        if not self.edge:
            return EMPTY_ROOT
        r = self.edge[-1]
        for left in reversed(self.edge[:-1]):
            r = node_hash(left, r)
        return r

    @staticmethod
    def edge_nodes(size: int) -> list[tuple[int, int]]:
        """The complete nodes (level, index) a range of `size` leaves keeps, largest first."""
        nodes, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append((level, start >> level))
                start += 1 << level
        return nodes
