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

from .selector import Selection, select


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
    """
    order = priority_order(signatures, priority)
    sel: dict[object, Selection] = {s: select(signatures[s], decoding) for s in order}
    owned_sigs = np.zeros(0, dtype=np.uint64)  # signatures retained so far, sorted
    owned_dense = np.zeros(0, dtype=np.int64)  # their dense numbers, same order
    retained, offsets = {}, {}
    total = 0
    for sat in order:
        uniq_sig = sel[sat].unique_signatures  # in raster order of the representatives
        keep = ~np.isin(uniq_sig, owned_sigs, assume_unique=True)
        retained[sat], offsets[sat] = sel[sat].unique_positions[keep], total
        new_sigs = uniq_sig[keep]
        new_dense = total + np.arange(len(new_sigs), dtype=np.int64)
        total += len(new_sigs)
        merged = np.concatenate([owned_sigs, new_sigs])
        idx = np.argsort(merged, kind="stable")
        owned_sigs, owned_dense = merged[idx], np.concatenate([owned_dense, new_dense])[idx]
    assignment = {}
    for sat in order:
        s = sel[sat]
        rep_sig = s.signatures[s.representative]  # signature of each position's local representative
        assignment[sat] = owned_dense[np.searchsorted(owned_sigs, rep_sig)]
    return Arbitration(order, retained, offsets, assignment, total)


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
