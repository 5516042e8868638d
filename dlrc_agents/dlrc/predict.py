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
#: gain and bias (float16 each) follow), the flags' frequency of "predicted" in each of the
#: :data:`FLAG_CONTEXTS` (u8 each: (v + ½)/256), then the flags' rANS string. A band-count byte with
#: bit 7 set is followed by a :class:`Registration`. With bit 6 of the head set, the low bits are 0 and
#: the β of each σ band follow the fixed fields (4 bits each).
_SIDE = struct.Struct("<B4B")
#: Head bit: no position has a reference, so no flag model and no flags follow (the side is the head alone,
#: or with a calibration, never sent without a reference).
_NO_FLAGS = 0x20
#: A flag's context: whether its left and its upper neighbour (in the latent grid) were predicted,
#: left + 2·up (a neighbour outside the grid or without a reference counts as not predicted). Prediction
#: fails in patches (occlusions, relief, the overlap's edges), so a flag follows its neighbours: on the
#: Giza pair's flags these contexts take 469 bits where one frequency took 618 (measured).
FLAG_CONTEXTS = 4
_CALIBRATED = 0x80
#: Head bit: the residual scale factor is chosen per band of the hyperprior's σ (one β index per band,
#: 4 bits each, packed after the fixed side fields); see :data:`SCALE_BANDS`.
_BY_SCALE = 0x40
#: Upper edges of the σ bands a residual's β may differ across: a prediction is worth more, relative
#: to σ, where σ is large (the latents that carry the picture) than where it is near the bound.
SCALE_BANDS = (0.2, 0.4, 0.7, 1.0, 1.5, 2.5, 4.0, 7.0, 12.0)
#: Block side of a latent position [px] (the hyperprior codecs' stride).
BLOCK = 16
_PRECISION = 16  # CompressAI's entropy coder precision (bits)


@dataclass
class PredictiveCoding:
    """One satellite's predictive coding: what goes into its stream, and what was decided."""

    y_string: bytes
    side_string: bytes
    beta_index: int | tuple  # an index of BETA_LEVELS, or one per σ band (SCALE_BANDS)
    predicted: np.ndarray  # (n,) bool: positions coded as a residual against their reference
    candidates: int  # positions that had a reference
    estimated_bits: dict  # 'alone' (all positions as the codec alone) and 'chosen', by the entropy model


def grid_references(origins: dict, order: list, H: int, W: int, stride: int,
                    preferred: dict | None = None) -> dict:
    """{sat: (H·W,) int64 references owner·H·W + q} from tile origins on the shared grid.

    ``origins``: {sat: (row, column)} of each tile's pixel (0, 0) on the grid [px]; ``order``:
    satellites in priority order. A position's reference is the same ground cell in the tile of the
    highest-priority satellite that holds it; its own position where none does (and for the first
    satellite). ``preferred`` ({sat: peer}, optional): where that higher-priority peer holds the cell,
    it is the reference instead (e.g. the view a satellite registered against, the most alike: in a
    tri-stereo the third view predicts far better from the second than from the first); the others
    follow in priority order. Two tiles whose origins differ by other than a multiple of ``stride``
    share no latent cell (their latents sample different ground), so they do not reference each other.
    """
    n = H * W
    rows, cols = np.divmod(np.arange(n), W)
    refs = {}
    for rank, sat in enumerate(order):
        ref = sat * n + np.arange(n, dtype=np.int64)
        free = np.ones(n, dtype=bool)
        oy, ox = origins[sat]
        peers = list(order[:rank])
        first = (preferred or {}).get(sat)
        if first in peers:
            peers.remove(first)
            peers.insert(0, first)
        for u in peers:
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


def _rans_encode(symbols: list, indexes: list, cdfs: list, offset: int = 0) -> bytes:
    """CompressAI's rANS string of ``symbols``, each coded with ``cdfs[indexes[i]]`` (all from ``offset``)."""
    from compressai.ans import RansEncoder

    return RansEncoder().encode_with_indexes(symbols, indexes, cdfs, [len(c) for c in cdfs], [offset] * len(cdfs))


def _rans_decode(string: bytes, indexes: list, cdfs: list, offset: int = 0) -> list:
    """Inverse of :func:`_rans_encode`, the string padded so the decoder stays in it (:func:`.padded`)."""
    from compressai.ans import RansDecoder

    return RansDecoder().decode_with_indexes(padded(string, len(indexes)), indexes, cdfs, [len(c) for c in cdfs],
                                             [offset] * len(cdfs))


