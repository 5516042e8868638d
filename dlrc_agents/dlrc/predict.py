"""Predictive inter-satellite coding (``dlrc.mode: predict``): code ŷ conditioned on a peer's ŷ.

DLRC's copy mode (the paper) drops a latent vector only when its signature equals a
higher-priority satellite's; captures that differ by noise, gain or sub-pixel shifts break
those matches, and a copy that is inexact changes the reconstruction. Here a satellite codes
*every* one of its own quantised latents, but where a higher-priority satellite holds the
same ground (a *reference*), it may code it as a residual against that satellite's ŷ:

- the hyperprior gives ŷ's own N(μ, σ) (μ = 0 for BMSHJ); the symbol the codec alone would
  code is ``q = round(y − μ)``;
- the prediction is the reference's ŷ_ref in the same symbol domain, ``c = round(ŷ_ref − μ)``;
- a predicted position codes ``r = q − c`` with the Gaussian N(0, β·σ): the product of the
  hyperprior with a residual model N(c, α·σ) centred on the reference has a scale
  σ·α/√(1 + α²); β is that factor, one of :data:`BETA_LEVELS`, chosen per satellite on board
  by the estimated rate and sent (one byte). The centre is the prediction alone (its weight
  dominates whenever prediction pays), so the rANS symbols do not depend on ŷ_ref;
- every position with a reference carries a flag (predicted or coded as alone), chosen by
  the estimated bits of the two codings; the flags are rANS-coded with their measured
  frequency (sent, two bytes).

All symbols go through CompressAI's ``GaussianConditional`` (its scale table, CDFs and rANS),
so the ground, holding ŷ_ref (decoded from the reference's own stream) and this satellite's
ẑ, rebuilds ``q = r + c`` exactly: the reconstruction is bit-identical to the codec alone's,
whatever the captures' differences. What prediction saves is rate only.

References come from the shared grid (each satellite's tile origin, a multiple of the
latent stride, is known to its peers: :func:`grid_references`), or, without origins, from
the Arbiter's cross-satellite matches. They travel as the stream's reference map
(``map_form: references``), so the ground needs no geometry. Written by hand: CompressAI has
no conditional (inter-image) latent coder; this module composes its entropy models.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import torch

from .bitstream import BitstreamError
from ..codecs.overread import padded

#: Residual scale factors β (of the hyperprior's σ) a satellite may choose: 2^(−k/2), k = 0..15.
BETA_LEVELS = tuple(2.0 ** (-k / 2.0) for k in range(16))
#: Side string: β index (u8; bit 7 set: a calibrated prediction, whose band count (u8) and per-band
#: gain and bias (float16 each) follow), the flags' frequency of "predicted" (u16, of 65536), then the
#: flags' rANS string.
_SIDE = struct.Struct("<BH")
_CALIBRATED = 0x80
#: Block side of a latent position [px] (the hyperprior codecs' stride).
BLOCK = 16
_PRECISION = 16  # CompressAI's entropy coder precision (bits)


@dataclass
class PredictiveCoding:
    """One satellite's predictive coding: what goes into its stream, and what was decided."""

    y_string: bytes
    side_string: bytes
    beta_index: int
    predicted: np.ndarray  # (n,) bool: positions coded as a residual against their reference
    candidates: int  # positions that had a reference
    estimated_bits: dict  # 'alone' (all positions as the codec alone) and 'chosen', by the entropy model


