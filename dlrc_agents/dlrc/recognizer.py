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
_S2, _S6, _S27, _S30, _S31 = (np.uint64(v) for v in (2, 6, 27, 30, 31))


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


def mix_rounds(codes: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
    """The signatures of (k, n) codes: :func:`mix64` folded over the k rounds, s(0) = ``state`` (zeros).

    The same arithmetic as mix64, written with in-place ufuncs on two scratch arrays: a 256-position
    latent is too small for numpy to amortise an allocation per operation (measured 1.6× faster)."""
    codes = np.asarray(codes, dtype=np.uint64) + _GOLDEN
    s = np.zeros(codes.shape[1], dtype=np.uint64) if state is None else np.array(state, dtype=np.uint64)
    x, y = np.empty_like(s), np.empty_like(s)
    with np.errstate(over="ignore"):
        for code in codes:
            np.left_shift(s, _S6, out=x)
            x += code
            np.right_shift(s, _S2, out=y)
            x += y
            x ^= s
            np.right_shift(x, _S30, out=y)
            x ^= y
            x *= _MIX1
            np.right_shift(x, _S27, out=y)
            x ^= y
            x *= _MIX2
            np.right_shift(x, _S31, out=y)
            np.bitwise_xor(x, y, out=s)
    return s


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
#: projections per block of positions (all k rounds of a block at once), measured best on a
#: 2-core x86-64 from 256² to 2048²: a block's projections stay within a core's L2 cache
BLOCK_FLOATS = 1 << 19


def signed_argmax(projections: np.ndarray) -> np.ndarray:
    """Cross-polytope codes of the rows of (m, d) float32: 2·argmax_j |p_j| + [p_j < 0].

    The rows are contiguous, so numpy's vectorised argmax runs along memory (a reduction across
    the middle axis of a (k, d, n) layout was half the Recognizer's time)."""
    rows = np.arange(projections.shape[0])
    j = np.abs(projections).argmax(axis=1)
    return 2 * j + (projections[rows, j] < 0)


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
            # (C, k·C): positions as rows times this gives each (position, round)'s C projections
            # contiguous, for signed_argmax
            self._stacked_t = torch.from_numpy(
                np.ascontiguousarray(self.rotations.reshape(rounds * channels, channels).T.astype(np.float32)))
            return
        self.dimension = d = padded_dimension(channels)
        p = d.bit_length() - 1
        a, b = self._a, self._b = 1 << ((p + 1) // 2), 1 << (p // 2)  # H_d = H_a ⊗ H_b
        self._h_a = torch.from_numpy(sylvester_hadamard(a).astype(np.float32))
        self._h_b = torch.from_numpy(sylvester_hadamard(b).astype(np.float32))
        signs = torch.from_numpy(sign_diagonals(d, rounds + 1, applications, seed).astype(np.float32))
        # the first applications − 1 stages are shared by the k rounds (they only have to spread a
        # vector's energy over all coordinates, which one stage does not do for sparse latents); the
        # last stage's signs are each round's own, so the rounds are independent hashes of it.
        # Every stage folds its signs into H_b: coordinate (i_a, i_b) of H_d·D·x is
        # Σ_l H_a[i_a, l] · (x[l, :] · diag(D[l, :]) · H_b)[i_b] with x as an (a, b) array, so a stage
        # is one batched product with the a matrices diag(D[l, :])·H_b and one product with H_a.
        # The shared stages: (a, b, b) each.
        self._shared_folds = [signs[rounds, s].reshape(a, b)[..., None] * self._h_b for s in range(applications - 1)]
        # The last stage: (a, b, k·b) holds, for each l, the k rounds' matrices side by side, so a block
        # of positions takes all rounds in one batched product and one product with H_a.
        last = signs[:rounds, applications - 1].reshape(rounds, a, b)
        self._folded = (last[..., None] * self._h_b).permute(1, 2, 0, 3).reshape(a, b, rounds * b).contiguous()
        # the projections come out with coordinate (i_b, i_a) at i_b·a + i_a; codes name the
        # coordinate i_a·b + i_b of the standard order (Sylvester's H_d): a code c of the projections'
        # order is _standard_code[c] in the standard one
        i = np.arange(d)
        self._standard = (i % a) * b + i // a
        self._standard_code = np.stack([2 * self._standard, 2 * self._standard + 1], axis=1).reshape(-1)

    def _spread(self, columns: torch.Tensor) -> torch.Tensor:
        """(a, n, b): the columns zero-padded to d and through the stages all rounds share (hadamard),
        each position's d coordinates as an (a, b) array spread over the first and last axes."""
        C, n = columns.shape
        a, b = self._a, self._b
        rows = -(-C // b)  # the rows of the (a, b) array the channels fill; the others are zero
        x = columns if C == rows * b else torch.nn.functional.pad(columns, (0, 0, 0, rows * b - C))
        x = x.view(rows, b, n).transpose(1, 2)  # (rows, n, b), a view: bmm reads it transposed
        for fold in self._shared_folds:
            x = (self._h_a[:, :x.shape[0]] @ torch.bmm(x, fold[:x.shape[0]]).view(x.shape[0], -1)).view(a, n, b)
        if x.shape[0] < a:  # no shared stage: the zero rows are needed by the last stage
            x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, a - x.shape[0]))
        return x

    def _project_hadamard(self, spread_anb: torch.Tensor) -> np.ndarray:
        """(m·k, d) projections of a block of m positions, (position, round) rows, coordinates in
        (i_b, i_a) order; ``spread_anb`` is the block's spread vectors as (a, m, b)."""
        a, m = self._a, spread_anb.shape[1]
        t = torch.bmm(spread_anb, self._folded)  # (a, m, k·b): signs and H_b of every round
        # H_a over the leading axis, written transposed (Tᵀ·H_a) so each row comes out contiguous
        return (t.view(a, -1).T @ self._h_a).numpy().reshape(m * self.rounds, self.dimension)

    def rotate(self, columns: torch.Tensor) -> torch.Tensor:
        """(k, dimension, n) rotated copies of the columns of a (C, n) float32 tensor, coordinates in
        the standard order (what the codes index); computed by the same products as the codes."""
        with torch.no_grad():
            if self.rotation == "dense":
                return (columns.T @ self._stacked_t).reshape(-1, self.rounds, self.channels).permute(1, 2, 0)
            n = columns.shape[1]
            proj = self._project_hadamard(self._spread(columns))
            out = np.empty_like(proj)
            out[:, self._standard] = proj
            return torch.from_numpy(out.reshape(n, self.rounds, self.dimension)).permute(1, 2, 0)

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """(k, n) hash codes in [0, 2·dimension) of vectors (n, C)."""
        return self._codes_cn(np.asarray(vectors, dtype=np.float32).T)

    def _codes_cn(self, columns: np.ndarray) -> np.ndarray:
        """Codes of the columns of a (C, n) array, positions in blocks of about :data:`BLOCK_FLOATS`
        projections (all k rounds at once), so each block's projections stay in cache."""
        v = torch.as_tensor(np.ascontiguousarray(columns, dtype=np.float32))
        n = v.shape[1]
        out = np.empty((n, self.rounds), dtype=np.int64)
        cols = max(1, BLOCK_FLOATS // (self.rounds * self.dimension))
        with torch.no_grad():
            if self.rotation == "dense":
                rows = v.T.contiguous()  # (n, C)
                for c0 in range(0, n, cols):
                    proj = (rows[c0:c0 + cols] @ self._stacked_t).numpy()  # (m, k·C)
                    out[c0:c0 + cols] = signed_argmax(proj.reshape(-1, self.channels)).reshape(-1, self.rounds)
                return out.T
            x = self._spread(v)  # (a, n, b)
            for c0 in range(0, n, cols):
                codes = self._standard_code[signed_argmax(self._project_hadamard(x[:, c0:c0 + cols]))]
                out[c0:c0 + cols] = codes.reshape(-1, self.rounds)
        return out.T

    def signatures(self, latent: np.ndarray) -> np.ndarray:
        """uint64 signatures (H·W,) of a latent (C, H, W), positions in raster order."""
        C = latent.shape[0]
        if C != self.channels:
            raise ValueError(f"latent has {C} channels, the Recognizer was built for {self.channels}")
        sig = mix_rounds(self._codes_cn(latent.reshape(C, -1)))  # k rounds, each vectorised over positions
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
