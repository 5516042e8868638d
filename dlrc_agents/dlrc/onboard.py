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

from dataclasses import dataclass, field

import numpy as np
import torch

from .arbiter import Arbitration, arbitrate, reference_map
from .bitstream import SatelliteBitstream
from .context import ContextLatent, context_code, decode_order, hyper_side, plan_from_references, representative_exchange_bytes
from .filter import HyperLatent, encode_positions, hyper_analysis
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
    # context codecs: bytes of higher-priority ŷ vectors each satellite needs for its context
    exchange_bytes: dict = field(default_factory=dict)


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


def intended_from_references(maps: dict, y_hat: dict) -> dict:
    """ỹ per satellite from reference maps {sat: (H·W,) owner·H·W + q} and each one's ŷ (1, C, H, W).

    Written independently of the Reconstructor (a memoised recursion over satellites),
    so tests compare two implementations of the same rule.
    """
    done: dict = {}

    def resolve(sat, stack=()):
        if sat in done:
            return done[sat]
        if sat in stack:
            raise ValueError(f"reference cycle through satellite {sat}")
        C, H, W = y_hat[sat].shape[1:]
        n = H * W
        own = y_hat[sat][0].reshape(C, n)
        refs = maps[sat]
        out = torch.empty(C, n)
        for p in range(n):
            u, q = int(refs[p] // n), int(refs[p] % n)
            out[:, p] = own[:, q] if u == sat else resolve(u, stack + (sat,))[:, q]
        done[sat] = out
        return out

    return {sat: resolve(sat).reshape(y_hat[sat].shape[1:]) for sat in maps}


@torch.no_grad()
def encode_group(codec, images: dict, cfg: DLRCConfig = DLRCConfig(), capture: int = 0,
                 key: bytes | None = None) -> GroupResult:
    """Run DLRC for satellites {sat: image (1, 3, H, W)}; return their streams and the intended ỹ.

    The streams name capture ``capture`` and the group's satellites; with a mission ``key``
    (:mod:`.auth`) each is authenticated.

    Calls :func:`analyse`, :func:`model_entropy`, :func:`arbitrate` and :func:`finish`, each
    stage timed (``timings_s``): the codec's analysis transform, entropy modelling
    (h_a, z coding, h_s) and entropy coding (Filter gather + rANS of the retained ŷ),
    and DLRC's Recognizer, Selector (clustering and the representative strategy) and
    Arbiter. Building the rotations is a one-off per mission and is not counted.
    """
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