def _binary_cdf(v: int) -> list[int]:
    """Quantised CDF (16-bit) of a flag whose value 1 has probability (v + ½)/256 (``v`` a u8), with
    CompressAI's overflow bin (never used: a flag is 0 or 1)."""
    from compressai._CXX import pmf_to_quantized_cdf

    p = (v + 0.5) / 256.0
    return pmf_to_quantized_cdf([1.0 - p, p, 1e-9], _PRECISION)


def _flag_context(predicted: np.ndarray, k: int, width: int) -> int:
    """Position ``k``'s context (:data:`FLAG_CONTEXTS`) from the (n,) ``predicted`` grid of ``width`` columns
    (only the positions before ``k`` are read, so the ground can take it from the flags decoded so far)."""
    return int(k % width > 0 and predicted[k - 1]) + 2 * int(k >= width and predicted[k - width])


def flag_contexts(predicted: np.ndarray, positions: np.ndarray, width: int) -> np.ndarray:
    """Each of ``positions``' context (:func:`_flag_context`)."""
    return np.asarray([_flag_context(predicted, k, width) for k in positions.tolist()], dtype=np.int64)


def fit_flag_model(flags: np.ndarray, contexts: np.ndarray) -> tuple:
    """Per context, the frequency of "predicted" as a u8 v, (v + ½)/256 nearest the measured one."""
    out = []
    for k in range(FLAG_CONTEXTS):
        f = flags[contexts == k]
        out.append(int(np.clip(np.floor(256 * f.mean()), 0, 255)) if f.size else 128)
    return tuple(out)


def encode_flags(flags: np.ndarray, contexts: np.ndarray, model: tuple) -> bytes:
    if flags.size == 0:
        return b""
    return _rans_encode(flags.astype(int).tolist(), contexts.astype(int).tolist(), [_binary_cdf(v) for v in model])


def decode_flags(data: bytes, positions: np.ndarray, n: int, width: int, model: tuple) -> np.ndarray:
    """The flags of ``positions`` (ascending, of an (n,) grid of ``width`` columns), each decoded in its
    context from the flags before it."""
    if len(positions) == 0:
        return np.zeros(0, dtype=bool)
    from compressai.ans import RansDecoder

    cdfs = [_binary_cdf(v) for v in model]
    lengths, offsets = [len(c) for c in cdfs], [0] * len(cdfs)
    decoder = RansDecoder()
    decoder.set_stream(padded(data, len(positions)))
    predicted = np.zeros(n, dtype=bool)
    for k in positions.tolist():
        value = decoder.decode_stream([_flag_context(predicted, k, width)], cdfs, lengths, offsets)[0]
        if value not in (0, 1):
            raise BitstreamError("prediction flags unreadable")
        predicted[k] = value == 1
    return predicted[positions]


def prediction_symbols(y_ref: torch.Tensor, means: torch.Tensor | None) -> torch.Tensor:
    """c = round(ŷ_ref − μ): the reference in this satellite's symbol domain ((C, k) tensors)."""
    return torch.round(y_ref if means is None else y_ref - means)


def residual_scales(sigma: torch.Tensor, beta) -> torch.Tensor:
    """The residual model's scales: σ·β, with ``beta`` one index of :data:`BETA_LEVELS` or a tuple of one
    per σ band (:data:`SCALE_BANDS`)."""
    if isinstance(beta, tuple):
        levels = torch.tensor(BETA_LEVELS, dtype=sigma.dtype)[torch.as_tensor(beta, dtype=torch.long)]
        return sigma * levels[torch.bucketize(sigma, torch.tensor(SCALE_BANDS, dtype=sigma.dtype))]
    return sigma * BETA_LEVELS[beta]


def _flag_bits(m: int, count: int) -> float:
    p = min(max(m / count, 1 / 65536), 1 - 1 / 65536)
    return -count * (p * math.log2(p) + (1 - p) * math.log2(1 - p)) if 0 < m < count else 0.0


