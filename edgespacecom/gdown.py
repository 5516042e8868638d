"""End-to-end downlink gain of DLRC, G_down (paper Section 4.2, Figure A2).

Per method m ∈ {B (baseline), D (DLRC)} and a downlink configuration (N_w windows a
day of τ_w seconds at x bit/s):

- production  P_m = T_day · S_raw / t_m          [raw bits a day the satellite can encode]
- transmission L_m = N_w · τ_w · x · r_raw / bpp_m [raw-equivalent bits a day it can send]
- G_down = min(P_D, L_D) / min(P_B, L_B) − 1

S_raw is the raw size of one patch [bit] (P²·r_raw), t_m the on-board time per patch
[s], r_raw the raw bit depth per pixel (24 for RGB uint8), bpp_m the coded bits per
pixel. Regimes: compute-limited for DLRC with the baseline downlink-limited gives
P_D/L_B − 1 (the curved part of Figure A2); both downlink-limited gives
L_D/L_B − 1 = bpp_B/bpp_D − 1 (the flat part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T_DAY_S = 86400.0


def production_bits_per_day(patch_raw_bits: float, time_per_patch_s: float, t_day_s: float = T_DAY_S) -> float:
    """P = T_day · S_raw / t: raw bits a day the on-board pipeline gets through [bit/day]."""
    if time_per_patch_s <= 0:
        raise ValueError("time per patch must be > 0")
    return t_day_s * patch_raw_bits / time_per_patch_s


def transmission_bits_per_day(windows_per_day: float, window_s: float, rate_bps: float, raw_bits_per_pixel: float,
                              bpp: float) -> float:
    """L = N_w · τ_w · x · r_raw / bpp: raw-equivalent bits a day the downlink carries [bit/day]."""
    if bpp <= 0:
        raise ValueError("bpp must be > 0")
    return windows_per_day * window_s * rate_bps * raw_bits_per_pixel / bpp


@dataclass(frozen=True)
class GainTerms:
    P_B: float
    P_D: float
    L_B: float
    L_D: float

    @property
    def g_down(self) -> float:
        return min(self.P_D, self.L_D) / min(self.P_B, self.L_B) - 1.0

    @property
    def regime(self) -> str:
        """Which terms bind: e.g. 'D:compute B:downlink'."""
        d = "compute" if self.P_D < self.L_D else "downlink"
        b = "compute" if self.P_B < self.L_B else "downlink"
        return f"D:{d} B:{b}"


def gain_terms(*, patch_px: int, raw_bits_per_pixel: float, t_baseline_s: float, t_dlrc_s: float,
               bpp_baseline: float, bpp_dlrc: float, windows_per_day: float, window_s: float,
               rate_bps: float, t_day_s: float = T_DAY_S) -> GainTerms:
    """P and L of both methods for one downlink configuration."""
    s_raw = patch_px * patch_px * raw_bits_per_pixel
    return GainTerms(
        P_B=production_bits_per_day(s_raw, t_baseline_s, t_day_s),
        P_D=production_bits_per_day(s_raw, t_dlrc_s, t_day_s),
        L_B=transmission_bits_per_day(windows_per_day, window_s, rate_bps, raw_bits_per_pixel, bpp_baseline),
        L_D=transmission_bits_per_day(windows_per_day, window_s, rate_bps, raw_bits_per_pixel, bpp_dlrc),
    )


def g_down(**kwargs) -> float:
    """G_down = min(P_D, L_D) / min(P_B, L_B) − 1 (keywords of :func:`gain_terms`)."""
    return gain_terms(**kwargs).g_down


def g_down_curve(rates_bps: np.ndarray, **kwargs) -> np.ndarray:
    """G_down over a range of downlink rates, other terms fixed (Figure A2)."""
    return np.array([g_down(rate_bps=float(x), **kwargs) for x in rates_bps])


def g_down_per_satellite(*, patch_px: int, raw_bits_per_pixel: float, t_baseline_s, t_dlrc_s, bpp_baseline,
                         bpp_dlrc, windows_per_day: float, window_s: float, rate_bps: float,
                         t_day_s: float = T_DAY_S) -> float:
    """G_down of a group: Σ_s min(P_D,s, L_D,s) / Σ_s min(P_B,s, L_B,s) − 1.

    The paper's formula is for one satellite. Applied to a group's *mean* t and bpp it is
    biased for DLRC: the top-priority satellite codes almost every vector and the last
    almost none, so the satellites' bpp differ widely while each has its own downlink, and
    the raw-equivalent volume goes with 1/bpp (mean of 1/bpp ≥ 1/mean bpp). This sums the
    formula's terms over the satellites, each with its own t and bpp (sequences, one
    entry per satellite).
    """
    def delivered(times, bpps):
        return sum(min(production_bits_per_day(patch_px**2 * raw_bits_per_pixel, t, t_day_s),
                       transmission_bits_per_day(windows_per_day, window_s, rate_bps, raw_bits_per_pixel, b))
                   for t, b in zip(times, bpps))

    return delivered(t_dlrc_s, bpp_dlrc) / delivered(t_baseline_s, bpp_baseline) - 1.0


def patches_per_day(*, time_per_patch_s: float, bits_per_patch: float, windows_per_day: float, window_s: float,
                    rate_bps: float, t_day_s: float = T_DAY_S) -> float:
    """Patches a day one satellite gets through, on board and down: min(T_day / t, N_w·τ_w·x / bits)."""
    if time_per_patch_s <= 0 or bits_per_patch <= 0:
        raise ValueError("time and bits per patch must be > 0")
    return min(t_day_s / time_per_patch_s, windows_per_day * window_s * rate_bps / bits_per_patch)


def g_down_decodable(*, patch_px: int, t_baseline_s, t_dlrc_s, bpp_baseline, bpp_dlrc, copies_from,
                     windows_per_day: float, window_s: float, rate_bps: float, t_day_s: float = T_DAY_S,
                     contact_s_per_day=None) -> float:
    """G_down counting only what the ground can decode: Σ decodable DLRC patches / Σ baseline patches − 1.

    Each satellite s drains its own FIFO at R_s patches a day (:func:`patches_per_day` with its own
    t and bits per patch: the most loaded satellite is the slowest). A DLRC patch decodes only when
    every stream it copies from has arrived too, so in steady state a patch of s that copies from
    the set D runs at min over {s} ∪ D of R_d. ``copies_from`` lists (s, D, patches): how many of
    satellite s's DLRC patches copy from exactly the set D (a satellite's patches are averaged with
    these weights); each satellite's throughput comes from its own entry of the per-satellite
    sequences. Baseline patches depend on nothing. With fixed
    priority the top satellite keeps most vectors, carries the highest bpp and paces every patch
    that copies from it; balanced priorities spread that load. ``contact_s_per_day`` (one entry
    per satellite [s]), when given, replaces N_w·τ_w: satellites whose passes over the stations
    differ have different downlinks, and the least served paces what copies from it.
    """
    contact = ([windows_per_day * window_s] * len(t_dlrc_s) if contact_s_per_day is None
               else list(contact_s_per_day))

    def rates(times, bpps):
        return [patches_per_day(time_per_patch_s=t, bits_per_patch=b * patch_px**2, windows_per_day=1.0,
                                window_s=c, rate_bps=rate_bps, t_day_s=t_day_s) if c > 0 else 0.0
                for t, b, c in zip(times, bpps, contact)]

    r_d, r_b = rates(t_dlrc_s, bpp_dlrc), rates(t_baseline_s, bpp_baseline)
    made = [t_day_s / t if t > 0 else 0.0 for t in t_dlrc_s]  # patches a satellite produces a day
    # the fraction of d's patches that get down (R_d / produced_d): a patch of s that copies from D
    # decodes at s's production times the smallest such fraction over {s} ∪ D; when the group runs
    # in lockstep (equal production) this is min over {s} ∪ D of R_d
    down = [r / m if m > 0 else 0.0 for r, m in zip(r_d, made)]
    paced: dict[int, float] = {}
    weight: dict[int, float] = {}
    for slot, deps, patches in copies_from:
        paced[slot] = paced.get(slot, 0.0) + patches * made[slot] * min(down[d] for d in {slot, *deps})
        weight[slot] = weight.get(slot, 0.0) + patches
    dlrc = sum(paced[s] / weight[s] for s in paced)
    return dlrc / sum(r_b) - 1.0

