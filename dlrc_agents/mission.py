"""kind: mission — SimPy satellite agents run real DLRC over the simulated network and downlink to the ground.

Simulated time is orbit time: t = 0 at ``time.start``. Two worlds run side by side in
one SimPy environment on the same captures: the baseline (the codec alone) and DLRC.

Per participating satellite (a *slot*, one of the ``participants.count`` satellites
nearest the region at t = 0, kept for the whole mission), each observation round:

1. capture: the slot's patch of the round's overlapping draw (the overlap protocol of the
   ``rd`` kind over ``data.scenes``, seeded by the scenario seed and the round);
2. analysis transform + Recognizer + Selector — real, timed;
3. send the real signature bytes to every peer as flows whose delays come from
   EdgeSpaceCom's routing at that instant (:func:`edgespacecom.sync.compute_sync_rounds`
   on the payload's size); entropy modelling runs meanwhile (real, timed);
4. wait for every peer's signatures, at most ``mission.peer_timeout_s``; a peer that has
   not answered is left out of this satellite's view for the round;
5. Arbiter on the view, Filter + entropy coding — real, timed — and the real container
   (``references`` maps, so differing views still decode) goes into on-board storage.

The baseline agent captures the same patch, runs CompressAI's ``compress`` (real, timed)
and stores y and z. A downlink process per slot and world drains storage at x bit/s
during the slot's contact windows (real passes over ``ground.stations`` from Skyfield,
or the paper's abstract N_w windows of τ_w a day), as a fluid: an item may span windows.
The ground decodes each round from the delivered bytes alone, checks it against what the
satellites intended (bit for bit) and measures PSNR and MS-SSIM.

Compute time advances simulated time as ``mission.compute`` says: the measured wall time
of each real step times ``device_factor``, or the paper's TITAN V times of Table 2.

``mission.capture: continuous`` is the paper's production model: each slot captures the
next patch as soon as the previous one is stored, all day. Real work is done for the
first ``mission.rounds`` rounds; later rounds replay them in turn (same bytes, same
measured times; the sync delays are always those of the current instant, and a view
never seen before is arbitrated and coded for real). ``mission.batch`` rounds go in one
agent step to keep the event count small over days of simulated time: the first round of
a batch is simulated event by event (compute, signature flows, waiting for peers) and the
batch's other rounds take the lockstep period of the group at that instant
(:meth:`Mission.steady_round_s`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import simpy
import torch
from tqdm import tqdm

from edgespacecom.gdown import g_down_per_satellite, gain_terms
from edgespacecom.outputs import write_figure, write_json, write_table

from .codecs import load_codecs
from .data import expand_scenes, read_rgb
from .dlrc.arbiter import arbitrate
from .dlrc.context import decode_order
from .dlrc.onboard import (DLRCConfig, analyse, code_context, finish, intended_from_references, model_entropy,
                           parse_signature_payload, signature_payload, timed)
from .dlrc.recognizer import Recognizer
from .dlrc.reconstructor import reconstruct
from .overlap import draw_observation, window_for_overlap
from .rd import patch_tensor, quality

#: Paper Table 2 (NVIDIA TITAN V, BMSHJ, 256×256, λ = 0.0067) [s]: analysis transform,
#: entropy modelling, entropy coding, and DLRC's added time. Scaled by pixel count for
#: other patch sizes (an assumption: the paper gives the breakdown at 256² only).
TITAN_V_256 = {"analysis_transform": 2.31e-3, "entropy_modelling": 7.85e-3, "entropy_coding": 14.52e-3,
               "dlrc": 12.89e-3, "baseline": 24.68e-3}


# ---------------------------------------------------------------- compute time model


@dataclass(frozen=True)
class ComputeModel:
    """Simulated seconds of on-board work from the measured wall time of the real step."""

    profile: str
    device_factor: float
    pixels: int

    def seconds(self, measured: dict) -> float:
        """Simulated time of a group of stages {stage: measured wall seconds}.

        ``titan_v`` replaces each stage by the paper's figure (the paper gives DLRC's
        time as one number, so it is charged to the Recognizer; Selector and Arbiter
        then cost nothing extra), scaled by the pixel count.
        """
        if self.profile == "measured":
            return self.device_factor * sum(measured.values())
        scale = self.pixels / 65536.0 * self.device_factor
        charged = {"analysis_transform": TITAN_V_256["analysis_transform"],
                   "entropy_modelling": TITAN_V_256["entropy_modelling"],
                   "entropy_coding": TITAN_V_256["entropy_coding"], "recognizer": TITAN_V_256["dlrc"],
                   "selector": 0.0, "arbiter": 0.0, "baseline": TITAN_V_256["baseline"]}
        return scale * sum(charged[stage] for stage in measured)

    def describe(self) -> dict:
        return {"profile": self.profile, "device_factor": self.device_factor,
                "source": "wall time of each real step on this machine" if self.profile == "measured"
                else "paper Table 2 (TITAN V, BMSHJ, 256²), scaled by pixel count"}


# ---------------------------------------------------------------- real on-board work


@dataclass
class RealRound:
    """The real work of one observation round, done once and replayed as needed."""

    index: int
    images: dict  # slot -> (1, 3, P, P)
    states: dict  # slot -> OnboardState with latent
    front: dict  # slot -> {stage: s}: analysis transform, recognizer, selector
    modelling: dict  # slot -> s
    baseline: dict  # slot -> {"bytes", "time": {stage: s}, "strings", "shape"}
    signatures: dict  # slot -> bytes (the payload actually sent)
    geometric_bound: float
    streams: dict = field(default_factory=dict)  # (slot, view) -> (bytes, {stage: s}, retained fraction)
    # context codecs: (slot, view) -> that stream's own ŷ (1, C, H, W) (it depends on the view)
    own_hat: dict = field(default_factory=dict)


class OnboardWork:
    """Does (and caches) the real codec and DLRC work for the agents."""

    def __init__(self, codec, scenes: dict, scenario):
        self.codec, self.scenes, self.sc = codec, scenes, scenario
        ov = scenario.overlap
        self.window = window_for_overlap(ov.satellites, ov.patch, ov.o_exp[0], ov.grid)
        self.recognizer = Recognizer(codec.M, scenario.dlrc.rounds, scenario.dlrc.seed)
        self.cfg = DLRCConfig(**scenario.dlrc.model_dump())
        self.rounds: dict[int, RealRound] = {}

    @torch.no_grad()
    def round(self, r: int) -> RealRound:
        key = r % self.sc.mission.rounds
        if key in self.rounds:
            return self.rounds[key]
        ov = self.sc.overlap
        names = sorted(self.scenes)
        scene = self.scenes[names[key % len(names)]]
        rng = np.random.default_rng([self.sc.seed, key])
        obs = draw_observation(scene, ov.satellites, ov.patch, self.window, rng, ov.grid)
        images = {s: patch_tensor(scene, y, x, ov.patch) for s, (y, x) in enumerate(obs.offsets)}
        states, front, modelling, baseline, sigs = {}, {}, {}, {}, {}
        for s, x in images.items():
            t: dict = {}
            states[s] = analyse(self.codec, self.recognizer, s, x, t)
            model_entropy(self.codec, states[s], self.cfg.representative, t)
            modelling[s] = t.pop("entropy_modelling")
            front[s] = t  # analysis_transform, recognizer, selector
            sigs[s] = signature_payload(states[s].selection.signatures)
            tb: dict = {}
            with timed(tb, "baseline"):
                out = self.codec.model.compress(x)
            baseline[s] = {"bytes": sum(len(v[0]) for v in out["strings"]), "time": tb,
                           "strings": out["strings"], "shape": out["shape"]}
        rr = RealRound(key, images, states, front, modelling, baseline, sigs, obs.geometric_bound())
        self.rounds[key] = rr
        return rr

    @torch.no_grad()
    def stream(self, rr: RealRound, slot: int, view: frozenset) -> tuple[bytes, dict, float]:
        """(container bytes, {stage: s}, fraction of positions coded) of ``slot`` arbitrating on ``view`` (cached)."""
        key = (slot, view)
        if key not in rr.streams:
            received = {u: parse_signature_payload(rr.signatures[u]) for u in sorted(view)}
            t: dict = {}
            with timed(t, "arbiter"):
                arb = arbitrate(received, self.cfg.priority, decode_order(self.codec.family, *rr.states[slot].y.shape[2:]))
            y_string = None
            if self.codec.family != "hyperprior":
                # context codecs fly with context_fill 'prediction' (validated): no peer's ŷ is needed
                # on board; the walk's parameters come after the arbitration, so they count here
                y_string, y_own, _ = code_context(self.codec, rr.states[slot], arb, {}, t, self.cfg.context_fill)
                rr.own_hat[key] = y_own[None]
            with timed(t, "entropy_coding"):
                st = finish(self.codec, rr.states[slot], arb, "references", self.cfg.map_coding, y_string,
                            self.cfg.context_fill)
                data = st.to_bytes()
            rr.streams[key] = (data, t, st.retained / (st.y_shape[1] * st.y_shape[2]))
        return rr.streams[key]


# ---------------------------------------------------------------- storage and downlink


@dataclass
class Item:
    """One stored payload: a batch of rounds of one slot in one world."""

    world: str
    slot: int
    first_round: int
    rounds: int
    bits: float
    raw_bits: float  # raw-equivalent size of the captures it carries
    captured_s: float
    stored_s: float
    remaining: float = -1.0
    payload: object = None  # DLRC: list of (round index, stream bytes); baseline: list of (round, strings, shape)

    def __post_init__(self):
        if self.remaining < 0:
            self.remaining = self.bits


class Storage:
    """On-board storage of one slot in one world: a FIFO of items, and its backlog over time."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.items: deque[Item] = deque()
        self.bits = 0.0
        self.history: list[tuple[float, float]] = [(0.0, 0.0)]
        self._arrival = env.event()

    def put(self, item: Item) -> None:
        self.items.append(item)
        self.bits += item.bits
        self.history.append((self.env.now, self.bits))
        self._arrival.succeed()
        self._arrival = self.env.event()

    def arrival(self):
        return self._arrival

    def sent(self, bits: float) -> None:
        self.bits = max(0.0, self.bits - bits)
        self.history.append((self.env.now, self.bits))


