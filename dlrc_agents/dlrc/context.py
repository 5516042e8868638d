"""Filter and entropy coding for context-model codecs, bit-exact with DLRC's copies.

In the hyperprior family the Gaussian parameters (μ, σ) of ŷ depend on z alone, so pruned
positions can simply be left out (:mod:`.filter`). In a context model they also depend on
the already-decoded neighbours, so a pruned position must still enter the context, with
the same value on board and on the ground. The rule implemented here:

- the codec's decoding order is walked step by step: raster order one position at a time
  for the autoregressive family (``mbt2018``, ``cheng2020-anchor``, ``cheng2020-attn``:
  a 5×5 masked convolution over ŷ), and for ELIC (``elic2022-official`` /
  ``elic2022-chandelier``) channel group after channel group, each group's anchors
  ((h + w) even, parameters from z and the earlier groups) then its non-anchors (from the
  anchors as well);
- at each step the parameters are computed from the context built so far; a *coded*
  position is quantised, ŷ = round(y − μ) + μ, and its symbols are written to the rANS
  stream; a *copied* position writes no symbol and takes its representative's ŷ into the
  context instead: an earlier position of the same satellite (already decoded), or a
  position of a satellite decoded earlier in priority order;
- the ground runs the same function with the rANS decoder in place of the quantiser
  (masked weights at every step, never the unmasked shortcut), so its ỹ equals the
  intended one bit for bit.

Decoding-order rule (enforced by the Selector and checked by the Reconstructor): within a
satellite a copy may only point to a position decoded *before* it: an earlier raster
position for the autoregressive family; for ELIC an anchor may copy an earlier anchor, a
non-anchor any anchor or an earlier non-anchor, never an anchor a non-anchor (whose value
depends on that anchor through the spatial context: a cycle). A copied vector spans every
channel group, and the group-k part of an earlier position is always decoded by the time
the group-k part of the copy is needed. Copies between satellites point at satellites
decoded earlier, whose ỹ is complete.

Copies from another satellite need that satellite's ŷ vectors on board (the context of
later positions depends on them): :func:`representative_exchange_bytes` reports what the
higher-priority satellites must send (float32 vectors) on top of the signatures. The
alternative ``context_fill='prediction'`` puts the context model's own mean μ at such a
position instead (computed identically at both ends from the context so far): no
exchange at all, the satellites code in parallel, and the ground still copies the
representative's ŷ into ỹ for the synthesis transform; the price is a slightly worse
context around those positions, hence a few more bits.

Determinism: the encoder and decoder run this one function with identical tensor shapes
(batch 1, the same crops and the same full-size parameter passes), so the same kernels
and reduction orders produce the same parameters; the loop runs under one CPU thread
(:func:`single_thread`) so the result does not depend on the thread count either.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ans import BufferedRansEncoder, RansDecoder

from ..codecs.hyperprior import code_z, decode_z
from ..codecs.overread import padded
from .timing import timed

KERNEL = 5  # the autoregressive context: 5×5 masked convolution
PAD = KERNEL // 2


def anchor_mask(H: int, W: int) -> np.ndarray:
    """(H·W,) bool, raster order: ELIC's checkerboard anchors, (h + w) even."""
    raster = np.arange(H * W)
    return ((raster // W) + (raster % W)) % 2 == 0


def decode_order(family: str, H: int, W: int) -> np.ndarray:
    """Raster positions of an H×W latent in the order the codec decodes them."""
    raster = np.arange(H * W, dtype=np.int64)
    if family in ("hyperprior", "autoregressive"):
        return raster
    if family == "checkerboard":
        anchor = anchor_mask(H, W)
        return np.concatenate([raster[anchor], raster[~anchor]])
    raise ValueError(f"unknown codec family {family!r}")


def decode_rank(family: str, H: int, W: int) -> np.ndarray:
    """(H·W,) step of each raster position in :func:`decode_order`."""
    order = decode_order(family, H, W)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank


@contextmanager
def single_thread():
    """Run the block on one intra-op thread (restores the previous count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class ContextLatent:
    """On-board state of one image for a context codec: y, the coded z and its side parameters."""

    y: torch.Tensor  # (1, C, H, W), after the representative strategy
    z_strings: bytes
    z_shape: tuple[int, int]
    side: torch.Tensor  # h_s(ẑ): the hyperprior half of the entropy parameters' input


@dataclass
class FillPlan:
    """Where each latent position of one satellite gets its ŷ.

    ``source[p]`` = p: coded in this satellite's stream; another position q ≥ 0: a copy of
    this satellite's position q (decoded before p); −1: a copy of ``external[:, p]``, the
    ŷ of a representative held by a satellite decoded earlier.
    """

    source: np.ndarray  # (H·W,) int64
    external: torch.Tensor | None  # (C, H·W) or None when nothing is copied from outside
    # what a foreign copy puts into the context: 'representative' (external) or 'prediction' (μ)
    fill: str = "representative"

    @property
    def coded(self) -> np.ndarray:
        return self.source == np.arange(self.source.size)


CONTEXT_FILLS = ("representative", "prediction")


def plan_from_references(refs: np.ndarray, satellite: int, decoded: dict, channels: int,
                         fill: str = "representative") -> FillPlan:
    """A :class:`FillPlan` from a reference map (owner · H·W + q per position) and the ỹ
    (C, H·W) of every satellite decoded so far (``decoded``)."""
    if fill not in CONTEXT_FILLS:
        raise ValueError(f"dlrc.context_fill: unknown value {fill!r} (one of {', '.join(CONTEXT_FILLS)})")
    refs = np.asarray(refs, dtype=np.int64)
    n = refs.size
    owner, q = refs // n, refs % n
    source = np.where(owner == satellite, q, -1)
    external = None
    foreign = np.nonzero(owner != satellite)[0]
    owners = np.unique(owner[foreign]).tolist()
    # ('prediction' on board: the peers' ŷ are not needed there and may be absent; on the ground a
    # lost stream's positions keep the prediction: NaN in ``external``, left as the walk made them)
    if foreign.size and (fill == "representative" or any(u in decoded for u in owners)):
        external = torch.zeros(channels, n) if fill == "representative" else torch.full((channels, n), float("nan"))
        for u in owners:
            if u not in decoded:
                if fill == "representative":
                    raise ValueError(f"copies from satellite {u}, whose vectors are missing (context_fill "
                                     "'representative' cannot stand in the prediction: the context would differ)")
                continue
            hit = foreign[owner[foreign] == u]
            external[:, torch.as_tensor(hit)] = decoded[u][:, torch.as_tensor(q[hit])]
    return FillPlan(source, external, fill)


def identity_plan(H: int, W: int) -> FillPlan:
    """Every position coded: the codec alone (the baseline), through the same code path."""
    return FillPlan(np.arange(H * W, dtype=np.int64), None)


def check_plan(plan: FillPlan, family: str, H: int, W: int) -> None:
    """Raise ValueError unless every own copy points at a coded position decoded before it."""
    rank = decode_rank(family, H, W)
    own_copy = np.nonzero((plan.source >= 0) & ~plan.coded)[0]
    q = plan.source[own_copy]
    if np.any(q >= H * W) or np.any(~plan.coded[q]) or np.any(rank[q] >= rank[own_copy]):
        raise ValueError("a copy points at a position that is not coded before it in the decoding order")
    if plan.external is None and np.any(plan.source < 0) and plan.fill == "representative":
        raise ValueError("copies from other satellites without their vectors")


def representative_exchange_bytes(plan: FillPlan) -> int:
    """Bytes a satellite must receive from its peers for its context: one float32 ŷ vector
    per distinct foreign representative it copies (0 for the hyperprior family)."""
    if plan.external is None or plan.fill == "prediction":
        return 0
    foreign = plan.source < 0
    if not foreign.any():
        return 0
    vectors = np.unique(plan.external[:, torch.as_tensor(np.nonzero(foreign)[0])].numpy().T, axis=0)
    return int(vectors.shape[0] * vectors.shape[1] * 4)


# ------------------------------------------------------------------ hyper side


def hyper_side(model, family: str, y: torch.Tensor) -> ContextLatent:
    """Code z from y and return h_s(ẑ) computed from the decoded ẑ, as the ground will."""
    if family == "checkerboard":
        out = model.latent_codec["hyper"].compress(y)
        [z_strings] = out["strings"]
        return ContextLatent(y, z_strings[0], tuple(out["shape"]), out["params"])
    z_string, z_shape, z_hat = code_z(model, y)
    return ContextLatent(y, z_string, z_shape, model.h_s(z_hat))


def decode_side(model, family: str, z_string: bytes, z_shape) -> torch.Tensor:
    if family == "checkerboard":
        return model.latent_codec["hyper"].decompress([[z_string]], tuple(z_shape))["params"]
    return model.h_s(decode_z(model, z_string, z_shape))


# ------------------------------------------------------------- the coding walk


class _Symbols:
    """Encoder side: collect (symbol, index) in walk order and hand them to one rANS encoder,
    one call per run of steps that share CDF tables (as CompressAI does: converting the tables
    for every position would cost more than the coding). Decoder side: read them back from
    the stream in the same order."""

    def __init__(self, y_string: bytes | None):
        self.decoding = y_string is not None
        self.written = 0
        self.pending: tuple | None = None  # (tables, symbols list, indexes list) not yet encoded
        if self.decoding:
            self.decoder = RansDecoder()
            if y_string:  # an empty string: nothing coded (flushing an empty rANS encoder crashes)
                self.decoder.set_stream(y_string)
        else:
            self.encoder = BufferedRansEncoder()

    @staticmethod
    def tables(gc):
        return gc.quantized_cdf.tolist(), gc.cdf_length.reshape(-1).int().tolist(), gc.offset.reshape(-1).int().tolist()

    def code(self, gc, tables, y: torch.Tensor | None, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """ŷ of the entries of ``scales``/``means`` (any shape): quantised from ``y`` and written,
        or read from the stream."""
        indexes = gc.build_indexes(scales)
        if self.decoding:
            values = self.decoder.decode_stream(indexes.reshape(-1).tolist(), *tables)
            symbols = torch.tensor(values, dtype=torch.int32).reshape(scales.shape)
        else:
            symbols = gc.quantize(y, "symbols", means)
            if self.pending is not None and self.pending[0] is not tables:
                self._encode_pending()
            if self.pending is None:
                self.pending = (tables, [], [])
            self.pending[1].extend(symbols.reshape(-1).tolist())
            self.pending[2].extend(indexes.reshape(-1).tolist())
            self.written += symbols.numel()
        return gc.dequantize(symbols, means)

    def _encode_pending(self) -> None:
        tables, symbols, indexes = self.pending
        self.encoder.encode_with_indexes(symbols, indexes, *tables)
        self.pending = None

    def finish(self) -> bytes | None:
        if self.decoding:
            return None
        if self.pending is not None:
            self._encode_pending()
        return self.encoder.flush() if self.written else b""


def _walk_autoregressive(model, y, side, plan, sym: _Symbols, timings: dict) -> torch.Tensor:
    _, C2, H, W = side.shape
    C = C2 // 2  # h_s gives (μ, σ) features of width 2C
    gc = model.gaussian_conditional
    tables = _Symbols.tables(gc)
    cp = model.context_prediction
    weight = cp.weight * cp.mask  # masked weights at every step (no unmasked shortcut)
    y_hat = torch.zeros(1, C, H + 2 * PAD, W + 2 * PAD)
    source = plan.source
    for h in range(H):
        for w in range(W):
            p = h * W + w
            src = source[p]
            predicted = src < 0 and plan.fill == "prediction"
            if src == p or predicted:
                with timed(timings, "entropy_modelling"):
                    ctx = F.conv2d(y_hat[:, :, h:h + KERNEL, w:w + KERNEL], weight, bias=cp.bias)
                    params = model.entropy_parameters(torch.cat((side[:, :, h:h + 1, w:w + 1], ctx), dim=1))
                    scales, means = params.squeeze(3).squeeze(2).chunk(2, 1)
                if predicted:  # no symbol: the context takes the model's own prediction
                    y_hat[:, :, h + PAD, w + PAD] = means
                else:
                    with timed(timings, "entropy_coding"):
                        y_hat[:, :, h + PAD, w + PAD] = sym.code(gc, tables, None if y is None else y[:, :, h, w],
                                                                 scales, means)
            elif src >= 0:
                y_hat[:, :, h + PAD, w + PAD] = y_hat[:, :, src // W + PAD, src % W + PAD]
            else:
                y_hat[0, :, h + PAD, w + PAD] = plan.external[:, p]
    return y_hat[:, :, PAD:H + PAD, PAD:W + PAD].contiguous()


def _walk_checkerboard(model, y, side, plan, sym: _Symbols, timings: dict) -> torch.Tensor:
    cg = model.latent_codec["y"]  # ChannelGroupsLatentCodec
    groups, acc = cg.groups, cg.groups_acc
    _, _, H, W = side.shape
    C = acc[-1]
    n = H * W
    y_hat = torch.zeros(1, C, H, W)
    flat = y_hat.view(1, C, n)
    anchor = anchor_mask(H, W)
    for k in range(len(groups)):
        lo, hi = acc[k], acc[k + 1]
        cb = cg.latent_codec[f"y{k}"]  # CheckerboardLatentCodec
        if cb.anchor_parity != "even":
            raise ValueError("only ELIC's even anchor parity is supported")
        gcl = cb.latent_codec["y"]
        gc = gcl.gaussian_conditional
        tables = _Symbols.tables(gc)
        with timed(timings, "entropy_modelling"):
            side_k = cg._get_ctx_params(k, side, list(y_hat.split(groups, dim=1)))
        for step_anchor in (True, False):
            in_step = anchor if step_anchor else ~anchor
            with timed(timings, "entropy_modelling"):
                if step_anchor:
                    ctx = torch.zeros(1, 2 * groups[k], H, W)
                else:
                    ctx = cb.context_prediction(y_hat[:, lo:hi])  # only anchors are filled so far
                scales, means = gcl._chunk(cb.entropy_parameters(cb.merge(ctx, side_k)))
            with timed(timings, "entropy_coding"):
                _fill_step(sym, gc, tables, plan, y, flat, lo, hi, in_step, scales, means)
    return y_hat


def _fill_step(sym, gc, tables, plan: FillPlan, y, flat, lo: int, hi: int, in_step, scales, means) -> None:
    """One checkerboard step of one channel group [lo, hi): code its coded positions, then
    fill its copies (own, then foreign) into ``flat`` (1, C, H·W), a view of ỹ."""
    n = flat.shape[2]
    source, coded = plan.source, plan.coded
    step_coded = torch.as_tensor(np.nonzero(in_step & coded)[0])
    if step_coded.numel():
        take = lambda t: t.reshape(1, hi - lo, n)[:, :, step_coded]  # noqa: E731
        flat[:, lo:hi, step_coded] = sym.code(gc, tables, None if y is None else take(y[:, lo:hi]),
                                              take(scales), take(means))
    copies = np.nonzero(in_step & ~coded & (source >= 0))[0]
    if copies.size:
        flat[:, lo:hi, torch.as_tensor(copies)] = flat[:, lo:hi, torch.as_tensor(source[copies])]
    ext = np.nonzero(in_step & (source < 0))[0]
    if ext.size:
        ext_t = torch.as_tensor(ext)
        if plan.fill == "prediction":  # the model's own mean, from the context so far
            flat[:, lo:hi, ext_t] = means.reshape(1, hi - lo, n)[:, :, ext_t]
        else:
            flat[0, lo:hi, ext_t] = plan.external[lo:hi, ext_t]


@torch.no_grad()
def context_code(model, family: str, side: torch.Tensor, plan: FillPlan, *, y: torch.Tensor | None = None,
                 y_string: bytes | None = None, timings: dict | None = None) -> tuple[bytes | None, torch.Tensor]:
    """Walk the decoding order: encode (``y`` given) or decode (``y_string`` given).

    Returns (the rANS string or None when decoding, ỹ (1, C, H, W)). Stage wall times are
    added to ``timings``: parameter computation as ``entropy_modelling``, quantisation and
    rANS as ``entropy_coding``.
    """
    if (y is None) == (y_string is None):
        raise ValueError("give exactly one of y (encode) and y_string (decode)")
    t = {} if timings is None else timings
    # decoding: at most side's channels × H × W symbols (side holds ≥ C channels); see dlrc_agents.codecs.overread
    sym = _Symbols(None if y_string is None else padded(y_string, side.numel()) if y_string else b"")
    walk = {"autoregressive": _walk_autoregressive, "checkerboard": _walk_checkerboard}.get(family)
    if walk is None:
        raise ValueError(f"{family!r} codecs have no context model")
    with single_thread():
        y_tilde = walk(model, y, side, plan, sym, t)
        with timed(t, "entropy_coding"):
            out = sym.finish()
    foreign = np.nonzero(plan.source < 0)[0]
    if plan.fill == "prediction" and foreign.size and plan.external is not None:
        # the context held μ there; ỹ for the synthesis transform takes the representatives
        known = foreign[torch.isfinite(plan.external[0, torch.as_tensor(foreign)]).numpy()]
        idx = torch.as_tensor(known)
        y_tilde = y_tilde.clone()
        y_tilde.view(1, y_tilde.shape[1], -1)[0, :, idx] = plan.external[:, idx]
    return out, y_tilde
