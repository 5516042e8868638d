"""Filter: entropy-code only the retained latent vectors, with the full latent's Gaussian parameters.

For the hyperprior family (``bmshj2018-hyperprior``: σ from z; ``mbt2018-mean``:
μ and σ from z) the entropy parameters of ŷ depend on ẑ alone, so the retained
positions are gathered, coded with CompressAI's rANS ``GaussianConditional`` using
the (σ, μ) predicted for those positions, and everything else is left to copies.
ŷ is the dequantised value round(y - μ) + μ (μ = 0 without means), computed by the
same tensor operations on board and on the ground, so copies are bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..codecs.hyperprior import code_z, decode_z, entropy_parameters  # noqa: F401 (their home is the codec)
from ..codecs.overread import padded


@dataclass
class HyperLatent:
    """On-board analysis of one image: y, the coded hyperprior, and the entropy parameters of ŷ."""

    y: torch.Tensor  # (1, C, H, W)
    z_strings: bytes
    z_shape: tuple[int, int]
    scales: torch.Tensor  # (1, C, H, W)
    means: torch.Tensor | None  # (1, C, H, W) or None
    y_hat: torch.Tensor  # (1, C, H, W) dequantised


def hyper_analysis(model, y: torch.Tensor, means: bool) -> HyperLatent:
    """Code z from y and derive ŷ's parameters (the decoder-side ẑ, so both ends agree)."""
    z_string, z_shape, z_hat = code_z(model, y if means else torch.abs(y))
    scales, mu = entropy_parameters(model, z_hat, means)
    y_hat = model.gaussian_conditional.quantize(y, "dequantize", mu)
    return HyperLatent(y, z_string, z_shape, scales, mu, y_hat)


def decode_hyper(model, z_string: bytes, z_shape, means: bool):
    """Ground side: (scales, means) of ŷ from the z string alone."""
    return entropy_parameters(model, decode_z(model, z_string, z_shape), means)


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