def grid_references(origins: dict, order: list, H: int, W: int, stride: int) -> dict:
    """{sat: (H·W,) int64 references owner·H·W + q} from tile origins on the shared grid.

    ``origins``: {sat: (row, column)} of each tile's pixel (0, 0) on the grid [px]; ``order``:
    satellites in priority order. A position's reference is the same ground cell in the tile of the
    highest-priority satellite that holds it; its own position where none does (and for the first
    satellite). Two tiles whose origins differ by other than a multiple of ``stride`` share no latent
    cell (their latents sample different ground), so they do not reference each other.
    """
    n = H * W
    rows, cols = np.divmod(np.arange(n), W)
    refs = {}
    for rank, sat in enumerate(order):
        ref = sat * n + np.arange(n, dtype=np.int64)
        free = np.ones(n, dtype=bool)
        oy, ox = origins[sat]
        for u in order[:rank]:
            uy, ux = origins[u]
            dy, dx = oy - uy, ox - ux
            if dy % stride or dx % stride:
                continue
            r, c = rows + dy // stride, cols + dx // stride
            hit = free & (r >= 0) & (r < H) & (c >= 0) & (c < W)
            ref[hit] = u * n + (r[hit] * W + c[hit])
            free &= ~hit
        refs[sat] = ref
    return refs


def cross_references(arb_refs: dict, order: list, n: int) -> dict:
    """Reference maps keeping only the Arbiter's matches to a higher-priority satellite (a match
    within the satellite's own image, or to a lower rank, becomes its own position)."""
    out = {}
    for rank, sat in enumerate(order):
        ref = np.asarray(arb_refs[sat], dtype=np.int64).copy()
        owners = ref // n
        keep = np.isin(owners, order[:rank])
        ref[~keep] = sat * n + np.nonzero(~keep)[0]
        out[sat] = ref
    return out


def scale_indexes(gc, scales: torch.Tensor) -> torch.Tensor:
    """CompressAI's ``GaussianConditional.build_indexes`` (the first scale-table entry ≥ the lower-bounded
    scale) as one ``searchsorted`` instead of a pass over the table per entry: the same indexes (tested)."""
    table = gc.scale_table[:-1].to(scales.dtype).contiguous()
    return torch.searchsorted(table, gc.lower_bound_scale(scales).contiguous(), right=False).int()


_BITS_TABLES: dict = {}
_TABLE_SYMBOLS = 256  # |symbol| beyond this costs as much as this (an estimate only drives decisions)


def _bits_table(gc) -> torch.Tensor:
    """(scale-table entries, |symbol| 0..255) estimated bits of a symbol under N(0, scale) with
    CompressAI's unit bins and likelihood bound; computed once per entropy model."""
    key = (id(gc), tuple(gc.scale_table.tolist()))
    if key not in _BITS_TABLES:
        scales = gc.scale_table.float()[:, None].expand(-1, _TABLE_SYMBOLS)
        values = torch.arange(_TABLE_SYMBOLS, dtype=torch.float32)[None].expand(len(gc.scale_table), -1)
        _BITS_TABLES[key] = -torch.log2(gc.likelihood_lower_bound(gc._likelihood(values, scales)))
    return _BITS_TABLES[key]


def _symbol_bits(gc, symbols: torch.Tensor, indexes: torch.Tensor) -> torch.Tensor:
    """Estimated bits of integer symbols coded with N(0, scale_table[indexes]) (CompressAI's bins)."""
    magnitude = symbols.abs().clamp_(max=_TABLE_SYMBOLS - 1).long()
    return _bits_table(gc)[indexes.long(), magnitude]


def _binary_cdf(p1: int) -> list[int]:
    """Quantised CDF (16-bit) of a flag whose value 1 has frequency ``p1`` / 65536, with
    CompressAI's overflow bin (never used: a flag is 0 or 1)."""
    from compressai._CXX import pmf_to_quantized_cdf

    p = min(max(p1, 1), 65535) / 65536.0
    return pmf_to_quantized_cdf([1.0 - p, p, 1e-9], _PRECISION)


def encode_flags(flags: np.ndarray, p1: int) -> bytes:
    if flags.size == 0:
        return b""
    from compressai.ans import RansEncoder

    cdf = _binary_cdf(p1)
    return RansEncoder().encode_with_indexes(flags.astype(int).tolist(), [0] * flags.size, [cdf], [len(cdf)], [0])


def decode_flags(data: bytes, count: int, p1: int) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype=bool)
    from compressai.ans import RansDecoder

    cdf = _binary_cdf(p1)
    values = RansDecoder().decode_with_indexes(padded(data, count), [0] * count, [cdf], [len(cdf)], [0])
    out = np.asarray(values, dtype=np.int64)
    if np.any((out < 0) | (out > 1)):
        raise BitstreamError("prediction flags unreadable")
    return out.astype(bool)


