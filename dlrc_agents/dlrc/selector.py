"""Selector: intra-satellite de-duplication of signatures.

Positions with identical signatures form a cluster; its representative is the
position decoded first: the smallest raster index for the hyperprior and
autoregressive codecs, and for ELIC's checkerboard the first anchor ((h + w) even)
in raster order, else the first non-anchor (see :func:`.context.decode_order`). So a
representative always precedes the positions that copy it in the ground's decoding
order, and a copy never points forward into the context model's causal order. Strategy ``original``
keeps the representative's own latent vector; ``mean`` replaces every member
of a cluster by the cluster mean before entropy modelling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("original", "mean")


@dataclass(frozen=True)
class Selection:
    """Local clustering of one satellite's H·W latent positions (raster order)."""

    signatures: np.ndarray  # (H·W,) uint64, all positions
    representative: np.ndarray  # (H·W,) int64: position of each position's local representative
    unique_positions: np.ndarray  # (U,) in decoding order: positions that are their own representative

    @property
    def unique_signatures(self) -> np.ndarray:
        return self.signatures[self.unique_positions]


def select(signatures: np.ndarray, order: np.ndarray | None = None) -> Selection:
    """Cluster identical signatures; the position decoded first represents each cluster.

    ``order`` lists the raster positions in decoding order (None: raster order, i.e. the
    smallest spatial index represents its cluster, as in the paper).
    """
    signatures = np.asarray(signatures, dtype=np.uint64)
    order = np.arange(signatures.size, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    _, first, inverse = np.unique(signatures[order], return_index=True, return_inverse=True)
    representative = np.empty(signatures.size, dtype=np.int64)
    representative[order] = order[first[inverse.reshape(-1)]]
    unique_positions = order[np.sort(first)].astype(np.int64)
    return Selection(signatures, representative, unique_positions)


def apply_strategy(latent: np.ndarray, selection: Selection, strategy: str) -> np.ndarray:
    """Latent (C, H, W) after the representative strategy ('original': unchanged; 'mean': cluster means)."""
    if strategy == "original":
        return latent
    if strategy != "mean":
        raise ValueError(f"dlrc.representative: unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    C = latent.shape[0]
    flat = latent.reshape(C, -1).astype(np.float64)
    n = flat.shape[1]
    sums = np.zeros((C, n))
    np.add.at(sums.T, selection.representative, flat.T)
    counts = np.bincount(selection.representative, minlength=n).astype(np.float64)
    means = sums[:, selection.representative] / counts[selection.representative]
    return means.reshape(latent.shape).astype(latent.dtype)
