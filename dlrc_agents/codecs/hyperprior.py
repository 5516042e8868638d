"""The hyperprior as both ends compute it: z coded through the entropy bottleneck, and ŷ's entropy
parameters from the decoder-side ẑ (CompressAI's compress()/decompress() steps, taken apart so that
DLRC and rate control can code ŷ their own way with the model's own parameters)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .overread import padded


def entropy_parameters(model, z_hat: torch.Tensor, means: bool):
    """(scales, means) of ŷ from ẑ, exactly as CompressAI's compress()/decompress() compute them."""
    params = model.h_s(z_hat)
    if means:
        scales, mu = params.chunk(2, 1)
        return scales, mu
    return params, None


def code_z(model, features: torch.Tensor) -> tuple[bytes, tuple[int, int], torch.Tensor]:
    """z = h_a(features) through the entropy bottleneck: (z string, z shape, ẑ as the ground decodes it)."""
    z = model.h_a(features)
    z_strings = model.entropy_bottleneck.compress(z)
    z_shape = tuple(z.size()[-2:])
    return z_strings[0], z_shape, model.entropy_bottleneck.decompress(z_strings, z_shape)


def decode_z(model, z_string: bytes, z_shape) -> torch.Tensor:
    """Ground side: ẑ from the z string (padded: see :mod:`dlrc_agents.codecs.overread`)."""
    symbols = model.entropy_bottleneck.channels * int(z_shape[0]) * int(z_shape[1])
    return model.entropy_bottleneck.decompress([padded(z_string, symbols)], tuple(z_shape))


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