def prediction_symbols(y_ref: torch.Tensor, means: torch.Tensor | None) -> torch.Tensor:
    """c = round(ŷ_ref − μ): the reference in this satellite's symbol domain ((C, k) tensors)."""
    return torch.round(y_ref if means is None else y_ref - means)


@torch.no_grad()
def encode(model, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None, refs: np.ndarray,
           satellite: int, y_ref: torch.Tensor, calibration: "Calibration | None" = None) -> PredictiveCoding:
    """Predictive coding of one satellite's ŷ.

    ``y`` (1, C, H, W) its latent, ``scales``/``means`` its hyperprior's σ and μ (means None: zero),
    ``refs`` its reference map, ``y_ref`` (C, H·W) the prediction at each position: the referenced ŷ,
    or with ``calibration`` the latent of the calibrated reference frame (:func:`calibrated_prediction`);
    columns of positions without a reference are ignored. Returns the y string (every position), the
    side string (with the calibration, when given) and the decisions.
    """
    gc = model.gaussian_conditional
    C = y.shape[1]
    n = y.shape[2] * y.shape[3]
    flat_y = y[0].reshape(C, n)
    mu = None if means is None else means[0].reshape(C, n)
    sigma = scales[0].reshape(C, n)
    q = torch.round(flat_y if mu is None else flat_y - mu)  # the codec alone's symbols
    owners = refs // n
    cand = np.nonzero(owners != satellite)[0]
    idx_alone = scale_indexes(gc, sigma)
    bits_alone = _symbol_bits(gc, q, idx_alone).sum(0)  # (n,)
    predicted = np.zeros(n, dtype=bool)
    best_beta, best_total = 0, float(bits_alone.sum())
    symbols = q.clone()
    indexes = idx_alone.clone()
    if len(cand):
        ci = torch.as_tensor(cand, dtype=torch.long)
        c = prediction_symbols(y_ref[:, ci], None if mu is None else mu[:, ci])
        r = q[:, ci] - c
        alone_c = bits_alone[ci]
        best_total = math.inf
        for k, beta in enumerate(BETA_LEVELS):
            bits_pred = _symbol_bits(gc, r, scale_indexes(gc, sigma[:, ci] * beta)).sum(0)
            use = bits_pred < alone_c
            m = int(use.sum())
            p = min(max(m / len(cand), 1 / 65536), 1 - 1 / 65536)
            flag_bits = -len(cand) * (p * math.log2(p) + (1 - p) * math.log2(1 - p)) if 0 < m < len(cand) else 0.0
            total = float(bits_alone.sum() - alone_c.sum() + torch.where(use, bits_pred, alone_c).sum()) + flag_bits
            if total < best_total:
                best_total, best_beta, best_use = total, k, use.numpy()
        predicted[cand[best_use]] = True
        pi = torch.as_tensor(cand[best_use], dtype=torch.long)
        symbols[:, pi] = r[:, torch.as_tensor(np.nonzero(best_use)[0], dtype=torch.long)]
        indexes[:, pi] = scale_indexes(gc, sigma[:, pi] * BETA_LEVELS[best_beta])
    flags = predicted[cand]
    p1 = int(round(65536 * flags.mean())) if flags.size else 0
    head = best_beta | (_CALIBRATED if calibration is not None else 0)
    side = (_SIDE.pack(head, min(max(p1, 1), 65535) if flags.size else 0)
            + (calibration.to_bytes() if calibration is not None else b"") + encode_flags(flags, p1))
    y_string = gc.compress(symbols[None, :, :, None], indexes[None, :, :, None])[0]
    return PredictiveCoding(y_string, side, best_beta, predicted, len(cand),
                            {"alone": float(bits_alone.sum()), "chosen": best_total})


