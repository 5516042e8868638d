"""The real on-board work of a mission: each round's captures, DLRC analysis and coding, and its streams."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..dlrc.alone import encode_alone
from ..dlrc.arbiter import arbitrate
from ..dlrc.context import decode_order
from ..dlrc.onboard import (DLRCConfig, OnboardState, analyse, code_context, finish, model_entropy, parse_signature_payload,
                            recognizer_for, signature_payload, timed)
from dlrc_agents.studies.overlap import draw_observation, window_for_overlap
from dlrc_agents.studies.capture import capture_group
from dlrc_agents.common.imaging import to_uint8

# ---------------------------------------------------------------- real on-board work


@torch.no_grad()
def jpeg2000_baseline(codec, x: torch.Tensor, cfg, satellite: int, capture: int, members: tuple,
                      key: bytes | None = None) -> tuple[bytes, float, float]:
    """The baseline world's JPEG 2000 container of one capture, the measured seconds of its one encode,
    and its rate [bpp]: ``cfg.jpeg2000_bpp``, or the lowest rate (bisection in log-rate to ±1 %) at
    which JPEG 2000 reaches the learned codec's PSNR on this patch (its own decode, quantised to 8 bits)."""
    import time

    from dlrc_agents.codecs import jpeg2000
    from dlrc_agents.common.imaging import quality
    from ..dlrc.alone import encode_alone_jpeg2000

    image = to_uint8(x)
    rate = cfg.jpeg2000_bpp
    if rate is None:
        out = codec.model.compress(x)
        target, _ = quality(x, codec.model.decompress(out["strings"], out["shape"])["x_hat"])
        lo, hi = 0.01, 24.0
        if jpeg2000.rd_point(image, hi, cfg.jpeg2000_mct)["psnr"] < target:
            rate = hi  # JPEG 2000 cannot reach it: its best
        else:
            while hi / lo > 1.01:
                mid = (lo * hi) ** 0.5
                lo, hi = (lo, mid) if jpeg2000.rd_point(image, mid, cfg.jpeg2000_mct)["psnr"] >= target else (mid, hi)
            rate = hi
    t0 = time.perf_counter()
    data = encode_alone_jpeg2000(image, rate, satellite, capture, members, cfg.jpeg2000_mct).to_bytes(key)
    return data, time.perf_counter() - t0, rate

def origin_header(origin: tuple) -> bytes:
    """What a satellite sends its peers in predict mode on the shared grid: its tile's origin on the
    grid (row, column) [px], two u16 (the grid is local to the target, < 65,536 px a side)."""
    return struct.pack("<HH", *(int(v) % 65536 for v in origin))


O_EXP_STEPS = 4  # geometric captures: real rounds are drawn per overlap degree rounded to 1/4


@dataclass
class RealRound:
    """The real work of one observation round, done once and replayed as needed."""

    index: int
    images: dict  # slot -> (1, 3, P, P)
    states: dict  # slot -> OnboardState with latent
    front: dict  # slot -> {stage: s}: analysis transform, recognizer, selector
    modelling: dict  # slot -> s
    baseline: dict  # slot -> {"bytes": container size, "time": {stage: s}, "data": the codec-alone container}
    signatures: dict  # slot -> bytes (the payload actually sent)
    geometric_bound: float
    # (slot, view, order) -> (bytes, {stage: s}, retained fraction, slots whose streams it copies from)
    streams: dict = field(default_factory=dict)
    # context codecs: (slot, view, order) -> that stream's own ŷ (1, C, H, W) (it depends on the view)
    own_hat: dict = field(default_factory=dict)
    # predict mode on the shared grid: slot -> its tile's origin on the grid [px] (sent with its header)
    origins: dict | None = None
    # predict mode: (slot, usable references, order) -> PredictStream
    predicted: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)  # predict mode: (view, order) -> {slot: reference map}


@dataclass
class PredictStream:
    """One satellite's predictive stream of a round (``dlrc.mode: predict``), as coded on board."""

    data: bytes
    timings: dict  # {stage: s}: prediction, entropy_coding
    predicted_fraction: float  # positions coded as a residual against a peer's ŷ
    references: frozenset  # the slots whose ŷ it predicts from (the ground and its peers need their streams)
    decode_s: float  # what a peer (or the ground) spends parsing and decoding it, measured


