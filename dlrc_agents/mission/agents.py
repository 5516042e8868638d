"""The SimPy side of a mission: storage, signature flows over the routed ISLs, satellite agents, downlink."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy
import torch

from edgespacecom.progress import progress

from ..dlrc.alone import decode_alone, decode_alone_jpeg2000
from ..dlrc.bitstream import DecodeBounds
from ..dlrc.onboard import intended_from_references
from ..dlrc.reconstructor import parse_round, reconstruct_parsed
from dlrc_agents.common.imaging import quality, to_tensor
from .compute import ComputeModel
from .onboard import OnboardWork, RealRound

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
    # (trace round, view, stream bytes, priority order, position in the round); views and orders are in
    # positions within the round (the real round's indices); the codec alone: (trace round, None, None, None, pos)
    payload: object = None
    copies_from: frozenset = frozenset()  # slots whose streams (same round) the ground needs to decode this one

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
        from edgespacecom.topology import IslRule

        self.rule = IslRule.from_config(scenario.isl, scenario.constellation)
        self.links: dict = {}

    def at(self, t_s: float, members: tuple, payload_kib: float | None = None) -> np.ndarray:
        """(m, m) delays [s] among the slots ``members`` (in that order): T_flow of src→dst plus the
        control overhead; inf if unreachable. ``payload_kib``: a flow of that size (default: the
        signatures' payload), e.g. a predictive stream sent to the peers that predict from it."""
        from edgespacecom.routing import route_participants

        payload = self.payload if payload_kib is None else float(payload_kib)
        k = min(int(round(t_s / self.step_s)), len(self.positions) - 1)
        key = (k, members) if payload_kib is None else (k, members, payload)
        if key not in self.cache:
            sc = self.sc
            if k not in self.links:
                self.links = {k: self.rule.links(self.positions[k])}  # one sample's links at a time
            flows = route_participants(self.positions[k], self.links[k], self.participants[list(members)], [payload],
                                       sc.link, sc.network)
            self.cache[key] = flows.t_flow_s[0] + sc.network.control_s * (flows.hops[0] > 0)
        return self.cache[key]


class Mission:
    def __init__(self, scenario, codec, work: OnboardWork, flows: FlowOracle, plan: dict, duration_s: float,
                 in_flight: int = 1, captures: list[dict] | None = None):
        """``captures``: geometric participants, one dict per capture opportunity (``t_s``, ``slots``: the
        participating slots, ascending; ``N``; ``o_exp``); None: every slot takes part in every round."""
        self.sc, self.codec, self.work = scenario, codec, work
        self.flows, self.plan, self.duration_s = flows, plan, duration_s
        self.captures = captures
        self.n = len(flows.participants)  # slots
        self.everyone = tuple(range(self.n))
        self.rounds_of_slot = None
        if captures is not None:  # each slot's capture rounds, in time order
            self.rounds_of_slot = {s: [] for s in self.everyone}
            for r, c in enumerate(captures):
                for s in c["slots"]:
                    self.rounds_of_slot[s].append(r)
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
        self.delivered_round_parts: dict = {}  # (world, round) -> {slot: item} delivered
        self.stored: list[dict] = []  # every item put into storage (for the decodability accounting)
        # pipelined schedule: one on-board processor per slot, and at most in_flight rounds at once
        self.in_flight = in_flight if scenario.mission.schedule == "pipelined" else 1
        self.processor = {s: simpy.Resource(self.env, capacity=1) for s in range(self.n)}
        self.backlog_at_send: dict = {}  # (slot, round) -> queued DLRC bits it sent with its signatures
        self.ground_rounds: list[dict] = []
        self.decoded_cache: dict = {}
        self.bar = None
        # losses: streams that never reach the ground, and satellites that fail
        sats = {int(i): s for s, i in enumerate(flows.participants)}
        self.failures = {sats[f.satellite]: f.at_s for f in scenario.mission.losses.failures if f.satellite in sats}
        self.failed: set = set()
        self.lost_at: dict = {}  # (world, slot, first_round) -> when the stream was lost [s]
        self.lost_parts: dict = {}  # (world, round) -> slots whose stream of that round is lost
        self.stored_keys: set = set()  # (world, slot, first_round) stored or lost
        self.pending_rounds: set = set()  # (world, round) with parts on the ground, not decoded yet
        # predict mode: the higher-priority streams each satellite receives over the ISLs
        self.predictive = work.cfg.mode == "predict"
        self.stream_inbox: dict = {}  # (slot, round) -> {sender slot: PredictStream}
        self.stream_arrival: dict = {}  # (slot, round) -> event fired at each arrival
        self.exchange_done: dict = {}  # (slot, round) -> when its stream exchange ended (received and sent)
        self.isl_bytes: dict = {}  # round -> bytes the satellites sent each other (headers or signatures, streams)

    # --------------------------------------------------------------- helpers
    def members(self, r: int) -> tuple:
        """The slots taking part in round ``r``, ascending (their positions in the round's real work)."""
        return self.everyone if self.captures is None else self.captures[r]["slots"]

    def _flows_at(self, t: float, members: tuple | None = None) -> np.ndarray:
        return self.flows.at(t, self.everyone if members is None else members)

    def _event(self, slot: int, r: int):
        key = (slot, r)
        if key not in self.all_heard:
            self.all_heard[key] = self.env.event()
            self.inbox.setdefault(key, set())
            if len(self.inbox[key]) == len(self.members(r)) - 1:
                self.all_heard[key].succeed()
        return self.all_heard[key]

    def _deliver_signatures(self, src: int, dst: int, r: int, delay: float):
        yield self.env.timeout(delay)
        key = (dst, r)
        heard = self.inbox.setdefault(key, set())
        heard.add(src)
        self.arrivals.setdefault((dst, r), []).append(self.env.now)  # dst received
        self.flow_done[(src, r)] = max(self.flow_done.get((src, r), 0.0), self.env.now)  # src's flows landed
        if len(heard) == len(self.members(r)) - 1 and key in self.all_heard and not self.all_heard[key].triggered:
            self.all_heard[key].succeed()

    def steady_round_s(self, rr: RealRound, t: float, order: tuple | None = None) -> float:
        """Period of back-to-back rounds in lockstep at instant ``t`` [s].

        Satellite s is ready to arbitrate when its own entropy modelling is done and every
        peer's signatures have arrived (peer p sends after its own front stages; flows take
        the routed delay; an unreachable peer costs the timeout). The group runs at the pace
        of its slowest member: the period is the largest of the per-satellite round times.
        """
        if self.predictive:
            return self._steady_predict_s(rr, t, order)
        flows = self._flows_at(t)
        everyone = frozenset(range(self.n))
        front = {s: self.cm.seconds(rr.front[s]) for s in range(self.n)}
        period = 0.0
        for s in range(self.n):
            arrivals = [front[p] + flows[p, s] for p in range(self.n) if p != s]
            wait = max([a - front[s] for a in arrivals], default=0.0)
            wait = min(wait, self.sc.mission.peer_timeout_s)
            modelling = self.cm.seconds({"entropy_modelling": rr.modelling[s]})
            full = order if order is not None and len(order) == self.n else None  # the order of a full view
            back = self.cm.seconds(self.work.stream(rr, s, everyone, full)[1])
            latency = front[s] + max(modelling, wait) + back
            period = max(period, max(front[s] + modelling + back, latency / self.in_flight))
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
        if self.captures is not None:
            yield from self._geometric_agent(world, slot)
            return
        env, r, step = self.env, 0, 0
        batch = self.sc.mission.batch if self.sc.mission.capture == "continuous" else 1
        pipelined = world == "dlrc" and self.sc.mission.schedule == "pipelined"
        tokens = simpy.Resource(env, capacity=self.in_flight) if pipelined else None
        while True:
            start = self._next_capture(r)
            if start is None or slot in self.failed:
                return
            yield env.timeout(start - env.now)
            if slot in self.failed:
                return
            rr = self.work.round(step)
            if not pipelined:
                work = self._dlrc_round if world == "dlrc" else self._baseline_round
                result = yield from work(slot, r, batch, rr, step)
                if not self._store(world, slot, r, batch, rr, start, result):
                    return
            else:
                yield from self._start_pipelined(slot, r, batch, rr, step, start, tokens)
            r += batch
            step += 1

    def _geometric_agent(self, world: str, slot: int):
        """A satellite under geometric participants: it captures the target at each opportunity its
        footprint covers (``schedule`` as for fixed slots; opportunities are an ephemeris step apart,
        so the two differ only when a round outlasts a step); a capture nobody else shares is coded by
        the codec alone, in both worlds."""
        env = self.env
        pipelined = world == "dlrc" and self.sc.mission.schedule == "pipelined"
        tokens = simpy.Resource(env, capacity=self.in_flight) if pipelined else None
        for r in self.rounds_of_slot[slot]:
            c = self.captures[r]
            if c["t_s"] >= self.duration_s or slot in self.failed:
                return
            yield env.timeout(max(0.0, c["t_s"] - env.now))
            if slot in self.failed:
                return
            start = env.now
            rr = self.work.round(r, c["N"], c["o_exp"])
            if world == "dlrc" and c["N"] > 1:
                if pipelined:  # the next opportunity need not wait for this round's peers
                    yield from self._start_pipelined(slot, r, 1, rr, r, start, tokens)
                    continue
                result = yield from self._dlrc_round(slot, r, 1, rr, r)
            else:
                result = yield from self._baseline_round(slot, r, 1, rr, r)
            if not self._store(world, slot, r, 1, rr, start, result):
                return

    def _start_pipelined(self, slot, r, batch, rr, step, start, tokens):
        """Start a pipelined DLRC step (at most ``tokens`` in flight); return once its processor stages
        are done, so the agent may capture again."""
        token = tokens.request()
        yield token
        analysed = self.env.event()
        self.env.process(self._pipelined_step(slot, r, batch, rr, step, start, tokens, token, analysed))
        yield analysed  # the processor is free for the next capture

    def _pipelined_step(self, slot, r, batch, rr, step, start, tokens, token, analysed):
        result = yield from self._dlrc_round(slot, r, batch, rr, step, analysed)
        if not self._store("dlrc", slot, r, batch, rr, start, result) and not analysed.triggered:
            analysed.succeed()
        tokens.release(token)

    def _store(self, world, slot, r, batch, rr, start, result) -> bool:
        """Put a step's payload into storage and log its row; False (and the work lost) when the
        satellite failed while working on it."""
        env = self.env
        if slot in self.failed:
            self._lose_unstored(world, slot, r, batch, start, result[3].get("copies_from", frozenset()))
            return False
        nbytes, view, data, extra = result
        bits = 8.0 * nbytes * batch
        order = extra.pop("order", None)
        copies_from = extra.pop("copies_from", frozenset())
        members = self.members(r)
        pos = members.index(slot)
        local = {s: i for i, s in enumerate(members)}
        payload = (rr.index, None if view is None else frozenset(local[u] for u in view),
                   data, None if order is None else tuple(local[u] for u in order), pos)
        item = Item(world, slot, r, batch, bits, batch * self.raw_bits, start, env.now, payload=payload,
                    copies_from=copies_from)
        self.stored_keys.add((world, slot, r))
        if self._stream_lost(slot, r):
            self._lose(item)
        else:
            self.storage[(world, slot)].put(item)
        self.stored.append({"world": world, "slot": slot, "first_round": r, "rounds": batch, "bits": bits,
                            "raw_bits": batch * self.raw_bits, "captured_s": start, "stored_s": env.now,
                            "copies_from": tuple(sorted(copies_from))})
        if world == "dlrc":
            extra["priority_rank"] = order.index(slot) if order is not None else 0
            extra["copies_from"] = " ".join(str(u) for u in sorted(copies_from))
        self.rows.append({"world": world, "slot": slot, "round": r, "rounds": batch, "trace_round": rr.index,
                          "participants": len(members),
                          "captured_s": start, "stored_s": env.now, "time_per_patch_s": (env.now - start) / batch,
                          "bits_per_patch": 8.0 * nbytes, **extra})
        if world == "dlrc" and slot == 0 and self.bar is not None:
            self.bar.update(min(env.now, self.duration_s) - self.bar.n)
        return True

    # --------------------------------------------------------------- losses
    def _stream_lost(self, slot: int, r: int) -> bool:
        """Whether the stream of ``slot``'s capture step ``r`` is lost (``stream_loss_rate``): one seeded
        draw per satellite and step, the same in both worlds."""
        rate = self.sc.mission.losses.stream_loss_rate
        return rate > 0 and np.random.default_rng([self.sc.seed, 7919, slot, r]).random() < rate

    def _lose(self, item: Item) -> None:
        """The stream never reaches the ground: the ground learns it now and decodes the rest of the round."""
        self.lost_at[(item.world, item.slot, item.first_round)] = self.env.now
        self.lost_parts.setdefault((item.world, item.first_round), set()).add(item.slot)
        self._try_decode(item.world, item.first_round)

    def _lose_unstored(self, world: str, slot: int, r: int, batch: int, start: float, copies_from=frozenset()):
        """A satellite failed in the middle of a capture step: what it was working on is lost."""
        self.stored_keys.add((world, slot, r))
        self.stored.append({"world": world, "slot": slot, "first_round": r, "rounds": batch, "bits": 0.0,
                            "raw_bits": batch * self.raw_bits, "captured_s": start, "stored_s": self.env.now,
                            "copies_from": tuple(sorted(copies_from))})
        self._lose(Item(world, slot, r, batch, 0.0, batch * self.raw_bits, start, self.env.now))

    def _fail(self, slot: int, at_s: float):
        """``slot`` fails at ``at_s``: it stops, and every stream it still holds is lost."""
        yield self.env.timeout(at_s)
        self.failed.add(slot)
        for world in ("baseline", "dlrc"):
            store = self.storage[(world, slot)]
            while store.items:
                self._lose(store.items.popleft())
            store.sent(store.bits)
        for world, r in sorted(self.pending_rounds):  # rounds that waited for it
            self._try_decode(world, r)

    def priority_order(self, view: frozenset, r: int, step: int) -> tuple:
        """The satellites of ``view``, highest priority first, under ``dlrc.priority``: every satellite
        that heard the same peers computes the same order from what the signature exchange carried."""
        policy = self.sc.dlrc.priority
        members = self.members(r)
        if policy == "rotate":  # round-robin: the top position moves on by one each capture step
            key = lambda s: ((members.index(s) - step) % len(members), s)  # noqa: E731
        elif policy == "backlog":  # the fewest queued bits keeps the representatives
            key = lambda s: (self.backlog_at_send[(s, r)], s)  # noqa: E731
        else:
            key = lambda s: s  # noqa: E731
        return tuple(sorted(view, key=key))

    def _front_and_headers(self, slot: int, r: int, batch: int, rr: RealRound, p: int, members: tuple, analysed):
        """Both modes' first half: the front stages and the entropy modelling (holding the processor when
        pipelined; ``analysed`` fires after them for a single round), the header sent to the peers
        between them, then the wait for the peers' headers until all came or ``peer_timeout_s``.
        Returns (when the header left, the satellites heard, itself included)."""
        env = self.env
        cpu = self.processor[slot].request() if analysed is not None else None
        if cpu is not None:
            yield cpu
        yield env.timeout(self.cm.seconds(rr.front[p]))
        t_sent = env.now
        self.sent_at[(slot, r)] = t_sent
        self.backlog_at_send[(slot, r)] = self.storage[("dlrc", slot)].bits  # travels with the header
        self._send_header(slot, r, rr, p, members)
        yield env.timeout(self.cm.seconds({"entropy_modelling": rr.modelling[p]}))
        if cpu is not None:
            self.processor[slot].release(cpu)
            if batch == 1:
                analysed.succeed()
        everyone = self._event(slot, r)
        deadline = t_sent + self.sc.mission.peer_timeout_s
        if not everyone.triggered and env.now < deadline:
            yield everyone | env.timeout(deadline - env.now)
        return t_sent, frozenset(self.inbox.get((slot, r), set()) | {slot})

    def _compute(self, slot: int, seconds: float, analysed):
        """``seconds`` of on-board work, holding the slot's processor when pipelined (``analysed`` set)."""
        cpu = self.processor[slot].request() if analysed is not None else None
        if cpu is not None:
            yield cpu
        yield self.env.timeout(seconds)
        if cpu is not None:
            self.processor[slot].release(cpu)

    def _dlrc_round(self, slot: int, r: int, batch: int, rr: RealRound, step: int, analysed=None):
        """One DLRC step. Serial (``analysed`` None): every stage in turn. Pipelined: the stages that
        compute hold the slot's processor, ``analysed`` fires once the front stages and the entropy
        modelling are done (the next capture may start), and the wait for peers holds nothing."""
        if self.predictive:
            return (yield from self._predict_round(slot, r, batch, rr, step, analysed))
        env = self.env
        members = self.members(r)
        local = {s: i for i, s in enumerate(members)}  # slot -> its position in the round's real work
        p = local[slot]
        t_sent, heard = yield from self._front_and_headers(slot, r, batch, rr, p, members, analysed)
        wait = env.now - t_sent
        order = self.priority_order(heard, r, step)
        data, t_back, retained, copies_local = self.work.stream(rr, p, frozenset(local[u] for u in heard),
                                                                tuple(local[u] for u in order))
        copies_from = frozenset(members[i] for i in copies_local)
        yield from self._compute(slot, self.cm.seconds(t_back), analysed)
        if batch > 1:  # the batch's other rounds, in lockstep at this network instant (pipelined or not)
            yield env.timeout((batch - 1) * self.steady_round_s(rr, t_sent, order))
            if analysed is not None:
                analysed.succeed()  # a batch's rounds are all captured: the next step may start
        return len(data), heard, data, {"peers_heard": len(heard) - 1, "sync_wait_s": wait,
                                        "t_front_s": self.cm.seconds(rr.front[p]),
                                        "t_modelling_s": self.cm.seconds({"entropy_modelling": rr.modelling[p]}),
                                        "t_back_s": self.cm.seconds(t_back),
                                        "timed_out": len(heard) < len(members), "t_sent_s": t_sent,
                                        "retained_fraction": retained, "order": order,
                                        "copies_from": copies_from}

    def _send_header(self, slot: int, r: int, rr: RealRound, p: int, members: tuple) -> None:
        """Send ``slot``'s signatures (or, on the shared grid in predict mode, its tile origin) to its peers."""
        flows = self._flows_at(self.env.now, members)
        size = len(rr.signatures[p]) + 8 * (self.sc.dlrc.priority == "backlog")
        for q, peer in enumerate(members):
            if peer != slot and np.isfinite(flows[p, q]):
                self.isl_bytes[r] = self.isl_bytes.get(r, 0) + size
                self.env.process(self._deliver_signatures(slot, peer, r, flows[p, q]))

    def _deliver_stream(self, src: int, dst: int, r: int, delay: float, stream):
        yield self.env.timeout(delay)
        self.stream_inbox.setdefault((dst, r), {})[src] = stream
        self.exchange_done[(src, r)] = max(self.exchange_done.get((src, r), 0.0), self.env.now)
        event = self.stream_arrival.pop((dst, r), None)
        if event is not None:
            event.succeed()

    def _stream_event(self, slot: int, r: int):
        if (slot, r) not in self.stream_arrival:
            self.stream_arrival[(slot, r)] = self.env.event()
        return self.stream_arrival[(slot, r)]

    def _predict_round(self, slot: int, r: int, batch: int, rr: RealRound, step: int, analysed=None):
        """One step of predictive coding (``dlrc.mode: predict``): front stages, the header exchange
        (tile origins on the shared grid, else signatures) and entropy modelling as in copy mode; then
        the satellite waits (at most ``peer_timeout_s``) for the streams of the higher-priority peers
        it predicts from, decodes them on board, codes its own and sends it to the lower-priority peers
        that predict from it (a routed flow of the stream's size). A peer whose stream does not come in
        time is coded without: those positions are coded as the codec alone would."""
        from ..dlrc.onboard import needed_streams

        env, mc = self.env, self.sc.mission
        members = self.members(r)
        local = {s: i for i, s in enumerate(members)}
        p = local[slot]
        t_sent, heard = yield from self._front_and_headers(slot, r, batch, rr, p, members, analysed)
        order = self.priority_order(heard, r, step)
        lorder = tuple(local[u] for u in order)
        refs = self.work.references(rr, frozenset(local[u] for u in heard), lorder)
        n = len(refs[p])
        need = {members[u] for u in needed_streams(refs, p, n)}
        inbox = self.stream_inbox.setdefault((slot, r), {})
        deadline = env.now + mc.peer_timeout_s
        while not need <= set(inbox) and env.now < deadline:
            yield self._stream_event(slot, r) | env.timeout(deadline - env.now)
        wait = env.now - t_sent
        usable: set = set()  # in priority order: the needed streams that came, whose own references came too
        for u in lorder[:lorder.index(p)]:
            got = inbox.get(members[u])
            if members[u] in need and got is not None and got.references <= usable:
                usable.add(u)
        ps = self.work.predict_stream(rr, p, frozenset(usable), lorder)
        decode = set()  # every stream whose ŷ its predictions rest on, decoded on board
        todo = list(ps.references)
        while todo:
            u = todo.pop()
            if u not in decode:
                decode.add(u)
                todo.extend(inbox[members[u]].references)
        t_back = {**ps.timings, "peer_decode": sum(inbox[members[u]].decode_s for u in decode)}
        yield from self._compute(slot, self.cm.seconds(t_back), analysed)
        if need:  # its part of the exchange: the needed streams came (or the wait ended)
            self.exchange_done[(slot, r)] = max(self.exchange_done.get((slot, r), 0.0), t_sent + wait)
        # the lower-priority satellites of its view that predict from it (directly or through another)
        dependants = [q for q in lorder[lorder.index(p) + 1:] if p in needed_streams(refs, q, n)]
        if dependants:
            flows = self.flows.at(env.now, members, len(ps.data) / 1024.0)
            for q in dependants:
                if np.isfinite(flows[p, q]):
                    self.isl_bytes[r] = self.isl_bytes.get(r, 0) + len(ps.data)
                    env.process(self._deliver_stream(slot, members[q], r, flows[p, q], ps))
        if batch > 1:
            yield env.timeout((batch - 1) * self.steady_round_s(rr, t_sent, order))
            if analysed is not None:
                analysed.succeed()
        received = sum(len(inbox[members[u]].data) for u in decode)
        return len(ps.data), heard, ps.data, {"peers_heard": len(heard) - 1, "sync_wait_s": wait,
                                              "t_front_s": self.cm.seconds(rr.front[p]),
                                              "t_modelling_s": self.cm.seconds({"entropy_modelling": rr.modelling[p]}),
                                              "t_back_s": self.cm.seconds(t_back),
                                              "t_peer_decode_s": self.cm.seconds({"peer_decode": t_back["peer_decode"]}),
                                              "timed_out": len(heard) < len(members) or not need <= set(inbox),
                                              "t_sent_s": t_sent, "retained_fraction": 1.0,
                                              "predicted_fraction": ps.predicted_fraction,
                                              "streams_received_bytes": received,
                                              "streams_missed": len(need - {members[u] for u in usable}),
                                              "order": order, "copies_from": frozenset(members[u] for u in ps.references)}

    def _steady_predict_s(self, rr: RealRound, t: float, order: tuple | None) -> float:
        """:meth:`steady_round_s` in predict mode: in priority order, each satellite codes once the streams
        it predicts from have arrived (each a routed flow of its size from when its sender finished)."""
        from ..dlrc.onboard import needed_streams

        flows = self._flows_at(t)
        lorder = tuple(order) if order is not None and len(order) == self.n else tuple(range(self.n))
        refs = self.work.references(rr, frozenset(range(self.n)), lorder)
        n = len(refs[lorder[0]])
        front = {s: self.cm.seconds(rr.front[s]) for s in range(self.n)}
        done, sent, period = {}, {}, 0.0
        for s in lorder:
            arrivals = [front[p] + flows[p, s] for p in range(self.n) if p != s]
            wait = min(max([a - front[s] for a in arrivals], default=0.0), self.sc.mission.peer_timeout_s)
            modelling = self.cm.seconds({"entropy_modelling": rr.modelling[s]})
            need = needed_streams(refs, s, n)
            ps = self.work.predict_stream(rr, s, frozenset(need), lorder)
            back = self.cm.seconds({**ps.timings, "peer_decode": sum(sent[u][1] for u in need)})
            ready = max([front[s] + max(modelling, wait)]
                        + [done[u] + self.flows.at(t, self.everyone, sent[u][0] / 1024.0)[u, s] for u in need])
            done[s] = ready + back
            sent[s] = (len(ps.data), ps.decode_s)
            period = max(period, max(front[s] + modelling + back, done[s] / self.in_flight))
        return period

    def _baseline_round(self, slot: int, r: int, batch: int, rr: RealRound, step: int):
        b = rr.baseline[self.members(r).index(slot)]
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
                if slot in self.failed:
                    return
                if not store.items:
                    yield store.arrival() | env.timeout(end - env.now)
                    continue
                item = store.items[0]
                need, avail = item.remaining / self.rate, end - env.now
                step = min(need, avail)
                yield env.timeout(step)
                if slot in self.failed:  # the item went with the satellite (see _fail)
                    return
                sent = min(item.remaining, step * self.rate)
                item.remaining -= sent
                store.sent(sent)
                self.deliveries.append({"world": world, "slot": slot, "first_round": item.first_round,
                                        "t_s": env.now, "bits": sent,
                                        "raw_equivalent_bits": sent / item.bits * item.raw_bits})
                if item.remaining <= 1e-6:
                    store.items.popleft()
                    self._ground_receives(item)

    # --------------------------------------------------------------- ground
    def _ground_receives(self, item: Item):
        self.delivered_round_parts.setdefault((item.world, item.first_round), {})[item.slot] = item
        self._try_decode(item.world, item.first_round)

    def _try_decode(self, world: str, r: int) -> None:
        """Decode round ``r`` once every participant's stream has arrived or is known lost (a lost
        stream, or a satellite that failed before storing its part); nothing when none arrived."""
        parts = self.delivered_round_parts.get((world, r), {})
        if not parts:
            return
        lost = self.lost_parts.get((world, r), set())
        members = self.members(r)
        for s in members:
            if s in parts or s in lost or (s in self.failed and (world, s, r) not in self.stored_keys):
                continue
            self.pending_rounds.add((world, r))
            return
        self.pending_rounds.discard((world, r))
        items = [parts[s] for s in members if s in parts]
        captured = min(i.captured_s for i in items)
        self.ground_rounds.append({
            "world": world, "round": r, "rounds": items[0].rounds, "trace_round": items[0].payload[0],
            "captured_s": captured, "delivered_s": self.env.now, "latency_s": self.env.now - captured,
            "streams_lost": len(members) - len(items), **self._decode(world, items),
        })
        del self.delivered_round_parts[(world, r)]

    @torch.no_grad()
    def _decode(self, world: str, items: list[Item]) -> dict:
        """Decode the streams of one round that reached the ground (all, or all but the lost ones: then
        the positions copied from a lost stream take the model's prediction and the round is degraded);
        PSNR and MS-SSIM over the patches decoded, and whether each intact stream decoded bit-exactly."""
        trace = items[0].payload[0]
        views = tuple((i.payload[1], i.payload[3], i.payload[4]) for i in items)  # view, priority order, position
        key = (world, trace, views)
        if key in self.decoded_cache:
            return self.decoded_cache[key]
        rr = self.work.by_index[trace]
        positions = [i.payload[4] for i in items]
        psnr, msssim, exact, predicted = [], [], True, 0
        if world == "dlrc" and items[0].payload[1] is not None:
            streams = [i.payload[2] for i in items]
            parsed = parse_round(self.codec, streams, self.work.key, rr.index, self.bounds(rr))
            lost = "predict" if len(items) < len(rr.images) else "error"
            decoded = reconstruct_parsed(self.codec, parsed, lost=lost)
            maps = {}
            for p in parsed:
                maps.update(p.maps)
            if self.codec.family == "hyperprior":
                own = {s: rr.states[s].latent.y_hat for s in rr.states}
            else:  # each stream's own ŷ, as coded for the view it arbitrated on
                own = {i.payload[4]: rr.own_hat[(i.payload[4], i.payload[1], i.payload[3])] for i in items}
            predicted = sum(d["predicted"] for d in decoded.values())
            # streams that copy nothing from a lost one; their copies reach only delivered streams
            intact = [s for s in decoded if decoded[s]["predicted"] == 0]
            if parsed[0].predictive:  # every stream codes its own ŷ: the codec alone's, exactly
                intended = {s: own[s][0] for s in intact}
            else:
                intended = intended_from_references(maps, own, intact)
            for s in decoded:
                if s in intact:
                    exact &= bool(torch.equal(decoded[s]["y_tilde"], intended[s]))
                p, m = quality(rr.images[s], decoded[s]["x_hat"])
                psnr.append(p)
                msssim.append(m)
        else:
            for s in positions:
                if self.work.sc.mission.baseline.codec == "jpeg2000":  # decoded by the library that wrote it
                    x_hat = to_tensor(decode_alone_jpeg2000(rr.baseline[s]["data"], self.work.key, capture=rr.index,
                                                            bounds=self.bounds(rr)))
                else:
                    x_hat = decode_alone(self.codec, rr.baseline[s]["data"], self.work.key, capture=rr.index,
                                         bounds=self.bounds(rr))
                p, m = quality(rr.images[s], x_hat)
                psnr.append(p)
                msssim.append(m)
        out = {"psnr": float(np.mean(psnr)), "ms_ssim": float(np.mean(msssim)), "decode_exact": exact,
               "predicted_positions": int(predicted), "degraded": bool(predicted > 0)}
        self.decoded_cache[key] = out
        return out

    def bounds(self, rr) -> DecodeBounds:
        """What the ground expects of a round's streams: the mission's patch size and its members."""
        patch = self.sc.overlap.patch
        return DecodeBounds.expect((patch, patch), len(rr.images))

    def sync_rounds(self) -> pd.DataFrame:
        """Per round: the agents' sync round, max over satellites of max(all peers' signatures
        received, own signatures delivered) − own send time (the paper's T_round), and how many
        satellites missed a peer."""
        rows = []
        rounds = sorted({r for (_, r) in self.sent_at})
        for r in rounds:
            per_slot = []
            members = self.members(r)
            m = len(members)
            for s in members:
                if (s, r) not in self.sent_at:
                    continue
                arr = self.arrivals.get((s, r), [])
                recv = max(arr) if len(arr) == m - 1 else np.inf
                send = self.flow_done.get((s, r), np.inf) if m > 1 else self.sent_at[(s, r)]
                # predict mode: until its needed streams came in and its own reached the peers that need it
                streams = self.exchange_done.get((s, r), -np.inf)
                per_slot.append(max(recv, send, streams, self.sent_at[(s, r)]) - self.sent_at[(s, r)])
            rows.append({"round": r, "t_s": min(self.sent_at[(s, r)] for s in members if (s, r) in self.sent_at),
                         "participants": m, "sync_round_s": max(per_slot) if per_slot else np.nan,
                         "isl_bytes": self.isl_bytes.get(r, 0)})
        return pd.DataFrame(rows, columns=["round", "t_s", "participants", "sync_round_s", "isl_bytes"])

    def run(self, show_progress: bool = True) -> None:
        for slot, at_s in self.failures.items():
            self.env.process(self._fail(slot, at_s))
        for s in range(self.n):
            self.env.process(self.agent("dlrc", s))
            self.env.process(self.agent("baseline", s))
            for w in ("baseline", "dlrc"):
                self.env.process(self.downlink(w, s))
        with progress(total=self.duration_s, desc="mission", unit="sim s", disable=not show_progress) as bar:
            self.bar = bar
            self.env.run(until=self.duration_s)
            bar.update(self.duration_s - bar.n)
        self.bar = None