def parse_side(side: bytes) -> tuple[int, int, bytes]:
    """(β index, flag frequency, flags' rANS string) of a side string (its calibration: :func:`side_calibration`)."""
    beta, p1, _, rest = _split_side(side)
    return beta, p1, rest


def side_calibration(side: bytes) -> "Calibration | None":
    """The calibration a side string carries (None: the prediction is the referenced ŷ itself)."""
    return _split_side(side)[2]


def _split_side(side: bytes):
    if len(side) < _SIDE.size:
        raise BitstreamError("prediction side information truncated")
    head, p1 = _SIDE.unpack_from(side, 0)
    beta, rest = head & ~_CALIBRATED, side[_SIDE.size:]
    if beta >= len(BETA_LEVELS):
        raise BitstreamError(f"prediction scale index {beta} out of range (0..{len(BETA_LEVELS) - 1})")
    calibration = None
    if head & _CALIBRATED:
        calibration, used = Calibration.from_bytes(rest)
        rest = rest[used:]
    return beta, p1, calibration, rest


@dataclass(frozen=True)
class Calibration:
    """Per-band gain and bias taking the reference's radiometry into this satellite's:
    own ≈ gain·reference + bias, on the [0, 1] pixel scale, each stored as float16 (4 bytes a band)."""

    gain: tuple
    bias: tuple

    def to_bytes(self) -> bytes:
        values = np.asarray([v for pair in zip(self.gain, self.bias) for v in pair], dtype="<f2")
        return struct.pack("<B", len(self.gain)) + values.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple["Calibration", int]:
        if not data:
            raise BitstreamError("prediction calibration truncated")
        bands = data[0]
        size = 1 + 4 * bands
        if bands == 0 or len(data) < size:
            raise BitstreamError("prediction calibration truncated")
        values = np.frombuffer(data[1:size], dtype="<f2").astype(np.float64).reshape(bands, 2)
        if not np.all(np.isfinite(values)) or np.any(values[:, 0] <= 0):
            raise BitstreamError("prediction calibration: a gain is not a positive finite number")
        return cls(tuple(values[:, 0].tolist()), tuple(values[:, 1].tolist())), size


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H·16, W·16) image → (H·W, C, 16, 16) blocks, one per latent position (row-major)."""
    _, C, P, Q = x.shape
    return x[0].reshape(C, P // BLOCK, BLOCK, Q // BLOCK, BLOCK).permute(1, 3, 0, 2, 4).reshape(-1, C, BLOCK, BLOCK)


def _unblocks(b: torch.Tensor, H: int, W: int) -> torch.Tensor:
    C = b.shape[1]
    return b.reshape(H, W, C, BLOCK, BLOCK).permute(2, 0, 3, 1, 4).reshape(1, C, H * BLOCK, W * BLOCK)


def reference_frame(images: dict, refs: np.ndarray, satellite: int, H: int, W: int) -> tuple[torch.Tensor, np.ndarray]:
    """(1, C, H·16, W·16) frame in this satellite's pixel grid holding, at each position with a reference,
    the 16×16 block of the referenced satellite's decoded image (``images``: {u: x̂ (1, C, H·16, W·16)}),
    mid-grey elsewhere; and the (H·W,) mask of those positions. Built from the reference map alone,
    so the ground needs no geometry."""
    n = H * W
    owners, q = refs // n, refs % n
    C = next(iter(images.values())).shape[1]
    blocks = torch.full((n, C, BLOCK, BLOCK), 0.5)
    mask = np.zeros(n, dtype=bool)
    for u in set(owners.tolist()) - {satellite}:
        if u not in images:
            continue  # a lost reference: those positions are filled by μ at the ground anyway
        hit = np.nonzero(owners == u)[0]
        blocks[torch.as_tensor(hit)] = _blocks(images[u])[torch.as_tensor(q[hit])]
        mask[hit] = True
    return _unblocks(blocks, H, W), mask


def fit_calibration(x: torch.Tensor, frame: torch.Tensor, mask: np.ndarray) -> Calibration:
    """Per-band gain and bias mapping the reference frame onto this satellite's own capture ``x``
    (1, C, H·16, W·16) over the blocks of ``mask``, by matching mean and standard deviation (relative
    radiometric normalisation): a least-squares fit of own on reference would shrink the gain by the
    scenes' own differences (regression dilution); moments do not. Rounded to float16, as sent."""
    own = _blocks(x)[torch.as_tensor(np.nonzero(mask)[0])].double()
    ref = _blocks(frame)[torch.as_tensor(np.nonzero(mask)[0])].double()
    gains, biases = [], []
    for c in range(x.shape[1]):
        u, v = own[:, c].flatten(), ref[:, c].flatten()
        sv = float(v.std()) if v.numel() > 1 else 0.0
        g = float(u.std()) / sv if sv > 1e-6 else 1.0
        g = min(max(g, 1 / 16), 16.0)
        b = float(u.mean()) - g * float(v.mean())
        gains.append(float(np.float16(g)))
        biases.append(float(np.float16(b)))
    return Calibration(tuple(gains), tuple(biases))


