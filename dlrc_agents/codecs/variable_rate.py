"""One network for a whole λ range: the gain units of Cui et al. (CVPR 2021, "Asymmetric gained deep
image compression with continuous rate adaptation") on CompressAI's scale hyperprior.

The analysis transform's output y is multiplied, channel by channel, by a gain vector of the rate
level before quantisation, and ŷ by an inverse-gain vector before synthesis (asymmetric: the two are
learned apart). Level ``i`` of ``L`` is trained at the ``i``-th λ of the checkpoint's ``lambdas``
(one λ drawn per batch), so that one set of transforms, hyperprior and entropy models serves every
level. Between two trained levels the gains are interpolated geometrically (the paper's exponential
interpolation), which gives a continuous rate knob: a λ between the trained ones maps to the level
at its place in log λ (:func:`level_of_lambda`).

Gains are stored as their logarithms (``log_gain``, shape (L, M)), so that every gain stays > 0
whatever the optimiser does. The level is a property of the instance, not of the weights; a
:class:`~dlrc_agents.codecs.registry.Codec` of this architecture is one instance at one level, and its
fingerprint names the level.

The analysis and synthesis keep CompressAI's parameter names (``g_a.0.weight`` ...): the gain is
applied by swapping the two ``nn.Sequential`` instances' class for one whose forward also applies the
gain, and the gain modules are registered once on the model (``gain``, ``inverse_gain``). So a fixed-λ
``bmshj2018-hyperprior`` checkpoint warm-starts every layer of this one, and DLRC, rate control and the
hyperprior helpers, which call ``model.g_a`` and ``model.g_s``, code the gained latent unchanged.
"""

from __future__ import annotations

import math

import torch
from compressai.models import ScaleHyperprior
from torch import nn

#: The λ of the shipped ladder: the levels a variable-rate model is trained at by default.
DEFAULT_LAMBDAS = (0.0067, 0.013, 0.025, 0.0483)


class Gain(nn.Module):
    """Per-channel gains of ``levels`` rate levels (log-parameterised), interpolated between levels."""

    def __init__(self, levels: int, channels: int):
        super().__init__()
        if levels < 2:
            raise ValueError(f"a variable-rate model needs at least 2 levels, got {levels}")
        self.log_gain = nn.Parameter(torch.zeros(levels, channels))
        self.level = 0.0

    @property
    def levels(self) -> int:
        return self.log_gain.shape[0]

    def vector(self, level: float | None = None) -> torch.Tensor:
        """(M,) gain of a level in [0, L−1]: g_i^(1−f)·g_{i+1}^f between levels i and i+1."""
        level = self.level if level is None else float(level)
        if not 0.0 <= level <= self.levels - 1:
            raise ValueError(f"rate level {level:g} outside [0, {self.levels - 1}]")
        i = min(int(math.floor(level)), self.levels - 2)
        f = level - i
        return torch.exp((1.0 - f) * self.log_gain[i] + f * self.log_gain[i + 1])

    def forward(self, x: torch.Tensor, levels: torch.Tensor | None = None) -> torch.Tensor:
        """x (n, M, H, W) times the gain of the instance's level, or of ``levels`` (n,) integer
        levels, one per image (training draws one λ per image)."""
        if levels is None:
            return x * self.vector().reshape(1, -1, 1, 1)
        return x * torch.exp(self.log_gain[levels]).reshape(x.shape[0], -1, 1, 1)


class GainedAnalysis(nn.Sequential):
    """CompressAI's analysis layers, then the model's gain (parameter names unchanged)."""

    def forward(self, x):
        return self._gain(super().forward(x), getattr(self, "_levels", None))


class GainedSynthesis(nn.Sequential):
    """The model's inverse gain, then CompressAI's synthesis layers (parameter names unchanged)."""

    def forward(self, y):
        return super().forward(self._gain(y, getattr(self, "_levels", None)))


class VariableRateHyperprior(ScaleHyperprior):
    """bmshj2018-hyperprior with the gain units of Cui et al. 2021 (``levels`` rate levels)."""

    def __init__(self, N: int, M: int, levels: int = len(DEFAULT_LAMBDAS), **kwargs):
        super().__init__(N=N, M=M, **kwargs)
        self.gain = Gain(levels, M)
        self.inverse_gain = Gain(levels, M)
        self.g_a.__class__ = GainedAnalysis
        self.g_s.__class__ = GainedSynthesis
        # plain attributes, not submodules: the gains' parameters are registered once, on the model
        object.__setattr__(self.g_a, "_gain", self.gain)
        object.__setattr__(self.g_s, "_gain", self.inverse_gain)

    @property
    def levels(self) -> int:
        return self.gain.levels

    @property
    def level(self) -> float:
        return self.gain.level

    def set_level(self, level: float) -> None:
        """Code at rate level ``level`` in [0, L−1] (fractional: interpolated gains)."""
        self.gain.vector(level)  # range check
        self.gain.level = self.inverse_gain.level = float(level)

    def initialise_gains(self, lambdas, reference: float) -> None:
        """Scalar starting gains from a fixed-λ model trained at ``reference``: level i's gain
        sqrt(λ_i / reference) (a quantisation step ∝ λ^−1/2 keeps the distortion ∝ 1/λ) and its
        inverse, so that training starts near the fixed model's operating point at every λ."""
        with torch.no_grad():
            for i, lmbda in enumerate(lambdas):
                self.gain.log_gain[i].fill_(0.5 * math.log(lmbda / reference))
                self.inverse_gain.log_gain[i].fill_(-0.5 * math.log(lmbda / reference))

    def forward(self, x, levels: torch.Tensor | None = None):
        """CompressAI's forward at the instance's level, or per image at ``levels`` (n,) (training)."""
        for g in (self.g_a, self.g_s):
            object.__setattr__(g, "_levels", levels)
        try:
            return super().forward(x)
        finally:
            for g in (self.g_a, self.g_s):
                object.__setattr__(g, "_levels", None)


def level_of_lambda(lambdas, lmbda: float) -> float:
    """The (fractional) level of ``lmbda`` among the trained ``lambdas`` (ascending), linear in log λ;
    ValueError outside their range."""
    lambdas = [float(l) for l in lambdas]
    if any(b <= a for a, b in zip(lambdas, lambdas[1:])):
        raise ValueError(f"a variable-rate model's lambdas must ascend, got {lambdas}")
    lo, hi = lambdas[0], lambdas[-1]
    if not lo * (1 - 1e-9) <= lmbda <= hi * (1 + 1e-9):
        raise ValueError(f"λ {lmbda:g} is outside the variable-rate model's range [{lo:g}, {hi:g}]")
    lmbda = min(max(lmbda, lo), hi)
    for i in range(len(lambdas) - 1):
        if lmbda <= lambdas[i + 1]:
            return i + math.log(lmbda / lambdas[i]) / math.log(lambdas[i + 1] / lambdas[i])
    return float(len(lambdas) - 1)


def lambda_of_level(lambdas, level: float) -> float:
    """The λ a (fractional) level stands for (inverse of :func:`level_of_lambda`)."""
    lambdas = [float(l) for l in lambdas]
    i = min(int(math.floor(level)), len(lambdas) - 2)
    f = level - i
    return math.exp((1 - f) * math.log(lambdas[i]) + f * math.log(lambdas[i + 1]))
