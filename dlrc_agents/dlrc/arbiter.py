"""Arbiter: inter-satellite de-duplication by priority, and the dense assignment map.

Every satellite receives every other satellite's signatures (all H·W of them, in
raster order) and runs :func:`arbitrate` on the same inputs, so all satellites
reach the same decisions without further messages:

- a locally unique signature is *retained* by the highest-priority satellite
  that holds it and *discarded* by every other;
- dense numbering: satellites in priority order, each satellite's retained
  representatives numbered in decoding order (raster order except for ELIC's
  checkerboard, see :func:`.context.decode_order`), starting at the total retained
  by all higher-priority satellites;
- the assignment map A_s (H·W,) holds, for every position of satellite s, the
  dense number of the representative it is reconstructed from.

Priority is the satellite id by default (lower id first); any other order can
be passed (e.g. link quality or energy state, as the paper suggests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class Arbitration:
    """Decisions for all satellites, identical wherever computed."""

    order: list  # satellite ids, highest priority first
    retained: dict  # sat -> (R_s,) positions it codes, in decoding order
    offsets: dict  # sat -> first dense number of its retained representatives
    assignment: dict  # sat -> (H·W,) int64 dense numbers
    total: int  # number of globally unique representatives

    def map_bits_raw(self) -> int:
        """Fixed-width size of all maps: each entry in the minimum width that holds every index."""
        width = max(1, int(np.ceil(np.log2(max(self.total, 2)))))
        return width * sum(a.size for a in self.assignment.values())


def priority_order(satellites, priority=None) -> list:
    """Satellite ids highest priority first: by ``priority[sat]`` (lower first) or by id."""
    sats = list(satellites)
    if priority is None:
        return sorted(sats)
    return sorted(sats, key=lambda s: (priority[s], s))


def arbitrate(signatures: dict, priority: dict | None = None, decoding: np.ndarray | None = None) -> Arbitration:
    """Global de-duplication from every satellite's raster-order signatures {sat: (H·W,) uint64}.

    ``decoding``: the raster positions in the codec's decoding order (None: raster order).

    All satellites' signatures, in priority order and each in decoding order, are one sequence;
    a signature's representative is its first occurrence there, and the dense numbers count
    those first occurrences in sequence order (satellites by priority, each in decoding order).
    One sort (``np.unique``) does it for all satellites: every satellite runs the Arbiter on
    every set, so it is on the on-board time budget (a loop over satellites cost 6× as much).
    """
    order = priority_order(signatures, priority)
    if not order:
        return Arbitration([], {}, {}, {}, 0)
    sigs = [np.asarray(signatures[s], dtype=np.uint64).reshape(-1) for s in order]
    raster = decoding is None or np.array_equal(decoding, np.arange(len(decoding)))
    steps = [np.arange(v.size, dtype=np.int64) if raster else np.asarray(decoding, dtype=np.int64) for v in sigs]
    sizes = np.array([v.size for v in sigs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    sequence = np.concatenate(sigs if raster else [v[o] for v, o in zip(sigs, steps)])
    _, first, inverse = np.unique(sequence, return_index=True, return_inverse=True)
    first_sorted = np.sort(first)  # the representatives in sequence order
    dense_of_unique = np.empty(first.size, dtype=np.int64)
    dense_of_unique[np.argsort(first)] = np.arange(first.size, dtype=np.int64)
    dense = dense_of_unique[inverse.reshape(-1)]
    bounds = np.searchsorted(first_sorted, starts)
    retained, offsets, assignment = {}, {}, {}
    for i, sat in enumerate(order):
        retained[sat] = steps[i][first_sorted[bounds[i]:bounds[i + 1]] - starts[i]]
        offsets[sat] = int(bounds[i])
        if raster:
            assignment[sat] = dense[starts[i]:starts[i + 1]]
        else:
            assignment[sat] = np.empty(sizes[i], dtype=np.int64)
            assignment[sat][steps[i]] = dense[starts[i]:starts[i + 1]]
    return Arbitration(order, retained, offsets, assignment, int(first.size))


def reference_map(arb: Arbitration, sat, positions: int) -> np.ndarray:
    """Satellite ``sat``'s map as self-describing references ``owner · positions + q`` (int64, (H·W,)).

    Each position points at the satellite that codes its vector (``owner``, a satellite id)
    and the raster position ``q`` there. Unlike the dense map, it needs no numbering shared
    with other satellites, so a satellite whose view of its peers is incomplete (a peer
    timed out) still produces a stream the ground can decode: it only points at satellites
    it heard from, which are of higher priority and code (or copy) that position.
    """
    starts = np.array([arb.offsets[u] for u in arb.order])
    dense = arb.assignment[sat]
    owner_rank = np.searchsorted(starts, dense, side="right") - 1
    out = np.empty(dense.shape, dtype=np.int64)
    for rank, u in enumerate(arb.order):
        hit = owner_rank == rank
        if hit.any():
            out[hit] = int(u) * positions + arb.retained[u][dense[hit] - arb.offsets[u]]
    return out
