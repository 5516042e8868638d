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

A variable-rate model (:mod:`dlrc_agents.codecs.variable_rate`) has the rate knob it was trained for: its
continuous level. Within its trained range the level is bisected at step 1 (the gains do the work the
step does for a fixed model, but learned); beyond it, the end level and a step. The stream then carries
the level as a u16 (:func:`level_code`) instead of the ladder index: 4 side bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .hyperprior import decode_hyper, hyper_analysis
from .overread import padded
from .variable_rate import lambda_of_level

#: log2 of the step is stored in units of 1/STEP_RESOLUTION, offset so that the code is a u16.
STEP_RESOLUTION = 1024
STEP_OFFSET = 32768
#: The step's range searched [log2]: 1/16 (a rate far above the model's own) to 64 (far below).
LOG2_STEP_RANGE = (-4.0, 6.0)
#: Bytes a rate-controlled stream carries beyond its y and z strings: the step code (u16) and the
#: model's index in the λ ladder (u8).
SIDE_BYTES = 3
#: ... and for a variable-rate model: the step code (u16) and the level code (u16).
VARIABLE_RATE_SIDE_BYTES = 4
#: The level code's full scale: level = code · (L − 1) / LEVEL_CODES.
LEVEL_CODES = 65535


def level_code(level: float, levels: int) -> int:
    """The u16 code of a level in [0, levels − 1]."""
    if not 0.0 <= level <= levels - 1:
        raise ValueError(f"rate level {level:g} outside [0, {levels - 1}]")
    return int(round(level / (levels - 1) * LEVEL_CODES))


def level_of(code: int, levels: int) -> float:
    """The level a code stands for (what both ends use)."""
    return int(code) * (levels - 1) / LEVEL_CODES


def _variable_rate(codec) -> bool:
    return getattr(codec, "lambdas", None) is not None


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
    level_code: int | None = None  # variable-rate models: the level coded at (u16), else None

    @property
    def bytes(self) -> int:
        side = SIDE_BYTES if self.level_code is None else VARIABLE_RATE_SIDE_BYTES
        return len(self.y_string) + len(self.z_string) + side

    @property
    def bpp(self) -> float:
        return 8.0 * self.bytes / self.pixels


def _check_family(codec) -> None:
    if codec.family != "hyperprior":
        raise ValueError(f"rate control: {codec.architecture} is a context model; the quantisation step is "
                         "implemented for the hyperprior family (bmshj2018-hyperprior, mbt2018-mean)")


@torch.no_grad()
def analyse(codec, x: torch.Tensor, level_code: int | None = None) -> tuple:
    """(y, z string, z shape, σ, μ) of an image (1, C, H, W) in [0, 1]: the part that no step changes.
    A variable-rate codec is analysed at ``level_code`` (default: its own level)."""
    _check_family(codec)
    if _variable_rate(codec):
        return _analyse_gained(codec, _ungained_analysis(codec, x), level_code)
    lat = hyper_analysis(codec.model, codec.model.g_a(x), codec.means)
    return lat.y, lat.z_strings, lat.z_shape, lat.scales, lat.means


def _ungained_analysis(codec, x: torch.Tensor) -> torch.Tensor:
    """A variable-rate model's analysis before its gain (the same at every level: computed once)."""
    return torch.nn.Sequential.forward(codec.model.g_a, x)


def _level(codec, code: int | None) -> tuple[float, int]:
    levels = codec.model.levels
    code = level_code(codec.model.level, levels) if code is None else int(code)
    return level_of(code, levels), code


def _analyse_gained(codec, ungained: torch.Tensor, code: int | None) -> tuple:
    level, _ = _level(codec, code)
    y = ungained * codec.model.gain.vector(level).reshape(1, -1, 1, 1)
    lat = hyper_analysis(codec.model, y, codec.means)
    return lat.y, lat.z_strings, lat.z_shape, lat.scales, lat.means