# ---------------------------------------------------------------- the simulation


class FlowOracle:
    """Signature flow delays among the slots at any instant: EdgeSpaceCom's ISL graph and exact
    minimum-delay routing at the nearest ephemeris sample, computed when first needed."""

    def __init__(self, positions_km: np.ndarray, participants: np.ndarray, payload_kib: float, scenario, step_s: float):
        self.positions, self.participants, self.payload = positions_km, participants, payload_kib
        self.sc, self.step_s = scenario, step_s
        self.cache: dict[int, np.ndarray] = {}

    def at(self, t_s: float) -> np.ndarray:
        """(n, n) delays [s]: T_flow of src→dst plus the control overhead; inf if unreachable."""
        from edgespacecom.routing import route_participants
        from edgespacecom.topology import isl_links

        k = min(int(round(t_s / self.step_s)), len(self.positions) - 1)
        if k not in self.cache:
            sc = self.sc
            links = isl_links(self.positions[k], sc.isl.d_max_km, sc.isl.earth_margin_km)
            flows = route_participants(self.positions[k], links, self.participants, [self.payload], sc.link, sc.network)
            self.cache[k] = flows.t_flow_s[0] + sc.network.control_s * (flows.hops[0] > 0)
        return self.cache[k]


class Mission:
    def __init__(self, scenario, codec, work: OnboardWork, flows: FlowOracle, plan: dict, duration_s: float):
        self.sc, self.codec, self.work = scenario, codec, work
        self.flows, self.plan, self.duration_s = flows, plan, duration_s
        self.n = scenario.participants.count
        self.env = simpy.Environment()
        ov = scenario.overlap
        self.pixels = ov.patch**2
        self.raw_bits = self.pixels * scenario.ground.raw_bits_per_pixel
        mc = scenario.mission
        self.cm = ComputeModel(mc.compute.profile, mc.compute.device_factor, self.pixels)
        self.rate = scenario.ground.rate_bps
        self.storage = {(w, s): Storage(self.env) for w in ("baseline", "dlrc") for s in range(self.n)}
        self.inbox: dict = {}  # (slot, round) -> set of peers heard
        self.sent_at: dict = {}  # (slot, round) -> when its signatures left
        self.arrivals: dict = {}  # (slot, round) -> arrival times of peers' signatures
        self.flow_done: dict = {}  # (slot, round) -> when its last signature flow arrived
        self.all_heard: dict = {}  # (slot, round) -> event
        self.rows: list[dict] = []
        self.deliveries: list[dict] = []
        self.delivered_round_parts: dict = {}  # (world, round) -> set of slots delivered
        self.ground_rounds: list[dict] = []
        self.decoded_cache: dict = {}
        self.bar = None

    # --------------------------------------------------------------- helpers
    def _flows_at(self, t: float) -> np.ndarray:
        return self.flows.at(t)

    def _event(self, slot: int, r: int):
        key = (slot, r)
        if key not in self.all_heard:
            self.all_heard[key] = self.env.event()
            self.inbox.setdefault(key, set())
            if len(self.inbox[key]) == self.n - 1:
                self.all_heard[key].succeed()
        return self.all_heard[key]

    def _deliver_signatures(self, src: int, dst: int, r: int, delay: float):
        yield self.env.timeout(delay)
        key = (dst, r)
        heard = self.inbox.setdefault(key, set())
        heard.add(src)
        self.arrivals.setdefault((dst, r), []).append(self.env.now)  # dst received
        self.flow_done[(src, r)] = max(self.flow_done.get((src, r), 0.0), self.env.now)  # src's flows landed
        if len(heard) == self.n - 1 and key in self.all_heard and not self.all_heard[key].triggered:
            self.all_heard[key].succeed()

    def steady_round_s(self, rr: RealRound, t: float) -> float:
        """Period of back-to-back rounds in lockstep at instant ``t`` [s].

        Satellite s is ready to arbitrate when its own entropy modelling is done and every
        peer's signatures have arrived (peer p sends after its own front stages; flows take
        the routed delay; an unreachable peer costs the timeout). The group runs at the pace
        of its slowest member: the period is the largest of the per-satellite round times.
        """
        flows = self._flows_at(t)
        everyone = frozenset(range(self.n))
        front = {s: self.cm.seconds(rr.front[s]) for s in range(self.n)}
        period = 0.0
        for s in range(self.n):
            arrivals = [front[p] + flows[p, s] for p in range(self.n) if p != s]
            wait = max([a - front[s] for a in arrivals], default=0.0)
            wait = min(wait, self.sc.mission.peer_timeout_s)
            modelling = self.cm.seconds({"entropy_modelling": rr.modelling[s]})
            back = self.cm.seconds(self.work.stream(rr, s, everyone)[1])
            period = max(period, front[s] + max(modelling, wait) + back)
        return period

    def _next_capture(self, r: int) -> float | None:
        mc = self.sc.mission
        if mc.capture == "rounds":
            if r >= mc.rounds:
                return None
            return max(r * mc.interval_s, self.env.now)
        return self.env.now if self.env.now < self.duration_s else None

    # --------------------------------------------------------------- agents
    def agent(self, world: str, slot: int):
        """One satellite in one world: capture, on-board work (:meth:`_dlrc_round` or
        :meth:`_baseline_round`), then the payload into storage; ``batch`` rounds a step."""
        env, r, step = self.env, 0, 0
        batch = self.sc.mission.batch if self.sc.mission.capture == "continuous" else 1
        work = self._dlrc_round if world == "dlrc" else self._baseline_round
        while True:
            start = self._next_capture(r)
            if start is None:
                return
            yield env.timeout(start - env.now)
            rr = self.work.round(step)
            nbytes, view, data, extra = yield from work(slot, r, batch, rr)
            bits = 8.0 * nbytes * batch
            self.storage[(world, slot)].put(Item(world, slot, r, batch, bits, batch * self.raw_bits, start, env.now,
                                                 payload=(rr.index, view, data)))
            self.rows.append({"world": world, "slot": slot, "round": r, "rounds": batch, "trace_round": rr.index,
                              "captured_s": start, "stored_s": env.now, "time_per_patch_s": (env.now - start) / batch,
                              "bits_per_patch": 8.0 * nbytes, **extra})
            if world == "dlrc" and slot == 0 and self.bar is not None:
                self.bar.update(min(env.now, self.duration_s) - self.bar.n)
            r += batch
            step += 1

    def _dlrc_round(self, slot: int, r: int, batch: int, rr: RealRound):
        env = self.env
        yield env.timeout(self.cm.seconds(rr.front[slot]))
        t_sent = env.now
        self.sent_at[(slot, r)] = t_sent
        flows = self._flows_at(env.now)
        for peer in range(self.n):
            if peer != slot and np.isfinite(flows[slot, peer]):
                env.process(self._deliver_signatures(slot, peer, r, flows[slot, peer]))
        yield env.timeout(self.cm.seconds({"entropy_modelling": rr.modelling[slot]}))
        everyone = self._event(slot, r)
        deadline = t_sent + self.sc.mission.peer_timeout_s
        if not everyone.triggered and env.now < deadline:
            yield everyone | env.timeout(deadline - env.now)
        heard = frozenset(self.inbox.get((slot, r), set()) | {slot})
        wait = env.now - t_sent
        data, t_back, retained = self.work.stream(rr, slot, heard)
        yield env.timeout(self.cm.seconds(t_back))
        if batch > 1:  # the batch's other rounds, in lockstep at this network instant
            yield env.timeout((batch - 1) * self.steady_round_s(rr, t_sent))
        return len(data), heard, data, {"peers_heard": len(heard) - 1, "sync_wait_s": wait,
                                        "timed_out": len(heard) < self.n, "t_sent_s": t_sent,
                                        "retained_fraction": retained}

    def _baseline_round(self, slot: int, r: int, batch: int, rr: RealRound):
        b = rr.baseline[slot]
        yield self.env.timeout(batch * self.cm.seconds(b["time"]))
        return b["bytes"], None, None, {"peers_heard": np.nan, "sync_wait_s": np.nan, "timed_out": False,
                                        "t_sent_s": np.nan, "retained_fraction": 1.0}

    def downlink(self, world: str, slot: int):
        env = self.env
        store = self.storage[(world, slot)]
        for a, b in self.plan[slot]:
            if a >= self.duration_s:
                return
            if env.now < a:
                yield env.timeout(a - env.now)
            end = min(b, self.duration_s)
            while env.now < end:
                if not store.items:
                    yield store.arrival() | env.timeout(end - env.now)
                    continue
                item = store.items[0]
                need, avail = item.remaining / self.rate, end - env.now
                step = min(need, avail)
                yield env.timeout(step)
                sent = min(item.remaining, step * self.rate)
                item.remaining -= sent
                store.sent(sent)
                self.deliveries.append({"world": world, "slot": slot, "t_s": env.now, "bits": sent,
                                        "raw_equivalent_bits": sent / item.bits * item.raw_bits})
                if item.remaining <= 1e-6:
                    store.items.popleft()
                    self._ground_receives(item)

    # --------------------------------------------------------------- ground
    def _ground_receives(self, item: Item):
        key = (item.world, item.first_round)
        parts = self.delivered_round_parts.setdefault(key, {})
        parts[item.slot] = item
        if len(parts) == self.n:
            items = [parts[s] for s in range(self.n)]
            self.ground_rounds.append({
                "world": item.world, "round": item.first_round, "rounds": item.rounds,
                "trace_round": item.payload[0], "captured_s": min(i.captured_s for i in items),
                "delivered_s": self.env.now, "latency_s": self.env.now - min(i.captured_s for i in items),
                **self._decode(item.world, items),
            })

    @torch.no_grad()
    def _decode(self, world: str, items: list[Item]) -> dict:
        trace = items[0].payload[0]
        views = tuple(i.payload[1] for i in items)
        key = (world, trace, views)
        if key in self.decoded_cache:
            return self.decoded_cache[key]
        rr = self.work.round(trace)
        psnr, msssim, exact = [], [], True
        if world == "dlrc":
            streams = [i.payload[2] for i in items]
            decoded = reconstruct(self.codec, streams)
            from .dlrc.bitstream import SatelliteBitstream

            maps = {}
            for data in streams:
                maps.update(SatelliteBitstream.from_bytes(data).maps)
            if self.codec.family == "hyperprior":
                own = {s: rr.states[s].latent.y_hat for s in rr.states}
            else:  # each stream's own ŷ, as coded for the view it arbitrated on
                own = {i.slot: rr.own_hat[(i.slot, i.payload[1])] for i in items}
            intended = intended_from_references(maps, own)
            for s, x in rr.images.items():
                exact &= bool(torch.equal(decoded[s]["y_tilde"], intended[s]))
                p, m = quality(x, decoded[s]["x_hat"])
                psnr.append(p)
                msssim.append(m)
        else:
            for s, x in rr.images.items():
                b = rr.baseline[s]
                x_hat = self.codec.model.decompress(b["strings"], b["shape"])["x_hat"]
                p, m = quality(x, x_hat)
                psnr.append(p)
                msssim.append(m)
        out = {"psnr": float(np.mean(psnr)), "ms_ssim": float(np.mean(msssim)), "decode_exact": exact}
        self.decoded_cache[key] = out
        return out

    def sync_rounds(self) -> pd.DataFrame:
        """Per round: the agents' sync round, max over satellites of max(all peers' signatures
        received, own signatures delivered) − own send time (the paper's T_round), and how many
        satellites missed a peer."""
        rows = []
        rounds = sorted({r for (_, r) in self.sent_at})
        for r in rounds:
            per_slot = []
            for s in range(self.n):
                if (s, r) not in self.sent_at:
                    continue
                arr = self.arrivals.get((s, r), [])
                recv = max(arr) if len(arr) == self.n - 1 else np.inf
                send = self.flow_done.get((s, r), np.inf) if self.n > 1 else self.sent_at[(s, r)]
                per_slot.append(max(recv, send, self.sent_at[(s, r)]) - self.sent_at[(s, r)])
            rows.append({"round": r, "t_s": min(self.sent_at[(s, r)] for s in range(self.n) if (s, r) in self.sent_at),
                         "sync_round_s": max(per_slot) if per_slot else np.nan})
        return pd.DataFrame(rows, columns=["round", "t_s", "sync_round_s"])

    def run(self, progress: bool = True) -> None:
        for s in range(self.n):
            self.env.process(self.agent("dlrc", s))
            self.env.process(self.agent("baseline", s))
            for w in ("baseline", "dlrc"):
                self.env.process(self.downlink(w, s))
        with tqdm(total=self.duration_s, desc="mission", unit="sim s", disable=not progress,
                  bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} sim s [{elapsed}]") as bar:
            self.bar = bar
            self.env.run(until=self.duration_s)
            bar.update(self.duration_s - bar.n)
        self.bar = None


