"""Filter: entropy-code only the retained latent vectors, with the full latent's Gaussian parameters.

For the hyperprior family (``bmshj2018-hyperprior``: σ from z; ``mbt2018-mean``:
μ and σ from z) the entropy parameters of ŷ depend on ẑ alone, so the retained
positions are gathered, coded with CompressAI's rANS ``GaussianConditional`` using
the (σ, μ) predicted for those positions, and everything else is left to copies.
ŷ is the dequantised value round(y - μ) + μ (μ = 0 without means), computed by the
same tensor operations on board and on the ground, so copies are bit-exact.
"""

from __future__ import annotations

import numpy as np
import torch

from ..codecs.hyperprior import HyperLatent
from ..codecs.overread import padded


def _gather(t: torch.Tensor | None, positions: np.ndarray):
    if t is None:
        return None
    C = t.shape[1]
    return t.reshape(1, C, -1)[:, :, torch.as_tensor(positions, dtype=torch.long)].unsqueeze(-1)  # (1, C, n, 1)


def encode_positions(model, latent: HyperLatent, positions: np.ndarray) -> bytes:
    """rANS string of ŷ at ``positions`` (raster indices), coded with their own (σ, μ)."""
    if len(positions) == 0:
        return b""
    gc = model.gaussian_conditional
    scales = _gather(latent.scales, positions)
    indexes = gc.build_indexes(scales)
    return gc.compress(_gather(latent.y, positions), indexes, means=_gather(latent.means, positions))[0]


def decode_positions(model, y_string: bytes, scales: torch.Tensor, means: torch.Tensor | None, positions: np.ndarray) -> torch.Tensor:
    """Dequantised ŷ (C, n) at ``positions`` from the rANS string."""
    C = scales.shape[1]
    if len(positions) == 0:
        return torch.zeros(C, 0)
    gc = model.gaussian_conditional
    indexes = gc.build_indexes(_gather(scales, positions))
    values = gc.decompress([padded(y_string, C * len(positions))], indexes, means=_gather(means, positions))
    return values.reshape(C, -1)
