"""Recognizer: a 64-bit cross-polytope LSH signature per latent vector.

One hash round with a random rotation R (C×C) maps a vector y to the signed index
of the largest |R·y| component: code = 2·argmax_j |(Ry)_j| + [(Ry)_j < 0], in
[0, 2C). k rounds with independent rotations are mixed into one 64-bit integer,
s(r) = F(h_r, s(r-1)) mod 2^64 with s(0) = 0, F a SplitMix64-style mix
(XOR, shifts, multiplications by odd constants) so signatures spread uniformly.

The rotations come from a seed shared by every satellite (Haar-random
orthogonal matrices: QR of a Gaussian matrix with the sign fix of Mezzadri 2007,
drawn with numpy's PCG64 in float64), so all satellites hash identically. All
positions are hashed at once: one float32 matrix product (k·C × C) · (C × H·W) for
all rounds (torch, so it uses the same BLAS as the codec; twice the speed of float64).
Rounding can only matter for a projection that ties to the last bit; the worst it
can do is miss a duplicate (a lost saving), never a wrong image: the Arbiter works
on the signatures as exchanged, so every satellite and the ground agree on the map.
"""

from __future__ import annotations

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def random_rotations(channels: int, rounds: int, seed: int) -> np.ndarray:
    """(rounds, C, C) Haar-random orthogonal matrices from ``seed`` (float64)."""
    rng = np.random.default_rng(seed)
    out = np.empty((rounds, channels, channels))
    for r in range(rounds):
        q, upper = np.linalg.qr(rng.standard_normal((channels, channels)))
        out[r] = q * np.sign(np.diag(upper))  # sign fix: uniform (Haar) distribution
    return out


def mix64(code: np.ndarray, state: np.ndarray) -> np.ndarray:
    """F(h, s): fold a round's code into the running 64-bit signature (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = state ^ (code.astype(np.uint64) + _GOLDEN + (state << np.uint64(6)) + (state >> np.uint64(2)))
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


class Recognizer:
    """Cross-polytope LSH over C-dimensional latent vectors, k rounds, shared seed."""

    def __init__(self, channels: int, rounds: int = 20, seed: int = 0):
        if rounds < 1:
            raise ValueError("dlrc.rounds must be >= 1")
        self.channels, self.rounds, self.seed = channels, rounds, seed
        self.rotations = random_rotations(channels, rounds, seed)
        self._stacked = torch.from_numpy(self.rotations.reshape(rounds * channels, channels).astype(np.float32))

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """(k, n) hash codes in [0, 2C) of vectors (n, C)."""
        return self._codes_cn(np.asarray(vectors, dtype=np.float32).T)

    def _codes_cn(self, columns: np.ndarray) -> np.ndarray:
        """Codes of the columns of a (C, n) array: one matmul for all k rounds."""
        v = torch.as_tensor(np.ascontiguousarray(columns, dtype=np.float32))
        with torch.no_grad():
            proj = (self._stacked @ v).reshape(self.rounds, self.channels, -1)
            idx = torch.max(proj.abs(), dim=1).indices  # (k, n)
            negative = torch.gather(proj, 1, idx[:, None, :])[:, 0, :] < 0
        return (2 * idx + negative).numpy()

    def signatures(self, latent: np.ndarray) -> np.ndarray:
        """uint64 signatures (H·W,) of a latent (C, H, W), positions in raster order."""
        C = latent.shape[0]
        if C != self.channels:
            raise ValueError(f"latent has {C} channels, the Recognizer was built for {self.channels}")
        codes = self._codes_cn(latent.reshape(C, -1))
        sig = np.zeros(codes.shape[1], dtype=np.uint64)
        for r in range(self.rounds):  # k rounds (20), each vectorised over all positions
            sig = mix64(codes[r], sig)
        return sig