def _betas_by_scale(level_bits: list, sigma: torch.Tensor, alone: torch.Tensor, start: int,
                    sweeps: int = 3) -> tuple[tuple, float]:
    """β per σ band, by coordinate descent on the estimated bits of the positions (each the cheaper of
    its residual and its coding alone) plus the flags, from ``start`` everywhere. ``level_bits``: per
    index of :data:`BETA_LEVELS`, the (C, m) bits of the residuals at that β. Returns the indexes and
    that total over these positions."""
    bands = torch.bucketize(sigma, torch.tensor(SCALE_BANDS, dtype=sigma.dtype))  # (C, m)
    nb, K = len(SCALE_BANDS) + 1, len(BETA_LEVELS)
    per = torch.zeros(nb, K, sigma.shape[1], dtype=torch.float64)  # bits of band b's symbols at each β
    for k, bits in enumerate(level_bits):
        per[:, k] = _band_sums(bits.double(), bands, nb)
    alone = alone.double()

    def total(betas):
        pred = per[torch.arange(nb), torch.as_tensor(betas)].sum(0)
        use = pred < alone
        return float(torch.where(use, pred, alone).sum()) + _flag_bits(int(use.sum()), len(alone))

    betas = [start] * nb
    best = total(betas)
    for _ in range(sweeps):
        changed = False
        for b in range(nb):
            for k in range(K):
                if k == betas[b]:
                    continue
                trial = betas[:b] + [k] + betas[b + 1:]
                t = total(trial)
                if t < best - 1e-9:
                    best, betas, changed = t, trial, True
        if not changed:
            break
    return tuple(betas), best


def _band_sums(bits: torch.Tensor, bands: torch.Tensor, nb: int) -> torch.Tensor:
    """(nb, m) sums over the channels of ``bits`` (C, m) within each σ band (``bands`` (C, m))."""
    out = torch.zeros(nb, bits.shape[1], dtype=torch.float64)
    for b in range(nb):
        out[b] = torch.where(bands == b, bits, 0).sum(0)
    return out


