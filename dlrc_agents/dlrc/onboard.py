"""The on-board DLRC pipeline for a group of satellites observing overlapping ground.

Per satellite: y = g_a(x) → Recognizer signatures → Selector → (strategy) → hyper-
prior and entropy parameters. Signatures are exchanged (``signature_payload``, 8
bytes a position), every satellite runs the Arbiter on the same inputs, and the
Filter codes each satellite's retained positions (context models: :func:`code_context`
walks the decoding order with the copies in the context, satellites in priority order).
The streams are containers of :mod:`.bitstream`. :func:`encode_group` runs the whole group in one process (for
R–D evaluation and tests); the SimPy agents call the same steps one by one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .arbiter import Arbitration, arbitrate, reference_map
from .bitstream import BitstreamError, SatelliteBitstream
from .context import ContextLatent, context_code, decode_order, hyper_side, plan_from_references, representative_exchange_bytes
from ..codecs.hyperprior import HyperLatent, decode_hyper, hyper_analysis
from .filter import encode_positions
from .recognizer import Recognizer
from .selector import Selection, apply_strategy, select
from .timing import timed


@dataclass(frozen=True)
class DLRCConfig:
    rounds: int = 20  # k, LSH rounds
    seed: int = 0  # shared rotation seed
    rotation: str = "dense"  # 'dense' (Haar C×C) or 'hadamard' (see .recognizer)
    rotation_applications: int = 2  # hadamard: sign-flip + Hadamard stages a hash
    norm_guard: float | None = None  # quality guard: the vector's norm, quantised in steps of (1 + g), in its signature
    representative: str = "original"  # or "mean"
    # 'joint': all dense maps LZMA'd together in the top-priority stream (the paper);
    # 'per_satellite': each stream carries its own dense map;
    # 'references': each stream carries its own map as (owner, position) references, which
    # stays decodable when satellites' views of their peers differ (a peer timed out)
    map_transport: str = "joint"
    # 'predictive' (default): maps sent as prediction symbols, LZMA'd; 'lzma': the int32 maps
    # LZMA'd as they are (the paper). Both are exact; the first costs a fraction of a bit a position.
    map_coding: str = "predictive"
    priority: dict | None = None  # sat -> rank (lower first); None: by satellite id
    # context models: a copy from another satellite enters the context as that satellite's ŷ
    # ('representative') or as the model's own prediction μ ('prediction'); see .context
    context_fill: str = "representative"
    # 'copy': the paper's DLRC (drop a vector a higher-priority satellite holds, the ground copies
    # it back); 'predict': code every vector, those a higher-priority satellite also holds as a
    # residual against its ŷ (.predict) — the reconstruction equals the codec alone's
    mode: str = "copy"
    # predict mode: 'gain_bias' also tries a calibrated prediction (the referenced satellites' decoded
    # images, a per-band gain and bias fitted on the overlap, re-analysed: .predict.calibrated_prediction)
    # and keeps it where it costs fewer bits; 'registered' also a block-wise registration of those images
    # onto the capture (.predict.fit_registration); 'none': the referenced ŷ itself
    calibration: str = "none"


def recognizer_for(codec, cfg: DLRCConfig) -> Recognizer:
    """The Recognizer every satellite of a mission builds from the shared settings."""
    return Recognizer(codec.M, cfg.rounds, cfg.seed, cfg.rotation, cfg.rotation_applications, cfg.norm_guard)


@dataclass
class OnboardState:
    """What one satellite holds between the steps of a round."""

    satellite: int
    image_shape: tuple[int, int]
    y: torch.Tensor
    selection: Selection
    latent: HyperLatent | ContextLatent | None = None


@dataclass
class GroupResult:
    streams: dict  # sat -> bytes
    arbitration: Arbitration
    intended: dict = field(default_factory=dict)  # sat -> (C, H, W) ŷ the ground must rebuild
    latents: dict = field(default_factory=dict)  # sat -> HyperLatent
    timings_s: dict = field(default_factory=dict)  # stage -> wall seconds summed over the satellites
    # context codecs: bytes of higher-priority ŷ vectors each satellite needs for its context;
    # predict mode: bytes of the higher-priority streams each satellite needs on board
    exchange_bytes: dict = field(default_factory=dict)
    # predict mode: {sat: PredictiveCoding} (what was predicted, β, the estimated rates)
    predictions: dict = field(default_factory=dict)


#: Stages timed by :func:`encode_group`: the codec's own (paper Table 2) and DLRC's.
CODEC_STAGES = ("analysis_transform", "entropy_modelling", "entropy_coding")
DLRC_STAGES = ("recognizer", "selector", "arbiter")


def signature_payload(signatures: np.ndarray) -> bytes:
    """The bytes a satellite sends to its peers: its H·W signatures, raster order, uint64 LE."""
    return np.asarray(signatures, dtype="<u8").tobytes()


def parse_signature_payload(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


@torch.no_grad()
def analyse(codec, recognizer: Recognizer, satellite: int, x: torch.Tensor, timings: dict | None = None) -> OnboardState:
    """Analysis transform and Recognizer + Selector for one image (1, 3, H, W) in [0, 1].

    Stage wall times are added to ``timings`` (analysis_transform, recognizer, selector).
    """
    t = {} if timings is None else timings
    with timed(t, "analysis_transform"):
        y = codec.model.g_a(x)
    with timed(t, "recognizer"):
        sig = recognizer.signatures(y[0].numpy())
    with timed(t, "selector"):
        order = decode_order(codec.family, *y.shape[2:])
        return OnboardState(satellite, tuple(x.shape[-2:]), y, select(sig, order))


@torch.no_grad()
def model_entropy(codec, state: OnboardState, representative: str, timings: dict | None = None) -> HyperLatent:
    """Entropy modelling of the (strategy-adjusted) latent; overlaps the signature exchange.

    The representative strategy counts as Selector time, the rest as entropy_modelling.
    """
    t = {} if timings is None else timings
    y = state.y
    if representative != "original":
        with timed(t, "selector"):
            y = torch.from_numpy(apply_strategy(y[0].numpy(), state.selection, representative))[None]
    with timed(t, "entropy_modelling"):
        if codec.family == "hyperprior":
            state.latent = hyper_analysis(codec.model, y, codec.means)
        else:  # z and h_s(ẑ); the context part runs in code_context(), in decoding order
            state.latent = hyper_side(codec.model, codec.family, y)
    return state.latent


@torch.no_grad()
def finish(codec, state: OnboardState, arb: Arbitration, map_transport: str,
           map_coding: str = "predictive", y_string: bytes | None = None,
           context_fill: str = "representative", capture: int = 0, members: tuple = ()) -> SatelliteBitstream:
    """Filter + entropy coding of the retained positions, packed in a container of capture
    ``capture`` whose satellites are ``members`` (empty: the arbitration's).

    Context codecs pass the ``y_string`` of :func:`code_context` (hyperprior codecs code here).
    """
    sat = state.satellite
    rank = arb.order.index(sat)
    if map_transport == "joint":
        maps = dict(arb.assignment) if rank == 0 else {}
    elif map_transport == "per_satellite":
        maps = {sat: arb.assignment[sat]}
    elif map_transport == "references":
        maps = {sat: reference_map(arb, sat, state.latent.y.shape[2] * state.latent.y.shape[3])}
    else:
        raise ValueError(f"dlrc.map_transport: unknown value {map_transport!r}")
    lat = state.latent
    C, H, W = lat.y.shape[1:]
    if y_string is None:
        if codec.family != "hyperprior":
            raise ValueError(f"{codec.architecture}: code the context model with code_context() first")
        y_string = encode_positions(codec.model, lat, arb.retained[sat])
    return SatelliteBitstream(
        model=codec.architecture, fingerprint=codec.fingerprint, lmbda=codec.lmbda, satellite=int(sat),
        priority=rank, image_shape=state.image_shape, y_shape=(C, H, W), z_shape=lat.z_shape,
        offset=arb.offsets[sat], retained=len(arb.retained[sat]), z_string=lat.z_strings,
        y_string=y_string, maps=maps,
        map_form="references" if map_transport == "references" else "dense", map_coding=map_coding,
        context_fill=context_fill if codec.family != "hyperprior" else "representative",
        capture=capture, members=tuple(members) or tuple(sorted(arb.order)),
    )


@torch.no_grad()
def code_context(codec, state: OnboardState, arb: Arbitration, decoded: dict, timings: dict | None = None,
                 context_fill: str = "representative"):
    """Context codecs: walk the decoding order for satellite ``state.satellite`` with copies in the
    context (:mod:`.context`). ``decoded`` holds the ỹ (C, H·W) of the satellites of higher
    priority; returns (y string, ỹ (C, H, W), bytes of their vectors this satellite needed on
    board: 0 with ``context_fill='prediction'``, where they only complete ỹ for the ground)."""
    lat = state.latent
    C, H, W = lat.y.shape[1:]
    refs = reference_map(arb, state.satellite, H * W)
    plan = plan_from_references(refs, state.satellite, decoded, C, context_fill)
    y_string, y_tilde = context_code(codec.model, codec.family, lat.side, plan, y=lat.y, timings=timings)
    return y_string, y_tilde[0], representative_exchange_bytes(plan)


def intended_latents(arb: Arbitration, latents: dict) -> dict:
    """ỹ for every satellite: each position takes the ŷ of its representative (any satellite)."""
    table = []
    for sat in arb.order:
        C = latents[sat].y_hat.shape[1]
        flat = latents[sat].y_hat[0].reshape(C, -1)
        table.append(flat[:, torch.as_tensor(arb.retained[sat], dtype=torch.long)])
    pool = torch.cat(table, dim=1)  # (C, total) in dense order
    out = {}
    for sat in arb.order:
        C, H, W = latents[sat].y_hat.shape[1:]
        out[sat] = pool[:, torch.as_tensor(arb.assignment[sat], dtype=torch.long)].reshape(C, H, W)
    return out


def intended_from_references(maps: dict, y_hat: dict, satellites=None) -> dict:
    """ỹ per satellite from reference maps {sat: (H·W,) owner·H·W + q} and each one's ŷ (1, C, H, W).

    Written independently of the Reconstructor (a memoised recursion over positions), so tests
    compare two implementations of the same rule. ``satellites``: the ones to resolve (default: all
    of ``maps``); only the positions their references reach are followed, so another satellite's map
    may reference a stream that is absent (lost) without affecting them.
    """
    memo: dict = {}

    def vector(sat, p, stack=()):
        if (sat, p) in memo:
            return memo[(sat, p)]
        if (sat, p) in stack:
            raise ValueError(f"reference cycle through satellite {sat}")
        C, H, W = y_hat[sat].shape[1:]
        n = H * W
        u, q = divmod(int(maps[sat][p]), n)
        if u == sat:  # its own vector at q (itself, or an earlier position it copies)
            v = y_hat[sat][0].reshape(C, n)[:, q] if q == p else vector(sat, q, stack + ((sat, p),))
        else:
            v = vector(u, q, stack + ((sat, p),))
        memo[(sat, p)] = v
        return v

    out = {}
    for sat in (maps if satellites is None else satellites):
        C, H, W = y_hat[sat].shape[1:]
        out[sat] = torch.stack([vector(sat, p) for p in range(H * W)], dim=1).reshape(C, H, W)
    return out


def needed_streams(refs: dict, sat, n: int) -> set:
    """The satellites whose streams ``sat`` needs to rebuild its references' ŷ: those it references,
    and, transitively, those they reference."""
    need, todo = set(), [sat]
    while todo:
        s = todo.pop()
        for u in np.unique(np.asarray(refs[s]) // n).tolist():
            if u != s and u not in need:
                need.add(u)
                todo.append(u)
    return need


@torch.no_grad()
def encode_group_predictive(codec, images: dict, cfg: DLRCConfig, capture: int = 0, key: bytes | None = None,
                            origins: dict | None = None, preferred: dict | None = None) -> GroupResult:
    """Predict mode (:mod:`.predict`): each satellite, in priority order, decodes from bytes the
    higher-priority streams it needs (as it would on board, timed as ``peer_decode``) and codes its
    every latent, those with a reference as a residual. References: the shared grid's (``origins``,
    {sat: tile origin [px]}; ``preferred``, {sat: peer} taken first where it holds the ground:
    :func:`.predict.grid_references`), else the Arbiter's cross-satellite matches (signatures exchanged)."""
    from . import predict
    from .bitstream import LATENT_STRIDE

    if codec.family != "hyperprior":
        raise ValueError(f"dlrc.mode predict: {codec.architecture} is a context model; predictive coding is "
                         "implemented for the hyperprior family (bmshj2018-hyperprior, mbt2018-mean)")
    recognizer = recognizer_for(codec, cfg)
    t: dict = {}
    order = sorted(images, key=lambda s: (cfg.priority or {}).get(s, s))
    states, latents = {}, {}
    for sat, x in images.items():
        if origins is None:
            states[sat] = analyse(codec, recognizer, sat, x, t)
        else:  # the grid gives the references: no signatures needed
            with timed(t, "analysis_transform"):
                y = codec.model.g_a(x)
            states[sat] = OnboardState(sat, tuple(x.shape[-2:]), y, None)
        latents[sat] = model_entropy(codec, states[sat], "original", t)
    C, H, W = next(iter(latents.values())).y.shape[1:]
    n = H * W
    if origins is not None:
        refs = predict.grid_references(origins, order, H, W, LATENT_STRIDE, preferred)
        arb = None
    else:
        received = {s: parse_signature_payload(signature_payload(st.selection.signatures)) for s, st in states.items()}
        with timed(t, "arbiter"):
            arb = arbitrate(received, cfg.priority, decode_order(codec.family, H, W))
        order = list(arb.order)
        refs = predict.cross_references({s: reference_map(arb, s, n) for s in arb.order}, arb.order, n)
    streams, parsed, codings, exchange = {}, {}, {}, {}
    decoded: dict = {}  # sat -> ŷ (C, n) as a peer decodes it from the stream's bytes
    peer_time: dict = {}
    for sat in order:
        need = needed_streams(refs, sat, n)
        exchange[sat] = sum(len(streams[u]) for u in need)
        t["peer_decode"] = t.get("peer_decode", 0.0) + sum(peer_time[u] for u in need)
        streams[sat], codings[sat], refs[sat] = code_predictive(
            codec, sat, latents[sat], states[sat].image_shape, refs[sat], decoded, order.index(sat),
            tuple(sorted(images)), capture, key, cfg.map_coding, t,
            image=images[sat] if cfg.calibration != "none" else None,
            calibration=cfg.calibration)
        # what a peer does with it: parse and decode (timed once; charged to each satellite that needs it)
        t0 = time.perf_counter()
        parsed[sat] = SatelliteBitstream.from_bytes(streams[sat], expect_fingerprint=codec.fingerprint, key=key)
        decoded[sat] = decode_predictive_stream(codec, parsed[sat], predictive_references(parsed[sat]), decoded)
        peer_time[sat] = time.perf_counter() - t0
    intended = {sat: latents[sat].y_hat[0] for sat in order}
    return GroupResult({sat: streams[sat] for sat in images}, arb, intended, latents, t, exchange, codings)


