"""Selector: intra-satellite de-duplication of signatures.

Positions with identical signatures form a cluster; its representative is the
position with the smallest raster index (so a representative always precedes
the positions that copy it in raster decoding order). Strategy ``original``
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
    unique_positions: np.ndarray  # (U,) ascending: positions that are their own representative

    @property
    def unique_signatures(self) -> np.ndarray:
        return self.signatures[self.unique_positions]


def select(signatures: np.ndarray) -> Selection:
    """Cluster identical signatures; the smallest spatial index represents each cluster."""
    _, first, inverse = np.unique(signatures, return_index=True, return_inverse=True)
    representative = first[inverse.reshape(-1)].astype(np.int64)
    unique_positions = np.sort(first).astype(np.int64)
    return Selection(np.asarray(signatures, dtype=np.uint64), representative, unique_positions)


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
