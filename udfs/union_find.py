"""Connected components over duplicate pairs (union-find with path halving and union by size)."""
from __future__ import annotations

from collections.abc import Hashable, Iterable


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}

    def find(self, x: Hashable) -> Hashable:
        parent = self.parent
        if x not in parent:
            parent[x] = x
            self.size[x] = 1
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def components(pairs: Iterable[tuple[Hashable, Hashable]]) -> dict[Hashable, Hashable]:
    """member -> component root, for every member of any pair (chains collapse into one)."""
    uf = UnionFind()
    for a, b in pairs:
        uf.union(a, b)
    return {x: uf.find(x) for x in uf.parent}


def representatives(pairs: Iterable[tuple[Hashable, Hashable]], rank: dict) -> dict[Hashable, Hashable]:
    """member -> the member of its component with the smallest rank[] (ties: smallest id)."""
    comp = components(pairs)
    best: dict[Hashable, Hashable] = {}
    for member, root in comp.items():
        cur = best.get(root)
        if cur is None or (rank[member], member) < (rank[cur], cur):
            best[root] = member
    return {member: best[root] for member, root in comp.items()}
