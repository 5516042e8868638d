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

``rotation='hadamard'`` replaces each dense rotation by the pseudo-random rotation of
Andoni et al. 2015 (FALCONN): the vector zero-padded to d = 2^p ≥ C, then ``applications``
times a random ±1 diagonal D followed by the Walsh–Hadamard transform H_d, so a hash costs
O(d log d) instead of C² multiply-adds and its code lies in [0, 2d). One application is not
enough for latents (their energy sits in few channels: measured, the collision probability
at 15° falls from 0.61 to 0.37), two match a Haar rotation; all but the last application are
shared by the k rounds, so a hash costs one. H_d = H_a ⊗ H_b
(Sylvester), applied as two small dense products (a, b ≈ √d): on a CPU two GEMMs with
16 × 16 matrices beat a butterfly FWHT written in array operations (each stage a pass over
memory), and no maintained Python library ships a batched FWHT. H is unnormalised: a positive
scale changes neither the argmax nor the sign.

Cross-polytope LSH sees only a vector's direction: y and 1.3·y hash alike in every round.
Identical captures never meet that case, but captures of the same ground under another gain
(a revisit, another sensor) do, and a copy then changes brightness. ``norm_guard = g`` folds
one more code into the signature: ⌊ln‖y‖ / ln(1 + g)⌋, the norm quantised in relative steps
of g. Equal vectors still always match; vectors whose norms differ by more than a factor
(1 + g) never do. It costs no byte: the signature stays 64 bits.
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


def sylvester_hadamard(d: int) -> np.ndarray:
    """H_d (d a power of two), entries ±1: H_1 = [1], H_2d = [[H, H], [H, −H]]."""
    h = np.ones((1, 1))
    while h.shape[0] < d:
        h = np.block([[h, h], [h, -h]])
    return h


def padded_dimension(channels: int) -> int:
    """The power of two the Hadamard rotation pads C to."""
    return 1 << max(1, (channels - 1).bit_length())


def sign_diagonals(dimension: int, rounds: int, applications: int, seed: int) -> np.ndarray:
    """(rounds, applications, d) random ±1 diagonals from ``seed`` (a stream of their own)."""
    rng = np.random.default_rng([seed, 0x48414441])  # 'HADA': independent of the dense rotations' stream
    return rng.choice(np.array([-1.0, 1.0]), size=(rounds, applications, dimension))


ROTATIONS = ("dense", "hadamard")
#: projections per block, measured best on a 2-core x86-64 from 256² to 2048² (dense: 512 KiB of
#: float32, within a core's L2 cache; hadamard's intermediate products want half that)
BLOCK_FLOATS = {"dense": 1 << 17, "hadamard": 1 << 16}


