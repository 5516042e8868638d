"""When each patch becomes decodable on the ground, from the stored items and the fluid downlink.

An item carries ``rounds`` patches of one satellite (one, or a batch simulated in lockstep), sent
as a fluid: patch j of the item has arrived when the item's delivered bits reach (j + 1)/rounds of
its size. A DLRC patch decodes when it and the same round's patch of every stream it copies from
(and what those copy from) have arrived; a baseline patch needs only itself. A lost stream
(``lost_s`` set) never decodes; a patch that copies from it decodes once the loss is known and
the rest has arrived, degraded (those positions take the model's prediction). Counting patches,
not whole items, keeps a batch of thousands of rounds from being counted all at once or never.

Pure functions over tables, so the accounting is tested on hand-made cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def arrival_curve(deliveries: pd.DataFrame, rate_bps: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, cumulative bits) of one item's fluid delivery, piecewise linear: each delivery row sent
    ``bits`` at ``rate_bps`` ending at ``t_s``, nothing in between rows."""
    ends = deliveries["t_s"].to_numpy(float)
    bits = deliveries["bits"].to_numpy(float)
    starts = ends - bits / rate_bps
    cum = np.cumsum(bits)
    times = np.empty(2 * len(ends))
    levels = np.empty(2 * len(ends))
    times[0::2], times[1::2] = starts, ends
    levels[0::2], levels[1::2] = cum - bits, cum
    return times, levels


def patch_arrivals(item_bits: float, rounds: int, times: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(rounds,) time each patch of the item has fully arrived [s]; inf for those that have not."""
    targets = item_bits * np.arange(1, rounds + 1) / rounds
    out = np.full(rounds, np.inf)
    if not len(levels):
        return out
    tol = 1e-6 * max(item_bits, 1.0)
    reached = targets <= levels[-1] + tol
    # first segment end whose level reaches the target, then back along that segment (linear)
    idx = np.searchsorted(levels, targets[reached] - tol, side="left")
    idx = np.minimum(idx, len(levels) - 1)
    hi_t, hi_l = times[idx], levels[idx]
    lo_t = np.where(idx > 0, times[np.maximum(idx - 1, 0)], hi_t)
    lo_l = np.where(idx > 0, levels[np.maximum(idx - 1, 0)], hi_l)
    span = np.where(hi_l > lo_l, hi_l - lo_l, 1.0)
    frac = np.clip((targets[reached] - lo_l) / span, 0.0, 1.0)
    out[reached] = np.where(hi_l > lo_l, lo_t + frac * (hi_t - lo_t), hi_t)
    return out


def needed_slots(copies_from: dict, slot: int) -> set | None:
    """``slot`` and every slot whose stream its decoding needs (transitively); None if one is unknown."""
    need, frontier = {slot}, [slot]
    while frontier:
        u = frontier.pop()
        if u not in copies_from:
            return None
        for d in set(copies_from[u]) - need:
            need.add(d)
            frontier.append(d)
    return need


def decodability(items: pd.DataFrame, deliveries: pd.DataFrame, rate_bps: float, window_start_s: float,
                 latency_samples: int = 256) -> tuple[pd.DataFrame, dict]:
    """Per stored item: how many of its patches arrived, became decodable, and did so after
    ``window_start_s`` (the measured span); with a sample of capture→decodable latencies.

    ``items``: world, slot, first_round, rounds, bits, raw_bits, captured_s, stored_s, copies_from
    (tuple of slots), optionally lost_s (when the stream was lost; NaN: it was not). ``deliveries``: world, slot, first_round, t_s, bits (fluid steps of each item).
    Returns (table, {world: (latencies [s], weights)}): each item's latencies, evenly thinned to at
    most ``latency_samples`` patches, weighted by how many patches each sample stands for (a batch
    of thousands of rounds would otherwise make millions of rows). The maximum is kept exactly.
    """
    rows, lat, wts = [], {}, {}
    if not len(items):
        return pd.DataFrame(rows), {}
    by_item = dict(tuple(deliveries.groupby(["world", "slot", "first_round"]))) if len(deliveries) else {}
    arrivals = {}
    for it in items.itertuples(index=False):
        key = (it.world, it.slot, it.first_round)
        curve = arrival_curve(by_item[key], rate_bps) if key in by_item else (np.zeros(0), np.zeros(0))
        arrivals[key] = patch_arrivals(it.bits, int(it.rounds), *curve)
    if "lost_s" not in items:
        items = items.assign(lost_s=np.nan)
    for (world, first_round), group in items.groupby(["world", "first_round"]):
        lost = {int(r.slot): float(r.lost_s) for r in group.itertuples(index=False) if np.isfinite(r.lost_s)}
        # a lost stream is a leaf: what it copied from is not needed
        deps = {int(r.slot): (() if int(r.slot) in lost else tuple(r.copies_from)) for r in group.itertuples(index=False)}
        for it in group.itertuples(index=False):
            n = int(it.rounds)
            need = needed_slots(deps, int(it.slot))
            arrived = arrivals[(world, it.slot, first_round)]
            if int(it.slot) in lost or need is None:
                decodable = np.full(n, np.inf)
            else:  # a lost dependency counts from when the ground knows it is lost
                decodable = np.max(np.stack([np.full(n, lost[u]) if u in lost else arrivals[(world, u, first_round)]
                                             for u in need]), axis=0)
            degraded = bool(need is not None and int(it.slot) not in lost and need & set(lost))
            ok = np.isfinite(decodable)
            # a batch's rounds run in lockstep between its capture and its storage
            captured = it.captured_s + (it.stored_s - it.captured_s) * np.arange(n) / n
            latency = (decodable - captured)[ok]
            if len(latency):
                stride = max(1, int(np.ceil(len(latency) / latency_samples)))
                sample = latency[::stride]
                lat.setdefault(world, []).append(np.append(sample, latency.max()))
                wts.setdefault(world, []).append(np.append(np.full(len(sample), len(latency) / len(sample)), 0.0))
            rows.append({"world": world, "slot": int(it.slot), "first_round": int(first_round), "rounds": n,
                         "copies_from": " ".join(str(u) for u in sorted(it.copies_from)),
                         "bits": it.bits, "raw_equivalent_bits": it.raw_bits,
                         "patches_arrived": int(np.isfinite(arrived).sum()), "patches_decodable": int(ok.sum()),
                         "lost": int(it.slot) in lost, "degraded": degraded,
                         "patches_decodable_in_span": int((decodable[ok] > window_start_s).sum()),
                         "first_decodable_s": float(decodable[ok].min()) if ok.any() else np.nan,
                         "last_decodable_s": float(decodable[ok].max()) if ok.any() else np.nan})
    return pd.DataFrame(rows), {w: (np.concatenate(lat[w]), np.concatenate(wts[w])) for w in lat}


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs=(50, 95)) -> list[float]:
    """Percentiles of a weighted sample (inverted weighted CDF)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w)
    return [float(v[min(np.searchsorted(cdf, q / 100 * cdf[-1]), len(v) - 1)]) for q in qs]