# ---------------------------------------------------------------- runner


def _participants_at_start(eph, scenario) -> np.ndarray:
    from edgespacecom.participants import select_participants

    reg, part = scenario.region, scenario.participants
    return select_participants(eph.positions_km[:1], reg.lat_deg, reg.lon_deg, part.count, part.selection)[0]


def _contact_plan(scenario, eph, participants, duration_s: float) -> tuple[dict, dict]:
    from edgespacecom.ground import Station, abstract_plan, contact_plan, contact_statistics
    from edgespacecom.orbits import constellation_satellites

    g = scenario.ground
    if g.downlink is not None:
        plan = {s: abstract_plan(g.downlink.windows_per_day, g.downlink.window_s, duration_s, g.downlink.phase_s)
                for s in range(len(participants))}
    else:
        sats = constellation_satellites(scenario.constellation, scenario.time.start)
        stations = [Station(st.name, st.lat_deg, st.lon_deg, st.min_elevation_deg, st.altitude_m) for st in g.stations]
        by_name = contact_plan([sats[i] for i in participants], stations, scenario.time.start, duration_s)
        plan = {s: by_name[sats[i].name] for s, i in enumerate(participants)}
    return plan, contact_statistics(plan, duration_s)


def _delivered_per_day(deliveries: pd.DataFrame, world: str, duration_s: float) -> tuple[float, str]:
    """Raw-equivalent bits a day delivered by one world, all slots: over the last simulated day
    when the run covers at least two (steady state), else over the whole run, per day."""
    d = deliveries[deliveries["world"] == world] if len(deliveries) else deliveries
    if duration_s >= 2 * 86400.0:
        last = d[d["t_s"] > duration_s - 86400.0] if len(d) else d
        return (float(last["raw_equivalent_bits"].sum()) if len(last) else 0.0), "last simulated day"
    total = float(d["raw_equivalent_bits"].sum()) if len(d) else 0.0
    return total * 86400.0 / duration_s, "whole run, scaled to a day"