@torch.no_grad()
def encode(model, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None, refs: np.ndarray,
           satellite: int, y_ref: torch.Tensor, calibration: "Calibration | None" = None,
           by_scale: bool = False) -> PredictiveCoding:
    """Predictive coding of one satellite's ŷ.

    ``y`` (1, C, H, W) its latent, ``scales``/``means`` its hyperprior's σ and μ (means None: zero),
    ``refs`` its reference map, ``y_ref`` (C, H·W) the prediction at each position: the referenced ŷ,
    or with ``calibration`` the latent of the calibrated reference frame (:func:`calibrated_prediction`);
    columns of positions without a reference are ignored. ``by_scale``: also try a β per σ band
    (:data:`SCALE_BANDS`, 5 side bytes), kept where it costs fewer bits. Returns the y string (every
    position), the side string (with the calibration, when given) and the decisions.
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
        rest = float(bits_alone.sum() - alone_c.sum())
        best_total = math.inf
        level_bits = [_symbol_bits(gc, r, scale_indexes(gc, residual_scales(sigma[:, ci], k)))
                      for k in range(len(BETA_LEVELS))]  # (C, m) each
        for k, bits in enumerate(level_bits):
            bits_pred = bits.sum(0)
            use = bits_pred < alone_c
            total = rest + float(torch.where(use, bits_pred, alone_c).sum()) + _flag_bits(int(use.sum()), len(cand))
            if total < best_total:
                best_total, best_beta = total, k
        if by_scale:
            betas, t = _betas_by_scale(level_bits, sigma[:, ci], alone_c, best_beta)
            total = rest + t + 8 * _by_scale_bytes()
            if total < best_total:
                best_total, best_beta = total, betas
        chosen = (level_bits[best_beta] if isinstance(best_beta, int)
                  else _symbol_bits(gc, r, scale_indexes(gc, residual_scales(sigma[:, ci], best_beta))))
        bits_pred = chosen.sum(0)
        best_use = (bits_pred < alone_c).numpy()
        predicted[cand[best_use]] = True
        pi = torch.as_tensor(cand[best_use], dtype=torch.long)
        symbols[:, pi] = r[:, torch.as_tensor(np.nonzero(best_use)[0], dtype=torch.long)]
        indexes[:, pi] = scale_indexes(gc, residual_scales(sigma[:, pi], best_beta))
    flags = predicted[cand]
    contexts = flag_contexts(predicted, cand, y.shape[3])
    p1 = fit_flag_model(flags, contexts)
    by = isinstance(best_beta, tuple)
    head = (0 if by else best_beta) | (_BY_SCALE if by else 0) | (_CALIBRATED if calibration is not None else 0)
    head |= 0 if flags.size else _NO_FLAGS
    side = ((_SIDE.pack(head, *p1) if flags.size else bytes([head]))
            + (_pack_betas(best_beta) if by else b"")
            + (calibration.to_bytes() if calibration is not None else b"") + encode_flags(flags, contexts, p1))
    y_string = gc.compress(symbols[None, :, :, None], indexes[None, :, :, None])[0]
    return PredictiveCoding(y_string, side, best_beta, predicted, len(cand),
                            {"alone": float(bits_alone.sum()), "chosen": best_total})


def _by_scale_bytes() -> int:
    return (len(SCALE_BANDS) + 2) // 2


def _pack_betas(betas: tuple) -> bytes:
    padded_ = list(betas) + [0] * (2 * _by_scale_bytes() - len(betas))
    return bytes((padded_[i] << 4) | padded_[i + 1] for i in range(0, len(padded_), 2))


def _unpack_betas(data: bytes) -> tuple:
    values = [v for byte in data for v in (byte >> 4, byte & 0x0F)]
    return tuple(values[:len(SCALE_BANDS) + 1])


def parse_side(side: bytes) -> tuple:
    """(β: an index of :data:`BETA_LEVELS`, or a tuple of one per σ band; the flags' model, a u8 per
    context (:func:`fit_flag_model`); flags' rANS
    string) of a side string (its calibration: :func:`side_calibration`)."""
    beta, p1, _, rest = _split_side(side)
    return beta, p1, rest


def side_calibration(side: bytes) -> "Calibration | None":
    """The calibration a side string carries (None: the prediction is the referenced ŷ itself)."""
    return _split_side(side)[2]


def _split_side(side: bytes):
    if not side or (not side[0] & _NO_FLAGS and len(side) < _SIDE.size):
        raise BitstreamError("prediction side information truncated")
    head = side[0]
    p1, rest = (None, side[1:]) if head & _NO_FLAGS else (tuple(side[1:_SIDE.size]), side[_SIDE.size:])
    beta = head & ~(_CALIBRATED | _BY_SCALE | _NO_FLAGS)
    if beta >= len(BETA_LEVELS):
        raise BitstreamError(f"prediction scale index {beta} out of range (0..{len(BETA_LEVELS) - 1})")
    if head & _BY_SCALE:
        if beta or len(rest) < _by_scale_bytes():
            raise BitstreamError("prediction scale indexes by σ band truncated")
        beta, rest = _unpack_betas(rest[:_by_scale_bytes()]), rest[_by_scale_bytes():]
    calibration = None
    if head & _CALIBRATED:
        calibration, used = Calibration.from_bytes(rest)
        rest = rest[used:]
    return beta, p1, calibration, rest


#: Block sides [px] of a registration's displacement field that the encoder tries (each a multiple of
#: :data:`BLOCK`); the field's bytes are counted against what a finer field saves.
REGISTRATION_BLOCKS = (32, 64)
WINDOW = 48  # smallest correlation window [px]: chosen on the validation split (benchmarks/bench_registration.py)
_QUARTERS = 4  # displacements are sent in quarter pixels, int8: ±31.75 px
_REG_HEAD = struct.Struct("<BBBB")  # log2(block side) (bit 7: the change-of-ŷ form), block rows, block columns,
#                                     the Laplace scale indexes of dy (high 4 bits) and dx (low 4 bits)
_DELTA = 0x80
_REGISTERED = 0x80  # set in a calibration's band-count byte when a registration follows
#: Scales b [quarter pixels] of the discretised Laplace models a field's components may be coded with:
#: 2^(k/2), k = 0..15 (1 to 181 quarter pixels); the encoder takes the one of fewest bits per component.
FIELD_SCALES = tuple(2.0 ** (k / 2.0) for k in range(16))
_FIELD_MODELS: list = []  # [CDFs, (scales, 256) bits of each int8 value], built once


def _field_models() -> list:
    """The 16-bit quantised CDFs of int8 displacements under each :data:`FIELD_SCALES` Laplace model
    (256 symbols from −128, and CompressAI's overflow bin, never used), and the bits each value costs."""
    if not _FIELD_MODELS:
        from compressai._CXX import pmf_to_quantized_cdf

        k = np.arange(-128, 128, dtype=np.float64)
        cdfs = []
        for b in FIELD_SCALES:
            pmf = np.exp(-np.abs(k) / b)
            cdfs.append(pmf_to_quantized_cdf((pmf / pmf.sum()).tolist() + [1e-9], _PRECISION))
        freq = np.diff(np.asarray([c[:257] for c in cdfs], dtype=np.float64), axis=1)
        _FIELD_MODELS.extend([cdfs, -np.log2(np.maximum(freq, 1) / (1 << _PRECISION))])
    return _FIELD_MODELS


def _field_scale_index(values: np.ndarray) -> int:
    """The :data:`FIELD_SCALES` index whose quantised model codes ``values`` (int8) in the fewest bits."""
    counts = np.bincount(values.astype(np.int64).ravel() + 128, minlength=256)
    return int(np.argmin(_field_models()[1] @ counts))


@dataclass(frozen=True)
class Registration:
    """A block-wise displacement field taking the reference frame onto this satellite's capture: at
    block (i, j) the frame is sampled at (row + dy, column + dx) [quarter pixels, int8], the field
    interpolated bilinearly between block centres. It carries what a constant-height orthorectification
    leaves: parallax of relief and buildings between simultaneous views, and the RPCs' local error.
    Sent as its length (u16), a 4-byte head and the displacements rANS-coded (CompressAI's coder) with a
    discretised Laplace model per component, its scale (:data:`FIELD_SCALES`) chosen by the encoder and
    sent in the head: a field's displacements are mostly a few quarter pixels with some tens where relief
    stands, which that model fits; on the Giza pair's 64-pixel field it takes 94 bytes (head included)
    where the deflated (zlib) ones took 111 (measured). Written by hand: no library codes a small integer
    field with a parametric model."""

    block: int
    dy: np.ndarray  # (rows, columns) int8, quarter pixels
    dx: np.ndarray
    # the prediction: g_a of the resampled frame itself (True), or the referenced ŷ plus the change that
    # resampling and the gain make to g_a of the frame (False; bit 7 of the block byte)
    direct: bool = True

    def to_bytes(self) -> bytes:
        dy, dx = self.dy.astype(np.int8), self.dx.astype(np.int8)
        sy, sx = _field_scale_index(dy), _field_scale_index(dx)
        head = _REG_HEAD.pack((self.block.bit_length() - 1) | (0 if self.direct else _DELTA), *dy.shape,
                              (sy << 4) | sx)
        symbols = np.concatenate([dy.ravel(), dx.ravel()]).astype(int).tolist()
        payload = head + _rans_encode(symbols, [sy] * dy.size + [sx] * dx.size, _field_models()[0], -128)
        return struct.pack("<H", len(payload)) + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple["Registration", int]:
        if len(data) < 2:
            raise BitstreamError("prediction registration truncated")
        (length,) = struct.unpack_from("<H", data, 0)
        if len(data) < 2 + length:
            raise BitstreamError("prediction registration truncated")
        if length < _REG_HEAD.size:
            raise BitstreamError("prediction registration unreadable")
        log2, rows, cols, scales = _REG_HEAD.unpack_from(data, 2)
        direct, block = not log2 & _DELTA, 1 << (log2 & 0x1F)
        if log2 & 0x60 or block < BLOCK or block > 1024 or rows == 0 or cols == 0:
            raise BitstreamError(f"prediction registration: a {rows}×{cols} field of {block}-pixel blocks")
        # bounded: at most 2·255² symbols (u8 sizes), each read within the padding (codecs.overread)
        count = rows * cols
        values = np.asarray(_rans_decode(bytes(data[2 + _REG_HEAD.size:2 + length]),
                                         [scales >> 4] * count + [scales & 0x0F] * count, _field_models()[0], -128),
                            dtype=np.int64)
        if np.any((values < -128) | (values > 127)):
            raise BitstreamError("prediction registration unreadable")
        values = values.astype(np.int8).reshape(2, rows, cols)
        return cls(block, values[0].copy(), values[1].copy(), direct), 2 + length

    def shape_for(self, P: int, Q: int) -> tuple[int, int]:
        """The field's (rows, columns) of blocks over a (P, Q) pixel frame."""
        return -(-P // self.block), -(-Q // self.block)

    def field(self, P: int, Q: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense (P, Q) displacements [px], bilinear between block centres (constant beyond the outer ones)."""
        from scipy.ndimage import map_coordinates

        if self.shape_for(P, Q) != self.dy.shape:
            raise BitstreamError(f"prediction registration: a {self.dy.shape[0]}×{self.dy.shape[1]} field does not "
                                 f"cover a {P}×{Q} image in {self.block}-pixel blocks")
        r, c = np.meshgrid((np.arange(P) + 0.5) / self.block - 0.5, (np.arange(Q) + 0.5) / self.block - 0.5,
                           indexing="ij")
        return tuple(map_coordinates(f.astype(np.float64) / _QUARTERS, [r, c], order=1, mode="nearest")
                     for f in (self.dy, self.dx))


def warp(frame: torch.Tensor, registration: Registration) -> torch.Tensor:
    """``frame`` (1, C, P, Q) resampled through ``registration`` (cubic spline, float64: the encoder and
    the ground compute the same samples)."""
    from scipy.ndimage import map_coordinates

    P, Q = frame.shape[-2:]
    fy, fx = registration.field(P, Q)
    r, c = np.mgrid[0:P, 0:Q].astype(np.float64)
    coords = [r + fy, c + fx]
    out = [map_coordinates(frame[0, k].double().numpy(), coords, order=3, mode="nearest") for k in range(frame.shape[1])]
    return torch.from_numpy(np.stack(out)[None]).to(frame.dtype)


def fit_registration(x: torch.Tensor, frame: torch.Tensor, mask: np.ndarray, block: int) -> Registration:
    """On board: the displacement of each ``block``-pixel block of the reference ``frame`` onto this
    satellite's capture ``x`` (both (1, C, P, Q); ``mask`` (H·W,) the latent positions with a reference),
    by sub-pixel phase correlation (scikit-image, quarter pixels; the window's mean removed and a Hann
    taper applied, without which its edges pull the peak to zero shift) over a window of at least :data:`WINDOW` px
    centred on the block. Blocks whose window is not ≥ 90 % referenced ground, is flat, or gives a displacement
    beyond a quarter of the window take the median of the others (0 where none)."""
    from skimage.registration import phase_cross_correlation

    P, Q = x.shape[-2:]
    own, ref = x[0].double().mean(0).numpy(), frame[0].double().mean(0).numpy()
    valid = np.repeat(np.repeat(mask.reshape(P // BLOCK, Q // BLOCK), BLOCK, 0), BLOCK, 1)
    rows, cols = -(-P // block), -(-Q // block)
    win = min(max(block, WINDOW), P, Q)
    taper = np.outer(np.hanning(win), np.hanning(win))
    dy, dx = np.full((rows, cols), np.nan), np.full((rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            r0 = min(max(0, i * block + block // 2 - win // 2), max(0, P - win))
            c0 = min(max(0, j * block + block // 2 - win // 2), max(0, Q - win))
            sl = (slice(r0, r0 + win), slice(c0, c0 + win))
            a, b = own[sl], ref[sl]
            if valid[sl].mean() < 0.9 or a.std() < 1e-4 or b.std() < 1e-4:
                continue
            a, b = (a - a.mean()) * taper, (b - b.mean()) * taper  # no window edge to correlate at shift 0
            shift, _, _ = phase_cross_correlation(a, b, upsample_factor=_QUARTERS, normalization=None)
            if np.all(np.abs(shift) < win / 4):
                dy[i, j], dx[i, j] = -shift[0], -shift[1]
    q = []
    for f in (dy, dx):
        fill = float(np.nanmedian(f)) if np.isfinite(f).any() else 0.0
        f = np.where(np.isfinite(f), f, fill)
        q.append(np.clip(np.round(f * _QUARTERS), -128, 127).astype(np.int8))
    return Registration(block, q[0], q[1])


@dataclass(frozen=True)
class Calibration:
    """Per-band gain and bias taking the reference's radiometry into this satellite's:
    own ≈ gain·reference + bias, on the [0, 1] pixel scale, each stored as float16 (4 bytes a band);
    with a :class:`Registration`, the reference frame is first resampled through it."""

    gain: tuple
    bias: tuple
    registration: Registration | None = None

    def to_bytes(self) -> bytes:
        values = np.asarray([v for pair in zip(self.gain, self.bias) for v in pair], dtype="<f2")
        head = len(self.gain) | (_REGISTERED if self.registration is not None else 0)
        out = struct.pack("<B", head) + values.tobytes()
        return out + (self.registration.to_bytes() if self.registration is not None else b"")

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple["Calibration", int]:
        if not data:
            raise BitstreamError("prediction calibration truncated")
        bands = data[0] & ~_REGISTERED
        size = 1 + 4 * bands
        if bands == 0 or len(data) < size:
            raise BitstreamError("prediction calibration truncated")
        values = np.frombuffer(data[1:size], dtype="<f2").astype(np.float64).reshape(bands, 2)
        if not np.all(np.isfinite(values)) or np.any(values[:, 0] <= 0):
            raise BitstreamError("prediction calibration: a gain is not a positive finite number")
        registration = None
        if data[0] & _REGISTERED:
            registration, used = Registration.from_bytes(data[size:])
            size += used
        return cls(tuple(values[:, 0].tolist()), tuple(values[:, 1].tolist()), registration), size


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


def fit_calibration(x: torch.Tensor, frame: torch.Tensor, mask: np.ndarray, method: str = "moments") -> Calibration:
    """Per-band gain and bias mapping the reference frame onto this satellite's own capture ``x``
    (1, C, H·16, W·16) over the blocks of ``mask``, rounded to float16, as sent.

    ``method``: 'moments' matches mean and standard deviation (relative radiometric normalisation):
    for the change a calibration makes to the referenced ŷ (:func:`calibrated_prediction`) a
    least-squares fit of own on reference would shrink the gain by the scenes' own differences
    (regression dilution); moments do not. 'least_squares' is the fit that minimises the prediction's
    squared error, for a frame used as the prediction itself (:func:`registered_prediction`): on the
    Giza pair it saves 0.9 % of the set's bits more than moments there (measured)."""
    own = _blocks(x)[torch.as_tensor(np.nonzero(mask)[0])].double()
    ref = _blocks(frame)[torch.as_tensor(np.nonzero(mask)[0])].double()
    gains, biases = [], []
    for c in range(x.shape[1]):
        u, v = own[:, c].flatten(), ref[:, c].flatten()
        sv = float(v.std()) if v.numel() > 1 else 0.0
        if sv <= 1e-6:
            g = 1.0
        elif method == "least_squares":
            g = float(((u - u.mean()) * (v - v.mean())).mean() / ((v - v.mean()) ** 2).mean())
        else:
            g = float(u.std()) / sv
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
def registered_prediction(model, frame: torch.Tensor, calibration: Calibration, y_ref: torch.Tensor,
                          warped: torch.Tensor | None = None) -> torch.Tensor:
    """(C_latent, H·W) prediction of a registered calibration: g_a of the reference frame resampled through
    the registration, with the gain and bias applied; in the direct form that itself, otherwise added
    as a change (less g_a of the frame as decoded) to the referenced ŷ ``y_ref``. Neither form wins
    everywhere (measured): once resampled, the frame's blocks no longer stand on the referenced cells,
    which favours the direct form where the shifts are large (the Pléiades pairs); where they are a
    pixel or two the referenced ŷ is still the better anchor. ``warped``: :func:`warp` of the frame
    through this registration, where the caller already has it (the same float64 samples)."""
    g = torch.tensor(calibration.gain, dtype=frame.dtype)[None, :, None, None]
    b = torch.tensor(calibration.bias, dtype=frame.dtype)[None, :, None, None]
    moved = (warp(frame, calibration.registration) if warped is None else warped) * g + b
    if calibration.registration.direct:
        y = model.g_a(moved)
        return y[0].reshape(y.shape[1], -1)
    y = model.g_a(torch.cat([moved, frame]))
    return y_ref + (y[0] - y[1]).reshape(y.shape[1], -1)


def calibrated_reference(model, frame: torch.Tensor, calibration: Calibration, y_ref: torch.Tensor,
                         warped: torch.Tensor | None = None) -> torch.Tensor:
    """The prediction (C_latent, H·W) a calibrated stream codes against, from the referenced ŷ ``y_ref``
    (``warped``: see :func:`registered_prediction`)."""
    if calibration.registration is not None:
        return registered_prediction(model, frame, calibration, y_ref, warped)
    return y_ref + calibrated_prediction(model, frame, calibration)


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
    if (p1 is None) != (len(cand) == 0):
        raise BitstreamError(f"prediction side information: {'no' if p1 is None else 'a'} flag model for "
                             f"{len(cand)} positions with a reference")
    flags = decode_flags(flag_string, cand, n, scales.shape[3], p1)
    pos = cand[flags]
    indexes = scale_indexes(gc, sigma)
    pi = torch.as_tensor(pos, dtype=torch.long)
    indexes[:, pi] = scale_indexes(gc, residual_scales(sigma[:, pi], beta))
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
