"""Rate control for the hyperprior codecs: hit a requested bpp, as JPEG 2000's rate allocation does.

A fixed-λ model has one rate per image. Two knobs make it continuous:

- the λ ladder: the model whose own rate is the smallest at or above the target (the coarsest that
  can still reach it by coarsening), else the finest;
- a quantisation step ``s`` on the latent (the bin size of Choi et al., ICCV 2019, "Variable rate deep
  image compression with a conditional autoencoder"; here on models trained at one bin size, without
  their conditional training): the encoder codes ``q = round((y − μ)/s)`` with CompressAI's Gaussian
  conditional at scale ``σ/s`` (rANS, the model's own scale table), the decoder rebuilds
  ``ŷ = s·q + μ`` and synthesises. ``s = 1`` is CompressAI's own ``compress()``, byte for byte.

The step travels as a 16-bit code of log2(s) in steps of 1/1024 (:func:`step_code`), so encoder and
decoder use the same float; with the model's index in the ladder (1 byte) that is 3 bytes a stream,
counted in every rate reported here. :func:`code_at_rate` bisects the step in log2 until the whole
stream is within ``tolerance`` of the target. Written by hand: CompressAI has no rate control for
fixed-λ models; the entropy coding itself is CompressAI's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .hyperprior import decode_hyper, hyper_analysis
from .overread import padded

#: log2 of the step is stored in units of 1/STEP_RESOLUTION, offset so that the code is a u16.
STEP_RESOLUTION = 1024
STEP_OFFSET = 32768
#: The step's range searched [log2]: 1/16 (a rate far above the model's own) to 64 (far below).
LOG2_STEP_RANGE = (-4.0, 6.0)
#: Bytes a rate-controlled stream carries beyond its y and z strings: the step code (u16) and the
#: model's index in the λ ladder (u8).
SIDE_BYTES = 3


def step_code(step: float) -> int:
    """The u16 code of a step (log2 in 1/1024 steps)."""
    code = int(round(math.log2(step) * STEP_RESOLUTION)) + STEP_OFFSET
    if not 0 <= code < 65536:
        raise ValueError(f"quantisation step {step:g} out of range")
    return code


def step_of(code: int) -> float:
    """The step a code stands for (what both ends use)."""
    return 2.0 ** ((int(code) - STEP_OFFSET) / STEP_RESOLUTION)


@dataclass
class RateCoded:
    """One image coded at a step: its strings and what the decoder needs besides them."""

    lmbda: float | None
    ladder_index: int
    step_code: int
    y_string: bytes
    z_string: bytes
    z_shape: tuple[int, int]
    y_shape: tuple[int, int, int]
    pixels: int

    @property
    def bytes(self) -> int:
        return len(self.y_string) + len(self.z_string) + SIDE_BYTES

    @property
    def bpp(self) -> float:
        return 8.0 * self.bytes / self.pixels


def _check_family(codec) -> None:
    if codec.family != "hyperprior":
        raise ValueError(f"rate control: {codec.architecture} is a context model; the quantisation step is "
                         "implemented for the hyperprior family (bmshj2018-hyperprior, mbt2018-mean)")


@torch.no_grad()
def analyse(codec, x: torch.Tensor) -> tuple:
    """(y, z string, z shape, σ, μ) of an image (1, C, H, W) in [0, 1]: the part that no step changes."""
    _check_family(codec)
    lat = hyper_analysis(codec.model, codec.model.g_a(x), codec.means)
    return lat.y, lat.z_strings, lat.z_shape, lat.scales, lat.means


@torch.no_grad()
def code_at_step(codec, analysed: tuple, code: int, ladder_index: int = 0, pixels: int | None = None) -> RateCoded:
    """The y string of an analysed image at the step of ``code``."""
    y, z_string, z_shape, scales, means = analysed
    s = step_of(code)
    gc = codec.model.gaussian_conditional
    indexes = gc.build_indexes(scales / s)
    y_string = gc.compress(y / s, indexes, means=None if means is None else means / s)[0]
    pixels = pixels if pixels is not None else 256 * y.shape[-2] * y.shape[-1]
    return RateCoded(codec.lmbda, ladder_index, code, y_string, z_string, tuple(z_shape), tuple(y.shape[1:]), pixels)


@torch.no_grad()
def decode(codec, coded: RateCoded) -> torch.Tensor:
    """x̂ (1, C, H, W) in [0, 1] from the strings, the step code and the shapes alone."""
    _check_family(codec)
    s = step_of(coded.step_code)
    scales, means = decode_hyper(codec.model, coded.z_string, coded.z_shape, codec.means)
    gc = codec.model.gaussian_conditional
    indexes = gc.build_indexes(scales / s)
    symbols = math.prod(coded.y_shape)
    q = gc.decompress([padded(coded.y_string, symbols)], indexes, means=None if means is None else means / s)
    return codec.model.g_s(q * s).clamp_(0, 1)


@torch.no_grad()
def code_at_rate(ladder: list, x: torch.Tensor, target_bpp: float, tolerance: float = 0.02,
                 max_iterations: int = 40) -> RateCoded:
    """``x`` coded within ``tolerance`` (relative) of ``target_bpp``, every byte counted.

    ``ladder``: the codecs of one architecture at several λ, in any order. The model is the one whose
    own rate (step 1) is the smallest at or above the target, else the one with the highest rate; the
    step is bisected in log2 (a larger step, fewer bits). Raises ``ValueError`` when the target lies
    outside what the step range reaches."""
    if target_bpp <= 0:
        raise ValueError("target_bpp must be > 0")
    pixels = x.shape[-2] * x.shape[-1]
    ladder = sorted(ladder, key=lambda c: c.lmbda or 0.0)
    analysed = [analyse(c, x) for c in ladder]
    native = [code_at_step(c, a, STEP_OFFSET, i, pixels) for i, (c, a) in enumerate(zip(ladder, analysed))]
    above = [i for i, n in enumerate(native) if n.bpp >= target_bpp]
    k = min(above, key=lambda i: native[i].bpp) if above else max(range(len(native)), key=lambda i: native[i].bpp)
    codec, a = ladder[k], analysed[k]
    if abs(native[k].bpp / target_bpp - 1) <= tolerance:
        return native[k]
    lo = (LOG2_STEP_RANGE[0] if native[k].bpp < target_bpp else 0.0) * STEP_RESOLUTION + STEP_OFFSET
    hi = (0.0 if native[k].bpp < target_bpp else LOG2_STEP_RANGE[1]) * STEP_RESOLUTION + STEP_OFFSET
    lo, hi = int(lo), int(hi)  # codes: bpp(lo) >= target >= bpp(hi)
    best = native[k]
    for _ in range(max_iterations):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        c = code_at_step(codec, a, mid, k, pixels)
        if abs(c.bpp / target_bpp - 1) < abs(best.bpp / target_bpp - 1):
            best = c
        if abs(c.bpp / target_bpp - 1) <= tolerance:
            return c
        lo, hi = (mid, hi) if c.bpp > target_bpp else (lo, mid)
    if abs(best.bpp / target_bpp - 1) > tolerance:
        raise ValueError(f"target_bpp {target_bpp:g}: the nearest rate reached is {best.bpp:.4f} bpp "
                         f"({codec.architecture} λ={codec.lmbda}); outside ±{100 * tolerance:g} %")
    return best