class Recognizer:
    """Cross-polytope LSH over C-dimensional latent vectors, k rounds, shared seed.

    ``rotation``: 'dense' (Haar-random C × C rotations, the paper's reading) or 'hadamard'
    (``applications`` × (random signs, then Walsh–Hadamard) on the vector padded to 2^p)."""

    def __init__(self, channels: int, rounds: int = 20, seed: int = 0, rotation: str = "dense",
                 applications: int = 2, norm_guard: float | None = None):
        if norm_guard is not None and not norm_guard > 0:
            raise ValueError("dlrc.norm_guard must be > 0")
        self.norm_guard = norm_guard
        if rounds < 1:
            raise ValueError("dlrc.rounds must be >= 1")
        if rotation not in ROTATIONS:
            raise ValueError(f"dlrc.rotation: {rotation!r} is not one of {ROTATIONS}")
        if applications < 1:
            raise ValueError("dlrc.rotation_applications must be >= 1")
        self.channels, self.rounds, self.seed, self.rotation = channels, rounds, seed, rotation
        if rotation == "dense":
            self.dimension = channels
            self.rotations = random_rotations(channels, rounds, seed)
            self._stacked = torch.from_numpy(self.rotations.reshape(rounds * channels, channels).astype(np.float32))
            return
        self.dimension = d = padded_dimension(channels)
        p = d.bit_length() - 1
        self._a, self._b = 1 << ((p + 1) // 2), 1 << (p // 2)  # H_d = H_a ⊗ H_b
        self._h_a = torch.from_numpy(sylvester_hadamard(self._a).astype(np.float32))
        self._h_b = torch.from_numpy(sylvester_hadamard(self._b).astype(np.float32))
        signs = torch.from_numpy(sign_diagonals(d, rounds + 1, applications, seed).astype(np.float32))
        # the first applications − 1 stages are shared by the k rounds (they only have to spread a
        # vector's energy over all coordinates, which one stage does not do for sparse latents); the
        # last stage's signs are each round's own, so the rounds are independent hashes of it
        self._shared = signs[rounds, :applications - 1, :, None]  # (applications − 1, d, 1)
        self._signs = signs[:rounds, applications - 1, :, None].contiguous()  # (k, d, 1)

    def _hadamard(self, x: torch.Tensor) -> torch.Tensor:
        """H_d applied to the second-last axis of (m, d, n), as H_a then H_b."""
        m, d, n = x.shape
        x = torch.matmul(self._h_a, x.reshape(m, self._a, self._b * n))  # the leading index of (a, b)
        return torch.matmul(self._h_b, x.reshape(m * self._a, self._b, n)).reshape(m, d, n)

    def _spread(self, columns: torch.Tensor) -> torch.Tensor:
        """(d, n): the columns zero-padded and through the stages all rounds share (hadamard)."""
        x = torch.zeros(1, self.dimension, columns.shape[1])
        x[0, :self.channels] = columns
        for signs in self._shared:
            x = self._hadamard(signs * x)
        return x[0]

    def _rotate_rounds(self, x: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
        """(r1 − r0, dimension, n): rounds r0..r1 of the rotation of ``x`` (dense: the columns; hadamard:
        what :meth:`_spread` made of them)."""
        if self.rotation == "dense":
            return (self._stacked[r0 * self.channels:r1 * self.channels] @ x).reshape(r1 - r0, self.channels, -1)
        return self._hadamard(self._signs[r0:r1] * x)

    def rotate(self, columns: torch.Tensor) -> torch.Tensor:
        """(k, dimension, n) rotated copies of the columns of a (C, n) float32 tensor."""
        x = columns if self.rotation == "dense" else self._spread(columns)
        return self._rotate_rounds(x, 0, self.rounds)

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """(k, n) hash codes in [0, 2·dimension) of vectors (n, C)."""
        return self._codes_cn(np.asarray(vectors, dtype=np.float32).T)

    def _codes_cn(self, columns: np.ndarray) -> np.ndarray:
        """Codes of the columns of a (C, n) array: the rounds and positions in blocks of about
        :data:`BLOCK_FLOATS` projections, so each block's projections stay in cache."""
        block = BLOCK_FLOATS[self.rotation]
        v = torch.as_tensor(np.ascontiguousarray(columns, dtype=np.float32))
        n = v.shape[1]
        x = v if self.rotation == "dense" else self._spread(v)
        out = torch.empty(self.rounds, n, dtype=torch.long)
        per_round = self.dimension * n
        step = max(1, block // per_round)
        cols = n if per_round <= block else max(1, block // self.dimension)
        with torch.no_grad():
            for c0 in range(0, n, cols):
                xc = x[:, c0:c0 + cols]
                for r0 in range(0, self.rounds, step):
                    r1 = min(self.rounds, r0 + step)
                    proj = self._rotate_rounds(xc, r0, r1)
                    # the signed index of the largest |projection| from its largest and smallest
                    # entries: two reductions, no |·| copy (equal magnitudes: the positive one)
                    top, i_top = proj.max(dim=1)
                    low, i_low = proj.min(dim=1)
                    out[r0:r1, c0:c0 + cols] = torch.where(top >= -low, 2 * i_top, 2 * i_low + 1)
        return out.numpy()

    def signatures(self, latent: np.ndarray) -> np.ndarray:
        """uint64 signatures (H·W,) of a latent (C, H, W), positions in raster order."""
        C = latent.shape[0]
        if C != self.channels:
            raise ValueError(f"latent has {C} channels, the Recognizer was built for {self.channels}")
        codes = self._codes_cn(latent.reshape(C, -1))
        sig = np.zeros(codes.shape[1], dtype=np.uint64)
        for r in range(self.rounds):  # k rounds (20), each vectorised over all positions
            sig = mix64(codes[r], sig)
        if self.norm_guard is not None:
            sig = mix64(norm_codes(latent.reshape(C, -1), self.norm_guard), sig)
        return sig


def norm_codes(columns: np.ndarray, step: float) -> np.ndarray:
    """The norm guard's code of each column of (C, n): ⌊ln‖y‖ / ln(1 + step)⌋ as uint64 (two's
    complement for negative buckets; a zero vector gets its own code)."""
    norms = np.linalg.norm(np.asarray(columns, dtype=np.float64), axis=0)
    with np.errstate(divide="ignore"):
        buckets = np.floor(np.log(norms) / np.log1p(step))
    buckets[~np.isfinite(buckets)] = -(2**40)
    return buckets.astype(np.int64).view(np.uint64)