def run_mission(scenario, out_dir: Path) -> dict:
    from edgespacecom.orbits import load_ephemeris
    from edgespacecom.runner import begin_run, stage

    c = scenario.codec
    (codec,) = load_codecs(c)  # before any output is written
    started = begin_run(scenario, out_dir)
    torch.set_num_threads(scenario.mission.threads)
    scenes = {str(p): read_rgb(p) for p in expand_scenes(scenario.data.scenes)}
    eph = load_ephemeris(scenario.constellation, scenario.time, scenario.compute.cache_dir)
    tc = scenario.time
    duration_s = (tc.end - tc.start).total_seconds() if tc.end is not None else tc.duration_h * 3600.0
    participants = _participants_at_start(eph, scenario)
    stage(f"mission: {eph.satellites} satellites, slots {participants.tolist()} over "
          f"({scenario.region.lat_deg}, {scenario.region.lon_deg}), {duration_s / 3600:.1f} h, "
          f"{c.architecture}, {scenario.mission.capture} capture")
    payload_kib = 8 * (scenario.overlap.patch // 16) ** 2 / 1024.0  # 64-bit signature per latent position
    flows = FlowOracle(eph.positions_km, participants, payload_kib, scenario, scenario.time.step_s)
    plan, contact_stats = _contact_plan(scenario, eph, participants, duration_s)
    stage(f"ground: {'abstract downlink' if scenario.ground.downlink else 'stations'}, "
          f"{contact_stats['windows_per_day']:.1f} windows a day of {contact_stats['window_s_mean']:.0f} s mean")
    work = OnboardWork(codec, scenes, scenario)
    mission = Mission(scenario, codec, work, flows, plan, duration_s)
    mission.run()
    stage(f"routing: signature flows ({payload_kib:g} KiB) routed at {len(flows.cache)} instants")
    table = pd.DataFrame(mission.rows)
    deliveries = pd.DataFrame(mission.deliveries, columns=["world", "slot", "t_s", "bits", "raw_equivalent_bits"])
    ground = pd.DataFrame(mission.ground_rounds)
    backlog = pd.DataFrame([{"world": w, "slot": s, "t_s": t, "bits": b}
                            for (w, s), st in mission.storage.items() for t, b in st.history])
    sync = mission.sync_rounds()
    summary = summarise_mission(scenario, table, deliveries, ground, sync, contact_stats, mission, work, duration_s)
    summary["slots"] = [int(p) for p in participants]
    summary["weights"] = codec.source
    summary["wall_s"] = time.perf_counter() - started
    write_table(out_dir / "mission_rounds.csv", table)
    write_table(out_dir / "ground_rounds.csv", ground if len(ground) else pd.DataFrame(columns=["world", "round"]))
    write_table(out_dir / "backlog.csv", backlog)
    write_figure(out_dir / "backlog.png", backlog_figure(backlog))
    write_table(out_dir / "sync_rounds.csv", sync)
    write_figure(out_dir / "sync_rounds.png", sync_figure(sync))
    write_figure(out_dir / "gdown.png", gdown_figure(summary))
    write_json(out_dir / "summary.json", summary)
    return summary


def summarise_mission(scenario, table, deliveries, ground, sync_table, contact_stats, mission, work,
                      duration_s) -> dict:
    g = scenario.ground
    dl_all = table[table["world"] == "dlrc"]
    bl_all = table[table["world"] == "baseline"]
    # t and bpp for the formula come from the same span as the simulated volume (the last
    # simulated day when there are two or more: the sync delays change as the slots drift)
    if duration_s >= 2 * 86400.0:
        span = table["captured_s"] >= duration_s - 86400.0
        dl, bl = dl_all[span[dl_all.index]], bl_all[span[bl_all.index]]
    else:
        dl, bl = dl_all, bl_all
    w = lambda d, col: float(np.average(d[col], weights=d["rounds"]))  # noqa: E731  (per-patch means)
    pixels = scenario.overlap.patch**2
    t_b, t_d = w(bl, "time_per_patch_s"), w(dl, "time_per_patch_s")
    bpp_b, bpp_d = w(bl, "bits_per_patch") / pixels, w(dl, "bits_per_patch") / pixels
    windows = g.downlink.windows_per_day if g.downlink else contact_stats["windows_per_day"]
    window_s = g.downlink.window_s if g.downlink else contact_stats["window_s_mean"]
    terms = gain_terms(patch_px=scenario.overlap.patch, raw_bits_per_pixel=g.raw_bits_per_pixel, t_baseline_s=t_b,
                       t_dlrc_s=t_d, bpp_baseline=bpp_b, bpp_dlrc=bpp_d, windows_per_day=windows,
                       window_s=window_s, rate_bps=g.rate_bps)
    slots = sorted(table["slot"].unique())
    per_sat = {
        "t_baseline_s": [w(bl[bl["slot"] == s], "time_per_patch_s") for s in slots],
        "t_dlrc_s": [w(dl[dl["slot"] == s], "time_per_patch_s") for s in slots],
        "bpp_baseline": [w(bl[bl["slot"] == s], "bits_per_patch") / pixels for s in slots],
        "bpp_dlrc": [w(dl[dl["slot"] == s], "bits_per_patch") / pixels for s in slots],
    }
    g_sat = g_down_per_satellite(patch_px=scenario.overlap.patch, raw_bits_per_pixel=g.raw_bits_per_pixel,
                                 windows_per_day=windows, window_s=window_s, rate_bps=g.rate_bps, **per_sat)
    per_day_b, basis = _delivered_per_day(deliveries, "baseline", duration_s)
    per_day_d, _ = _delivered_per_day(deliveries, "dlrc", duration_s)
    n = scenario.participants.count
    sync = sync_table["sync_round_s"][np.isfinite(sync_table["sync_round_s"])]
    incomplete = int((~np.isfinite(sync_table["sync_round_s"])).sum())
    gr = {wd: ground[ground["world"] == wd] if len(ground) else ground for wd in ("baseline", "dlrc")}
    return {
        "kind": "mission", "name": scenario.name, "model": scenario.codec.architecture,
        "lambda": work.codec.lmbda, "capture": scenario.mission.capture, "patch": scenario.overlap.patch,
        "satellites": n, "rounds_simulated": int(dl_all["rounds"].sum() // n) if len(dl_all) else 0,
        "real_rounds": len(work.rounds),
        "bpp_baseline": bpp_b, "bpp_dlrc": bpp_d, "bpp_reduction": 1 - bpp_d / bpp_b,
        "retained_fraction": w(dl, "retained_fraction"),
        "psnr_baseline": float(gr["baseline"]["psnr"].mean()) if len(gr["baseline"]) else None,
        "psnr_dlrc": float(gr["dlrc"]["psnr"].mean()) if len(gr["dlrc"]) else None,
        "ms_ssim_baseline": float(gr["baseline"]["ms_ssim"].mean()) if len(gr["baseline"]) else None,
        "ms_ssim_dlrc": float(gr["dlrc"]["ms_ssim"].mean()) if len(gr["dlrc"]) else None,
        "decode_exact": bool(gr["dlrc"]["decode_exact"].all()) if len(gr["dlrc"]) else None,
        "sync_round_s": {"mean": float(sync.mean()), "max": float(sync.max())} if len(sync) else None,
        "sync_rounds_incomplete": incomplete,  # a signature flow never arrived (unreachable peer)
        "peer_timeouts": int(dl_all["timed_out"].sum()) if len(dl_all) else 0,
        "time_per_patch_s": {"baseline": t_b, "dlrc": t_d},
        "compute_model": mission.cm.describe(),
        "downlink": {"rate_bps": g.rate_bps, "windows_per_day": windows, "window_s": window_s,
                     "source": "abstract (N_w, τ_w)" if g.downlink else "contact windows over ground stations",
                     "stations": [s.name for s in g.stations] if g.stations else None},
        "produced_patches": {"baseline": int(bl_all["rounds"].sum()), "dlrc": int(dl_all["rounds"].sum())},
        "measurement_span": basis,
        "delivered_bits": {"baseline": float(deliveries.loc[deliveries["world"] == "baseline", "bits"].sum()),
                           "dlrc": float(deliveries.loc[deliveries["world"] == "dlrc", "bits"].sum())},
        "delivered_raw_equivalent_bits_per_day": {"baseline": per_day_b, "dlrc": per_day_d, "basis": basis},
        "rounds_decoded_on_ground": {"baseline": int(len(gr["baseline"])), "dlrc": int(len(gr["dlrc"]))},
        "image_latency_s": {wd: (float(gr[wd]["latency_s"].mean()) if len(gr[wd]) else None) for wd in gr},
        # the formula summed over the satellites, each with its own t and bpp (see g_down_per_satellite)
        "g_down_analytic": g_sat,
        # the paper's formula on the group's mean t and bpp (biased when bpp differs between satellites)
        "g_down_analytic_paper": terms.g_down,
        "g_down_regime": terms.regime,
        "per_satellite": per_sat,
        "gain_terms_bits_per_day": {"P_B": terms.P_B, "P_D": terms.P_D, "L_B": terms.L_B, "L_D": terms.L_D},
        "g_down_simulated": (per_day_d / per_day_b - 1.0) if per_day_b > 0 else None,
        "duration_s": duration_s,
    }


# ---------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def backlog_figure(backlog: pd.DataFrame):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, world in zip(axes, ("baseline", "dlrc")):
        for slot, g in backlog[backlog["world"] == world].groupby("slot"):
            ax.step(g["t_s"] / 3600, g["bits"] / 8e6, where="post", lw=1, label=f"slot {slot}")
        ax.set_title("baseline" if world == "baseline" else "DLRC", fontsize=10)
        ax.set_xlabel("simulated time [h]")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("on-board storage backlog [MB]")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def sync_figure(sync: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ok = sync[np.isfinite(sync["sync_round_s"])]
    ax.plot(ok["t_s"] / 3600, ok["sync_round_s"] * 1e3, ".", ms=3)
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("sync round T_round [ms]")
    ax.set_title("Signature exchange as measured by the agents", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def gdown_figure(summary: dict):
    """G_down over the downlink rate (analytic, this run's t and bpp) with the simulated point (Figure A2)."""
    from edgespacecom.gdown import g_down_curve, g_down_per_satellite

    plt = _plt()
    d = summary["downlink"]
    t = summary["time_per_patch_s"]
    x0 = d["rate_bps"]
    rates = np.logspace(np.log10(x0) - 3, np.log10(x0) + 3, 200)
    common = dict(patch_px=summary["patch"], raw_bits_per_pixel=24, windows_per_day=d["windows_per_day"],
                  window_s=d["window_s"])
    curve = g_down_curve(rates, t_baseline_s=t["baseline"], t_dlrc_s=t["dlrc"], bpp_baseline=summary["bpp_baseline"],
                         bpp_dlrc=summary["bpp_dlrc"], **common)
    per_sat = [g_down_per_satellite(rate_bps=float(x), **common, **summary["per_satellite"]) for x in rates]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(rates / 1e6, 100 * np.array(per_sat), label="formula, per satellite")
    ax.plot(rates / 1e6, 100 * curve, ":", label="paper's formula on mean t, bpp")
    if summary["g_down_simulated"] is not None:
        ax.plot([x0 / 1e6], [100 * summary["g_down_simulated"]], "o", label="simulated")
    ax.set_xscale("log")
    ax.set_xlabel("downlink rate x [Mbit/s]")
    ax.set_ylabel("G_down [%]")
    ax.set_title(f"N_w = {d['windows_per_day']:.1f}/day, τ_w = {d['window_s']:.0f} s", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def format_mission_summary(s: dict) -> str:
    f = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
    rows = [
        {"": "bpp", "baseline": f(s["bpp_baseline"], ".4f"), "DLRC": f(s["bpp_dlrc"], ".4f")},
        {"": "PSNR [dB] (ground)", "baseline": f(s["psnr_baseline"], ".2f"), "DLRC": f(s["psnr_dlrc"], ".2f")},
        {"": "time per patch [ms]", "baseline": f(1e3 * s["time_per_patch_s"]["baseline"], ".1f"),
         "DLRC": f(1e3 * s["time_per_patch_s"]["dlrc"], ".1f")},
        {"": "delivered [MB]", "baseline": f(s["delivered_bits"]["baseline"] / 8e6, ".2f"),
         "DLRC": f(s["delivered_bits"]["dlrc"] / 8e6, ".2f")},
        {"": "rounds decoded on ground", "baseline": str(s["rounds_decoded_on_ground"]["baseline"]),
         "DLRC": str(s["rounds_decoded_on_ground"]["dlrc"])},
    ]
    sync = s["sync_round_s"]
    tail = (f"sync round (agents): mean {f(sync and sync['mean'] * 1e3, '.2f')} ms, max "
            f"{f(sync and sync['max'] * 1e3, '.2f')} ms; peer timeouts {s['peer_timeouts']}; "
            f"ground decode exact: {s['decode_exact']}\n"
            f"G_down analytic {100 * s['g_down_analytic']:+.1f} % (paper's formula on means "
            f"{100 * s['g_down_analytic_paper']:+.1f} %, {s['g_down_regime']}), simulated "
            f"{'n/a' if s['g_down_simulated'] is None else format(100 * s['g_down_simulated'], '+.1f') + ' %'}; "
            f"compute model: {s['compute_model']['profile']} ×{s['compute_model']['device_factor']:g}")
    return (f"{s['name']}: {s['model']} λ={s['lambda']}, {s['satellites']} satellites, "
            f"{s['rounds_simulated']} rounds ({s['capture']})\n" + pd.DataFrame(rows).to_string(index=False) + "\n" + tail)