class OnboardWork:
    """Does (and caches) the real codec and DLRC work for the agents."""

    def __init__(self, codec, scenes: dict, scenario, key: bytes | None = None):
        """``key``: the mission key (:mod:`dlrc_agents.dlrc.auth`) that authenticates every container."""
        self.codec, self.scenes, self.sc, self.key = codec, scenes, scenario, key
        ov = scenario.overlap
        self.window = window_for_overlap(ov.satellites, ov.patch, ov.o_exp[0], ov.grid)
        self.cfg = DLRCConfig(**scenario.dlrc.core())
        self.recognizer = recognizer_for(codec, self.cfg)
        self.rounds: dict = {}  # draw spec -> RealRound
        self.by_index: dict[int, RealRound] = {}

    @torch.no_grad()
    def round(self, r: int, satellites: int | None = None, o_exp: float | None = None) -> RealRound:
        """The real round replayed at capture step ``r``: draw ``r mod mission.rounds`` of the scenario's
        overlap, or (geometric participants) of ``satellites`` patches at overlap ``o_exp``, rounded to
        the nearest 1/``O_EXP_STEPS`` so that captures of like geometry share their real work."""
        replay = r % self.sc.mission.rounds
        ov = self.sc.overlap
        if satellites is None:
            spec, n, window = replay, ov.satellites, self.window
        else:
            o = min(float(satellites), max(1.0, round(o_exp * O_EXP_STEPS) / O_EXP_STEPS))
            spec, n = (replay, satellites, o), satellites
            window = window_for_overlap(satellites, ov.patch, o, ov.grid)
        if spec in self.rounds:
            return self.rounds[spec]
        index = replay if satellites is None else len(self.rounds)  # the capture id its streams carry
        names = sorted(self.scenes)
        scene = self.scenes[names[replay % len(names)]]
        seed = [self.sc.seed, replay] if satellites is None else [self.sc.seed, replay, n, int(spec[2] * O_EXP_STEPS)]
        rng = np.random.default_rng(seed)
        obs = draw_observation(scene, n, ov.patch, window, rng, ov.grid)
        cap = self.sc.captures
        group = capture_group({s: (scene, (0.0, 0.0)) for s in range(n)}, obs, cap.perturbation, cap.geo_grid,
                              ov.grid, np.random.default_rng(seed + [0xCA97]))
        images = group.images
        states, front, modelling, baseline, sigs = {}, {}, {}, {}, {}
        predict = self.cfg.mode == "predict"
        grid_predict = predict and cap.geo_grid
        for s, x in images.items():
            # the shared grid's resampling runs on board in both worlds, before the encoder
            grid_time = {"geo_grid": group.grid_time_s[s]} if cap.geo_grid else {}
            t: dict = dict(grid_time)
            if grid_predict:  # predict mode on the grid: references from the tiles' origins, no signatures
                with timed(t, "analysis_transform"):
                    y = self.codec.model.g_a(x)
                states[s] = OnboardState(s, tuple(x.shape[-2:]), y, None)
                sigs[s] = origin_header(group.origins[s])
            else:
                states[s] = analyse(self.codec, self.recognizer, s, x, t)
                sigs[s] = signature_payload(states[s].selection.signatures)
            # predict mode codes each satellite's own ŷ: the representative strategy does not apply
            model_entropy(self.codec, states[s], "original" if predict else self.cfg.representative, t)
            modelling[s] = t.pop("entropy_modelling")
            front[s] = t  # analysis_transform, recognizer, selector
            tb: dict = dict(grid_time)
            if self.sc.mission.baseline.codec == "jpeg2000":
                data, tb["baseline"], rate = jpeg2000_baseline(self.codec, x, self.sc.mission.baseline, s, index,
                                                              tuple(images), self.key)
                baseline[s] = {"bytes": len(data), "time": tb, "data": data, "jpeg2000_bpp": rate}
                continue
            with timed(tb, "baseline"):  # the codec alone, in the same container as DLRC's streams
                data = encode_alone(self.codec, x, s, index, tuple(images)).to_bytes(self.key)
            baseline[s] = {"bytes": len(data), "time": tb, "data": data}
        rr = RealRound(index, images, states, front, modelling, baseline, sigs, obs.geometric_bound())
        if grid_predict:
            rr.origins = dict(group.origins)
        self.rounds[spec] = rr
        self.by_index[index] = rr
        return rr

    @torch.no_grad()
    def stream(self, rr: RealRound, slot: int, view: frozenset, order: tuple | None = None
               ) -> tuple[bytes, dict, float, frozenset]:
        """(container bytes, {stage: s}, fraction of positions coded, the slots it copies from) of ``slot``
        arbitrating on ``view`` with the satellites ranked by ``order`` (highest first; None: by id); cached."""
        order = tuple(sorted(view)) if order is None else tuple(order)
        key = (slot, view, order)
        if key not in rr.streams:
            received = {u: parse_signature_payload(rr.signatures[u]) for u in sorted(view)}
            rank = {u: i for i, u in enumerate(order)}
            t: dict = {}
            with timed(t, "arbiter"):
                arb = arbitrate(received, rank, decode_order(self.codec.family, *rr.states[slot].y.shape[2:]))
            y_string = None
            if self.codec.family != "hyperprior":
                # context codecs fly with context_fill 'prediction' (validated): no peer's ŷ is needed
                # on board; the walk's parameters come after the arbitration, so they count here
                y_string, y_own, _ = code_context(self.codec, rr.states[slot], arb, {}, t, self.cfg.context_fill)
                rr.own_hat[key] = y_own[None]
            with timed(t, "entropy_coding"):
                st = finish(self.codec, rr.states[slot], arb, "references", self.cfg.map_coding, y_string,
                            self.cfg.context_fill, rr.index, tuple(rr.images))
                data = st.to_bytes(self.key)
            positions = st.y_shape[1] * st.y_shape[2]
            owners = {int(o) for refs in st.maps.values() for o in np.unique(np.asarray(refs) // positions)}
            rr.streams[key] = (data, t, st.retained / positions, frozenset(owners - {slot}))
        return rr.streams[key]

    # ------------------------------------------------------------ predict mode

    def references(self, rr: RealRound, view: frozenset, order: tuple) -> dict:
        """{slot: (H·W,) reference map} of every satellite of ``view`` ranked by ``order`` (highest first):
        on the shared grid, the same ground cell in the highest-priority tile that holds it (from the
        origins every header carries); otherwise the Arbiter's cross-satellite matches on the
        signatures exchanged. Each satellite of the view computes the same maps."""
        from ..dlrc import predict
        from ..dlrc.arbiter import reference_map
        from ..dlrc.bitstream import LATENT_STRIDE

        order = tuple(u for u in order if u in view)
        key = (view, order)
        if key not in rr.references:
            _, H, W = rr.states[order[0]].latent.y.shape[1:]
            n = H * W
            if rr.origins is not None:
                refs = predict.grid_references({u: rr.origins[u] for u in order}, list(order), H, W, LATENT_STRIDE)
            else:
                received = {u: parse_signature_payload(rr.signatures[u]) for u in order}
                arb = arbitrate(received, {u: i for i, u in enumerate(order)}, decode_order(self.codec.family, H, W))
                refs = predict.cross_references({u: reference_map(arb, u, n) for u in arb.order}, list(arb.order), n)
            rr.references[key] = refs
        return rr.references[key]

    @torch.no_grad()
    def predict_stream(self, rr: RealRound, slot: int, usable: frozenset, order: tuple) -> PredictStream:
        """``slot``'s predictive stream when it holds the streams of the satellites ``usable`` (higher in
        ``order``, decoded on board): its positions that one of them also holds are coded as a residual
        against that satellite's ŷ (exact whatever their own coding, so only the set matters); cached."""
        from ..dlrc.bitstream import SatelliteBitstream
        from ..dlrc.onboard import code_predictive, decode_predictive_stream, predictive_references

        order = tuple(order)
        key = (slot, usable, order)
        if key not in rr.predicted:
            view = frozenset(usable) | {slot}
            refs = self.references(rr, view, order)[slot]
            lat = rr.states[slot].latent
            C, H, W = lat.y.shape[1:]
            own = {u: rr.states[u].latent.y_hat[0].reshape(C, -1) for u in usable}
            t: dict = {}
            members = tuple(rr.images)
            data, coding, refs = code_predictive(self.codec, slot, lat, rr.states[slot].image_shape, refs, own,
                                                 order.index(slot), members, rr.index, self.key,
                                                 self.cfg.map_coding, t,
                                                 image=rr.images[slot] if self.cfg.calibration != "none" else None,
                                                 calibration=self.cfg.calibration)
            # what a peer or the ground does with it, measured once: parse, decode from the bytes
            t0 = time.perf_counter()
            parsed = SatelliteBitstream.from_bytes(data, expect_fingerprint=self.codec.fingerprint, key=self.key)
            y_hat = decode_predictive_stream(self.codec, parsed, predictive_references(parsed), own)
            decode_s = time.perf_counter() - t0
            if not torch.equal(y_hat, lat.y_hat[0].reshape(C, -1)):
                raise RuntimeError(f"predictive stream of slot {slot} does not decode to its own ŷ")
            n = H * W
            owners = frozenset(int(u) for u in np.unique(refs // n)) - {slot}
            rr.predicted[key] = PredictStream(data, t, float(coding.predicted.mean()), owners, decode_s)
        return rr.predicted[key]
