"""Many observation groups' signature flows sharing ISL capacity: an exact fluid, event-driven round.

Model (extends the paper's parallel unicast of Appendix A to many regions at once):

- Every flow is store-and-forward along its minimum-delay path (chosen as one region alone
  chooses it): on hop h it transmits its S bits over one direction of link l_h, the bits then
  propagate for d/c, and the next satellite relays for t_relay before hop h + 1. With the link's
  whole rate B(d) that is today's t_flow = Σ (S/B + d/c) + (H − 1)·t_relay.
- ISLs are full duplex: each direction of a link is one resource of rate B(d).
- A region's transmissions on a resource form one session. At every instant the resource's rate
  is shared max-min fairly among the sessions with a transmission on it; with one resource per
  transmission and no other limit on a session's demand, max-min fairness is the equal split
  B/n. Every transmission of a session runs at the session's rate: inside a region the paper's
  model holds (its flows do not slow one another), so a region alone keeps today's numbers, and
  only other regions slow it down.
- The split is re-solved at every event (a transmission starting or ending), so the times are
  exact for this model.

All active transmissions on a resource then run at the same rate 1/n (in units of the full rate),
so one virtual clock per resource (the full-rate work each has received, dV/dt = 1/n) orders its
completions: a transmission that starts at virtual time V with work w ends when the clock reads
V + w. Events are kept in one heap with lazy invalidation; each costs O(log events). Written by hand:
no maintained library simulates flow-level max-min sharing (ns-3 and OMNeT++ are packet-level C++
simulators).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transmissions:
    """The hops of a round's flows, flow by flow in path order (arrays of length T), and each flow's region."""

    flow: np.ndarray  # (T,) flow index, non-decreasing; a flow's hops are contiguous and in order
    resource: np.ndarray  # (T,) link direction
    work_s: np.ndarray  # (T,) S/B at the link's full rate [s]
    propagation_s: np.ndarray  # (T,) d/c [s]
    region: np.ndarray  # (F,) region of each flow


@dataclass(frozen=True)
class SharedRound:
    """Completion times of the flows and what each resource carried."""

    done_s: np.ndarray  # (F,) each flow's completion time from the round's start [s]
    simulated: np.ndarray  # (F,) bool: the flow touched a resource another region also used
    busy_s: dict  # resource -> time with at least one transmission on it [s] (simulated resources)
    peak_sessions: dict  # resource -> most regions transmitting on it at once (simulated resources)


def shared_resources(tx: Transmissions) -> np.ndarray:
    """Resources used by more than one region in the round."""
    pairs = np.unique(np.stack([tx.resource, tx.region[tx.flow]]), axis=1)
    resources, count = np.unique(pairs[0], return_counts=True)
    return resources[count > 1]


def simulate(tx: Transmissions, relay_s: float, alone_s: np.ndarray) -> SharedRound:
    """Completion time of every flow when the regions share the resources (see the module).

    ``alone_s`` (F,): each flow's time with the links to itself (its region's routing result); a flow
    that touches no resource another region uses keeps it exactly, and only the flows that do are
    simulated (with every hop they take)."""
    n_flows = len(tx.region)
    done = np.asarray(alone_s, dtype=float).copy()
    shared = shared_resources(tx)
    touched = np.zeros(n_flows, dtype=bool)
    touched[tx.flow[np.isin(tx.resource, shared)]] = True
    if not touched.any():
        return SharedRound(done, touched, {}, {})
    keep = touched[tx.flow]
    flows = tx.flow[keep]
    resource, work, prop = tx.resource[keep].tolist(), tx.work_s[keep].tolist(), tx.propagation_s[keep].tolist()
    region = tx.region.tolist()
    new_flow = flows[1:] != flows[:-1]
    starts = np.flatnonzero(np.r_[True, new_flow])  # each flow's first hop
    last_hop = np.r_[new_flow, True].tolist()
    flow_of = flows.tolist()

    # per resource: virtual clock, its real time, sessions (region -> active transmissions; their number
    # is the split n), heap of ends
    clock: dict = {}
    stamp: dict = {}
    sessions: dict = {}
    ends_heap: dict = {}
    version: dict = {}
    busy: dict = {}
    peak: dict = {}
    events: list = []  # (time, kind, key, version): kind 0 = a hop starts (key: hop), 1 = a resource's next end

    def advance(r: int, t: float) -> None:
        n = len(sessions[r])
        if n:
            clock[r] += (t - stamp[r]) / n
            busy[r] += t - stamp[r]
        stamp[r] = t

    def schedule(r: int) -> None:
        version[r] = version.get(r, 0) + 1
        if ends_heap[r]:
            finish = stamp[r] + (ends_heap[r][0][0] - clock[r]) * len(sessions[r])
            heapq.heappush(events, (finish, 1, r, version[r]))

    for s in starts.tolist():
        heapq.heappush(events, (0.0, 0, s, 0))
    while events:
        t, kind, key, ver = heapq.heappop(events)
        if kind == 0:  # hop `key` starts transmitting
            r, g = resource[key], region[flow_of[key]]
            if r not in clock:
                clock[r], stamp[r], sessions[r], ends_heap[r], busy[r], peak[r] = 0.0, t, {}, [], 0.0, 0
            advance(r, t)
            heapq.heappush(ends_heap[r], (clock[r] + work[key], key))
            sessions[r][g] = sessions[r].get(g, 0) + 1
            peak[r] = max(peak[r], len(sessions[r]))
            schedule(r)
            continue
        r = key
        if ver != version[r]:
            continue  # superseded: the resource's sharing changed since
        advance(r, t)
        _, hop = heapq.heappop(ends_heap[r])
        g = region[flow_of[hop]]
        sessions[r][g] -= 1
        if sessions[r][g] == 0:
            del sessions[r][g]
        schedule(r)
        f = flow_of[hop]
        if last_hop[hop]:
            done[f] = t + prop[hop]
        else:
            heapq.heappush(events, (t + prop[hop] + relay_s, 0, hop + 1, 0))
    return SharedRound(done, touched, busy, peak)