@torch.no_grad()
def calibrated_prediction(model, frame: torch.Tensor, calibration: Calibration) -> torch.Tensor:
    """(C_latent, H·W) change of the prediction the calibration makes: the analysis transform of the
    reference frame with the gain and bias applied, less that of the frame as decoded. Added to the
    referenced ŷ: re-analysing a decoded image does not give back its ŷ (the codec is lossy), so the
    difference carries the radiometric change alone. The ground computes it from the decoded
    references and the sent calibration; like the hyperprior's scales, it relies on the encoder and
    the ground computing the same floats."""
    g = torch.tensor(calibration.gain, dtype=frame.dtype)[None, :, None, None]
    b = torch.tensor(calibration.bias, dtype=frame.dtype)[None, :, None, None]
    y = model.g_a(torch.cat([frame * g + b, frame]))
    return (y[0] - y[1]).reshape(y.shape[1], -1)


@torch.no_grad()
def decode(model, y_string: bytes, side: bytes, scales: torch.Tensor, means: torch.Tensor | None,
           refs: np.ndarray, satellite: int, y_ref: torch.Tensor | None, lost: np.ndarray | None = None):
    """Ground (or a peer on board): ŷ (C, H·W) of a predictive stream, and how many positions were
    filled by the model's prediction because their reference's stream was lost (``lost``: (n,) bool
    of such positions; their residuals are decoded and dropped, ŷ takes μ there).

    ``y_ref`` (C, H·W): the referenced ŷ at each position (columns of positions without a usable
    reference are ignored; None when no position has one)."""
    gc = model.gaussian_conditional
    C = scales.shape[1]
    n = scales.shape[2] * scales.shape[3]
    sigma = scales[0].reshape(C, n)
    mu = None if means is None else means[0].reshape(C, n)
    beta, p1, flag_string = parse_side(side)
    cand = np.nonzero(refs // n != satellite)[0]
    flags = decode_flags(flag_string, len(cand), p1)
    pos = cand[flags]
    indexes = scale_indexes(gc, sigma)
    pi = torch.as_tensor(pos, dtype=torch.long)
    indexes[:, pi] = scale_indexes(gc, sigma[:, pi] * BETA_LEVELS[beta])
    sym = gc.decompress([padded(y_string, C * n)], indexes[None, :, :, None]).reshape(C, n)
    if len(pos):
        usable = pos if lost is None else pos[~lost[pos]]
        if len(usable):
            ui = torch.as_tensor(usable, dtype=torch.long)
            sym[:, ui] += prediction_symbols(y_ref[:, ui], None if mu is None else mu[:, ui])
    y_hat = sym if mu is None else sym + mu
    lost_pred = pos[lost[pos]] if lost is not None else pos[:0]  # residuals whose reference never arrived
    if len(lost_pred):
        fi = torch.as_tensor(lost_pred, dtype=torch.long)
        y_hat[:, fi] = 0.0 if mu is None else mu[:, fi]
    return y_hat, len(lost_pred)