@torch.no_grad()
def code_at_step(codec, analysed: tuple, code: int, ladder_index: int = 0, pixels: int | None = None,
                 level: int | None = None) -> RateCoded:
    """The y string of an analysed image at the step of ``code`` (a variable-rate codec: analysed at the
    level code ``level``, default its own level)."""
    if _variable_rate(codec):
        level = _level(codec, level)[1]
    y, z_string, z_shape, scales, means = analysed
    s = step_of(code)
    gc = codec.model.gaussian_conditional
    indexes = gc.build_indexes(scales / s)
    y_string = gc.compress(y / s, indexes, means=None if means is None else means / s)[0]
    pixels = pixels if pixels is not None else 256 * y.shape[-2] * y.shape[-1]
    lmbda = codec.lmbda if level is None else lambda_of_level(codec.lambdas, level_of(level, codec.model.levels))
    return RateCoded(lmbda, ladder_index, code, y_string, z_string, tuple(z_shape), tuple(y.shape[1:]), pixels,
                     level)


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
    if coded.level_code is not None:  # variable rate: the inverse gain of the stream's level, then synthesis
        if not _variable_rate(codec):
            raise ValueError(f"a variable-rate stream (level code {coded.level_code}) given to the fixed-λ "
                             f"{codec.architecture} ({codec.source})")
        level = level_of(coded.level_code, codec.model.levels)
        y_hat = q * s * codec.model.inverse_gain.vector(level).reshape(1, -1, 1, 1)
        return torch.nn.Sequential.forward(codec.model.g_s, y_hat).clamp_(0, 1)
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
    if any(_variable_rate(c) for c in ladder):  # one network: its level is the knob (every entry shares it)
        return _code_at_rate_variable(ladder[0], x, target_bpp, tolerance, max_iterations)
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
    return _bisect(lambda c: code_at_step(codec, a, c, k, pixels), lo, hi, target_bpp, tolerance, max_iterations,
                   native[k], f"{codec.architecture} λ={codec.lmbda}")


def _bisect(code_of, lo: int, hi: int, target_bpp: float, tolerance: float, max_iterations: int, best: RateCoded,
            label: str) -> RateCoded:
    """Bisect an integer code in [lo, hi] whose rate falls from lo to hi until within tolerance."""
    for _ in range(max_iterations):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        c = code_of(mid)
        if abs(c.bpp / target_bpp - 1) < abs(best.bpp / target_bpp - 1):
            best = c
        if abs(c.bpp / target_bpp - 1) <= tolerance:
            return c
        lo, hi = (mid, hi) if c.bpp > target_bpp else (lo, mid)
    if abs(best.bpp / target_bpp - 1) > tolerance:
        raise ValueError(f"target_bpp {target_bpp:g}: the nearest rate reached is {best.bpp:.4f} bpp ({label}); "
                         f"outside ±{100 * tolerance:g} %")
    return best


@torch.no_grad()
def _code_at_rate_variable(codec, x: torch.Tensor, target_bpp: float, tolerance: float,
                           max_iterations: int) -> RateCoded:
    """A variable-rate codec at ``target_bpp``: its level bisected at step 1 within its trained range,
    else its end level and a step (every byte counted: 4 side bytes)."""
    pixels = x.shape[-2] * x.shape[-1]
    ungained = _ungained_analysis(codec, x)
    unit = STEP_OFFSET  # the code of step 1
    analysed = {}  # level code -> analysis: the step bisections beyond the range reuse their end level's

    def at(level: int, step: int = unit) -> RateCoded:
        if level not in analysed:
            analysed[level] = _analyse_gained(codec, ungained, level)
        return code_at_step(codec, analysed[level], step, 0, pixels, level)

    low, high = at(0), at(LEVEL_CODES)  # the lowest and the highest rate of the trained range
    label = f"{codec.architecture} levels 0–{codec.model.levels - 1}"
    for end in (low, high):
        if abs(end.bpp / target_bpp - 1) <= tolerance:
            return end
    if low.bpp < target_bpp < high.bpp:  # within the range: the level (rate rises with it)
        return _bisect(lambda c: at(LEVEL_CODES - c), 0, LEVEL_CODES, target_bpp, tolerance, max_iterations,
                       low if abs(low.bpp - target_bpp) < abs(high.bpp - target_bpp) else high, label)
    if target_bpp >= high.bpp:  # above: the highest level and a finer step
        lo, hi = int(LOG2_STEP_RANGE[0] * STEP_RESOLUTION + STEP_OFFSET), unit
        return _bisect(lambda c: at(LEVEL_CODES, c), lo, hi, target_bpp, tolerance, max_iterations, high, label)
    lo, hi = unit, int(LOG2_STEP_RANGE[1] * STEP_RESOLUTION + STEP_OFFSET)  # below: the lowest level, coarser
    return _bisect(lambda c: at(0, c), lo, hi, target_bpp, tolerance, max_iterations, low, label)