@torch.no_grad()
def _decoded_images(codec, y_flat: dict, owners, C: int, H: int, W: int) -> dict:
    """{u: x̂ (1, 3, H·16, W·16)} of the referenced satellites, synthesised from their decoded ŷ."""
    return {u: codec.model.g_s(y_flat[u].reshape(1, C, H, W)).clamp_(0, 1) for u in owners if u in y_flat}


def _on_block_grid(x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """``x`` (1, C, h, w) padded (edge-replicated) or cropped to the latent's pixel grid (H·16, W·16)."""
    from .predict import BLOCK

    x = x[..., :H * BLOCK, :W * BLOCK]
    dh, dw = H * BLOCK - x.shape[-2], W * BLOCK - x.shape[-1]
    return torch.nn.functional.pad(x, (0, dw, 0, dh), mode="replicate") if dh or dw else x


@torch.no_grad()
def code_predictive(codec, sat: int, lat, image_shape: tuple, refs: np.ndarray, y_flat: dict, priority: int,
                    members: tuple, capture: int = 0, key: bytes | None = None, map_coding: str = "predictive",
                    timings: dict | None = None, image: torch.Tensor | None = None,
                    calibration: str = "gain_bias") -> tuple:
    """One satellite's predictive stream: (container bytes, :class:`.predict.PredictiveCoding`, the
    reference map it carries).

    ``lat``: its :class:`HyperLatent`; ``refs`` (H·W,) owner·H·W + q; ``y_flat``: {u: ŷ (C, H·W)} of every
    satellite it references (as decoded from their streams). Where prediction pays nowhere the stream
    is coded as the codec alone would, with no map and no flags. Stages timed into ``timings``
    (``prediction``: the decisions and the y string; ``entropy_coding``: the container).

    ``image`` (1, 3, h, w): the satellite's own capture, given for ``calibration`` 'gain_bias' or
    'registered' — the calibrated prediction (synthesising the references, the fit and the re-analysis,
    timed as ``calibration``) is kept where the entropy model says its stream, side bytes included, costs
    fewer bits than the referenced ŷ's; 'registered' also tries a block-wise registration of the
    references onto the capture (:func:`.predict.fit_registration`, each of
    :data:`.predict.REGISTRATION_BLOCKS`)."""
    from . import predict

    t = {} if timings is None else timings
    C, H, W = lat.y.shape[1:]
    n = H * W
    owners, q = refs // n, refs % n
    y_ref = torch.zeros(C, n)
    others = set(owners.tolist()) - {sat}
    for u in others:
        hit = np.nonzero(owners == u)[0]
        y_ref[:, torch.as_tensor(hit)] = y_flat[u][:, torch.as_tensor(q[hit])]
    with timed(t, "prediction"):
        coding = predict.encode(codec.model, lat.y, lat.scales, lat.means, refs, sat, y_ref)
    best_cost = coding.estimated_bits["chosen"]
    if image is not None and others:
        with timed(t, "calibration"):
            frame, mask = predict.reference_frame(_decoded_images(codec, y_flat, others, C, H, W), refs, sat, H, W)
            own = _on_block_grid(image, H, W)
            calibrations = [(predict.fit_calibration(own, frame, mask), None)]  # (calibration, resampled frame)
            if calibration == "registered":  # each block size, the gain and bias refitted on the resampled frame
                for block in predict.REGISTRATION_BLOCKS:
                    registration = predict.fit_registration(own, frame, mask, block)
                    warped = predict.warp(frame, registration)
                    fitted = predict.fit_calibration(own, warped, mask, "least_squares")
                    for direct in (True, False):  # both forms of the prediction (.predict.registered_prediction)
                        calibrations.append((predict.Calibration(fitted.gain, fitted.bias,
                                                                 replace(registration, direct=direct)), warped))
        for cal, warped in calibrations:
            with timed(t, "calibration"):
                y_cal = predict.calibrated_reference(codec.model, frame, cal, y_ref, warped)
            with timed(t, "prediction"):
                calibrated = predict.encode(codec.model, lat.y, lat.scales, lat.means, refs, sat, y_cal, cal,
                                            by_scale=calibration == "registered")
            # the estimate holds the flags and any β by σ band; the calibration's bytes are added
            cost = calibrated.estimated_bits["chosen"] + 8 * len(cal.to_bytes())
            if cost < best_cost:
                coding, best_cost = calibrated, cost
    with timed(t, "prediction"):
        if coding.candidates and not coding.predicted.any():
            refs = sat * n + np.arange(n, dtype=np.int64)
            coding = predict.encode(codec.model, lat.y, lat.scales, lat.means, refs, sat, y_ref)
    own_only = not np.any(refs // n != sat)
    with timed(t, "entropy_coding"):
        stream = SatelliteBitstream(
            model=codec.architecture, fingerprint=codec.fingerprint, lmbda=codec.lmbda, satellite=int(sat),
            priority=priority, image_shape=image_shape, y_shape=(C, H, W),
            z_shape=lat.z_shape, offset=0, retained=n, z_string=lat.z_strings, y_string=coding.y_string,
            maps={} if own_only else {sat: refs}, map_form="references", map_coding=map_coding,
            capture=capture, members=members, side_string=coding.side_string)
        data = stream.to_bytes(key)
    return data, coding, refs


def predictive_references(p: SatelliteBitstream) -> np.ndarray:
    """A predictive stream's reference map; a stream without one references nothing (every position alone)."""
    n = p.y_shape[1] * p.y_shape[2]
    if p.satellite in p.maps:
        return np.asarray(p.maps[p.satellite], dtype=np.int64)
    return p.satellite * n + np.arange(n, dtype=np.int64)


def decode_predictive_stream(codec, p: SatelliteBitstream, refs: np.ndarray, y_flat: dict,
                             missing: set = frozenset()) -> torch.Tensor:
    """ŷ (C, H·W) of a predictive stream given the ŷ (C, H·W) of the satellites it references
    (``missing``: those whose streams are lost; positions predicted from them take μ)."""
    from . import predict

    C, H, W = p.y_shape
    n = H * W
    scales, means = decode_hyper(codec.model, p.z_string, p.z_shape, codec.means)
    if tuple(scales.shape[1:]) != (C, H, W):
        raise BitstreamError(f"satellite {p.satellite}: latent shape {tuple(scales.shape[1:])} differs from header")
    owners, q = refs // n, refs % n
    own = owners == p.satellite
    if np.any(q[own] != np.nonzero(own)[0]):
        raise BitstreamError(f"satellite {p.satellite}: a predictive stream references its own other positions")
    y_ref = torch.zeros(C, n)
    lost = np.isin(owners, list(missing)) & ~own
    for u in set(owners[~own & ~lost].tolist()):
        if y_flat[u].shape[1] != n:
            raise BitstreamError(f"satellite {p.satellite} and satellite {u} have different latent sizes")
        hit = np.nonzero(owners == u)[0]
        y_ref[:, torch.as_tensor(hit)] = y_flat[u][:, torch.as_tensor(q[hit])]
    calibration = predict.side_calibration(p.side_string)
    if calibration is not None:
        if own.all():
            raise BitstreamError(f"satellite {p.satellite}: a calibrated prediction without references")
        if lost.any():  # the frame around every reference changed: no calibrated prediction is reliable
            lost = ~own
        else:
            images = _decoded_images(codec, y_flat, set(owners[~own].tolist()), C, H, W)
            bands = next(iter(images.values())).shape[1]
            if len(calibration.gain) != bands:
                raise BitstreamError(f"satellite {p.satellite}: calibration for {len(calibration.gain)} bands, "
                                     f"the codec codes {bands}")
            frame, _ = predict.reference_frame(images, refs, p.satellite, H, W)
            # a registration's declared field size is checked against the frame before any resampling
            y_ref = predict.calibrated_reference(codec.model, frame, calibration, y_ref)
    y_hat, _ = predict.decode(codec.model, p.y_string, p.side_string, scales, means, refs, p.satellite, y_ref,
                              lost if lost.any() else None)
    return y_hat


@torch.no_grad()
def encode_group(codec, images: dict, cfg: DLRCConfig = DLRCConfig(), capture: int = 0,
                 key: bytes | None = None, origins: dict | None = None, preferred: dict | None = None) -> GroupResult:
    """Run DLRC for satellites {sat: image (1, 3, H, W)}; return their streams and the intended ỹ.

    The streams name capture ``capture`` and the group's satellites; with a mission ``key``
    (:mod:`.auth`) each is authenticated.

    Calls :func:`analyse`, :func:`model_entropy`, :func:`arbitrate` and :func:`finish`, each
    stage timed (``timings_s``): the codec's analysis transform, entropy modelling
    (h_a, z coding, h_s) and entropy coding (Filter gather + rANS of the retained ŷ),
    and DLRC's Recognizer, Selector (clustering and the representative strategy) and
    Arbiter. Building the rotations is a one-off per mission and is not counted.

    ``cfg.mode == 'predict'``: :func:`encode_group_predictive` (``origins``: the satellites' tile
    origins on the shared grid, when known; ``preferred``: {sat: the peer it predicts from first}).
    """
    if cfg.mode == "predict":
        return encode_group_predictive(codec, images, cfg, capture, key, origins, preferred)
    if cfg.mode != "copy":
        raise ValueError(f"dlrc.mode: unknown value {cfg.mode!r} (copy or predict)")
    recognizer = recognizer_for(codec, cfg)
    t: dict = {}
    states = {sat: analyse(codec, recognizer, sat, x, t) for sat, x in images.items()}
    latents = {sat: model_entropy(codec, st, cfg.representative, t) for sat, st in states.items()}
    received = {sat: parse_signature_payload(signature_payload(st.selection.signatures)) for sat, st in states.items()}
    with timed(t, "arbiter"):
        order = decode_order(codec.family, *next(iter(states.values())).y.shape[2:])
        arb = arbitrate(received, cfg.priority, order)
    streams = {}
    if codec.family == "hyperprior":
        for sat, st in states.items():
            with timed(t, "entropy_coding"):
                streams[sat] = finish(codec, st, arb, cfg.map_transport, cfg.map_coding,
                                      capture=capture).to_bytes(key)
        return GroupResult(streams, arb, intended_latents(arb, latents), latents, t)
    # context codecs: in priority order, each satellite's context holds its representatives' ŷ
    intended, decoded, exchange = {}, {}, {}
    for sat in arb.order:
        y_string, intended[sat], exchange[sat] = code_context(codec, states[sat], arb, decoded, t, cfg.context_fill)
        decoded[sat] = intended[sat].reshape(intended[sat].shape[0], -1)
        with timed(t, "entropy_coding"):
            streams[sat] = finish(codec, states[sat], arb, cfg.map_transport, cfg.map_coding, y_string,
                                  cfg.context_fill, capture).to_bytes(key)
    return GroupResult({sat: streams[sat] for sat in states}, arb, intended, latents, t, exchange)
