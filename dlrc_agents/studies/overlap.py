"""Overlapping observations, the paper's protocol (Section 4.1).

A W×W observation window is drawn in a large scene; each of N satellites crops a
P×P patch at a random offset inside it, on a ``grid``-pixel lattice (16: the
latent stride of the hyperprior codecs, so overlapping patches share latent
positions). The expected overlap is o_exp = N·P²/W². The geometric bound on
the savings of a draw is 1 - |union of patches| / (N·P²): the fraction of
captured pixels that another patch also captured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlrc_agents.common.data import nodata_fraction


@dataclass(frozen=True)
class Observation:
    """One draw: window origin (y, x) in the scene and patch offsets (y, x) in the scene."""

    window_origin: tuple[int, int]
    window: int
    patch: int
    offsets: list  # [(y, x)] per satellite, absolute scene coordinates

    @property
    def o_exp(self) -> float:
        return expected_overlap(len(self.offsets), self.patch, self.window)

    def geometric_bound(self) -> float:
        return geometric_bound(self.offsets, self.patch)


def expected_overlap(satellites: int, patch: int, window: int) -> float:
    """o_exp = N·P²/W²."""
    return satellites * patch**2 / window**2


def window_for_overlap(satellites: int, patch: int, o_exp: float, grid: int = 16) -> int:
    """W such that N·P²/W² = o_exp (W rounded to the grid; at least P)."""
    w = patch * math.sqrt(satellites / o_exp)
    return max(patch, int(round(w / grid)) * grid)


def geometric_bound(offsets, patch: int) -> float:
    """1 - union area / summed area of the patches at ``offsets``."""
    ys, xs = [o[0] for o in offsets], [o[1] for o in offsets]
    y0, x0 = min(ys), min(xs)
    canvas = np.zeros((max(ys) - y0 + patch, max(xs) - x0 + patch), dtype=bool)
    for y, x in offsets:
        canvas[y - y0:y - y0 + patch, x - x0:x - x0 + patch] = True
    return 1.0 - canvas.sum() / (len(offsets) * patch**2)


def draw_observation(scene: np.ndarray, satellites: int, patch: int, window: int, rng: np.random.Generator,
                     grid: int = 16, max_nodata: float = 0.1) -> Observation:
    """A seeded draw: a window with little no-data, then N patch offsets on the grid inside it."""
    H, W = scene.shape[:2]
    if window > min(H, W):
        raise ValueError(f"scene of {H}x{W} px is smaller than the {window}x{window} observation window")
    for _ in range(200):
        wy = int(rng.integers(0, (H - window) // grid + 1)) * grid
        wx = int(rng.integers(0, (W - window) // grid + 1)) * grid
        if nodata_fraction(scene[wy:wy + window, wx:wx + window]) <= max_nodata:
            break
    else:
        raise ValueError("no observation window with little enough no-data found in 200 tries")
    steps = (window - patch) // grid + 1
    offsets = [(wy + int(rng.integers(0, steps)) * grid, wx + int(rng.integers(0, steps)) * grid) for _ in range(satellites)]
    return Observation((wy, wx), window, patch, offsets)
