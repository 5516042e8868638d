"""A mission's summary (G_down simulated and analytic), its figures and its printed table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edgespacecom.gdown import g_down_decodable, g_down_per_satellite, gain_terms

from .decodable import weighted_percentiles
from .ground import delivered_per_day

def _latency(values: np.ndarray, weights: np.ndarray) -> dict | None:
    if not len(values):
        return None
    p50, p95 = weighted_percentiles(values, weights)
    return {"p50": p50, "p95": p95, "max": float(values.max())}


def copies_from_counts(dl: pd.DataFrame) -> list:
    """[[slot, [slots it copies from], patches]] over DLRC rows: the decodability structure, compactly."""
    counts = dl.groupby(["slot", "copies_from"])["rounds"].sum()
    return [[int(slot), [int(u) for u in str(deps).split()], int(n)] for (slot, deps), n in counts.items()]


def summarise_mission(scenario, table, deliveries, ground, sync_table, contact_stats, mission, work,
                      duration_s, decodable: tuple) -> dict:
    """The mission's summary; ``decodable``: (per-item table, {world: (latencies, weights)}) of
    :func:`.decodable.decodability`."""
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
    per_day_b, basis = delivered_per_day(deliveries, "baseline", duration_s)
    per_day_d, _ = delivered_per_day(deliveries, "dlrc", duration_s)
    items, latencies = decodable
    per_patch = (items["raw_equivalent_bits"] / items["rounds"]) if len(items) else pd.Series(dtype=float)
    two_days = duration_s >= 2 * 86400.0

    def decodable_per_day(world: str) -> float:
        if not len(items):
            return 0.0
        mine = items["world"] == world
        count = items["patches_decodable_in_span"] if two_days else items["patches_decodable"]
        total = float((count * per_patch)[mine].sum())
        return total if two_days else total * 86400.0 / duration_s

    dec_b, dec_d = decodable_per_day("baseline"), decodable_per_day("dlrc")
    deps = copies_from_counts(dl)
    g_dec = g_down_decodable(patch_px=scenario.overlap.patch, windows_per_day=windows, window_s=window_s,
                             rate_bps=g.rate_bps, copies_from=deps, **per_sat)
    delivered = {wd: float(deliveries.loc[deliveries["world"] == wd, "bits"].sum()) for wd in ("baseline", "dlrc")}
    decodable_bits = {wd: float((items["patches_decodable"] * items["bits"] / items["rounds"])[items["world"] == wd]
                                .sum()) if len(items) else 0.0 for wd in delivered}
    backlog = {wd: {"final_bits": [mission.storage[(wd, s_)].bits for s_ in slots],
                    "max_bits": [max(b for _, b in mission.storage[(wd, s_)].history) for s_ in slots]}
               for wd in delivered}
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
        "priority": scenario.dlrc.priority,
        "schedule": scenario.mission.schedule,
        # t_D and its parts per patch [s]: analysis + Recognizer + Selector, entropy modelling, the
        # wait for the peers' signatures, arbitration + coding; the production period is t_D
        "t_dlrc_parts_s": {k: w(dl, col) for k, col in (("front", "t_front_s"), ("modelling", "t_modelling_s"),
                                                         ("sync_wait", "sync_wait_s"), ("back", "t_back_s"),
                                                         ("latency", "latency_per_patch_s"),
                                                         ("period", "time_per_patch_s"))} if len(dl) else None,
        "delivered_bits": delivered,
        # delivered but not decodable (yet): a stream it copies from is still on board, or in flight
        "undecodable_bits": {wd: max(0.0, delivered[wd] - decodable_bits[wd]) for wd in delivered},
        "decodable_raw_equivalent_bits_per_day": {"baseline": dec_b, "dlrc": dec_d, "basis": basis},
        # capture → decodable on the ground, per patch
        "latency_s": {wd: _latency(*latencies[wd]) if wd in latencies else None for wd in delivered},
        "patches_decodable": {wd: int(items.loc[items["world"] == wd, "patches_decodable"].sum())
                              if len(items) else 0 for wd in delivered},
        "delivered_raw_equivalent_bits_per_day": {"baseline": per_day_b, "dlrc": per_day_d, "basis": basis},
        "rounds_decoded_on_ground": {"baseline": int(len(gr["baseline"])), "dlrc": int(len(gr["dlrc"]))},
        "image_latency_s": {wd: (float(gr[wd]["latency_s"].mean()) if len(gr[wd]) else None) for wd in gr},
        # what the ground can decode: each satellite's own throughput, a patch paced by the slowest
        # stream it copies from (see g_down_decodable)
        "g_down_analytic": g_dec,
        # the formula summed over the satellites as if independent (counts undecodable data)
        "g_down_analytic_independent": g_sat,
        # both worlds downlink-limited with every satellite equally loaded: the mean-bpp ratio
        "g_down_balanced_ideal": bpp_b / bpp_d - 1.0,
        "copies_from": deps,
        # the paper's formula on the group's mean t and bpp (biased when bpp differs between satellites)
        "g_down_analytic_paper": terms.g_down,
        "g_down_regime": terms.regime,
        "per_satellite": {**per_sat, "backlog": backlog},
        "gain_terms_bits_per_day": {"P_B": terms.P_B, "P_D": terms.P_D, "L_B": terms.L_B, "L_D": terms.L_D},
        # decodable raw-equivalent volume a day (a patch counts when the last stream it needs lands)
        "g_down_simulated": (dec_d / dec_b - 1.0) if dec_b > 0 else None,
        # the same counting every delivered bit, decodable or not (what earlier versions reported)
        "g_down_delivered": (per_day_d / per_day_b - 1.0) if per_day_b > 0 else None,
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


FORMULA_KEYS = ("t_baseline_s", "t_dlrc_s", "bpp_baseline", "bpp_dlrc")


def gdown_curves(summary: dict, rates, *, windows_per_day: float, window_s: float) -> dict:
    """G_down against the downlink rate from one mission's measured t, bpp and decodability structure:
    decodable (the model of g_down_analytic), per satellite as if independent, and the paper's formula."""
    from edgespacecom.gdown import g_down_curve

    per_sat = {k: summary["per_satellite"][k] for k in FORMULA_KEYS}
    common = dict(patch_px=summary["patch"], windows_per_day=windows_per_day, window_s=window_s)
    deps = summary["copies_from"]
    return {
        "decodable": np.array([g_down_decodable(rate_bps=float(x), copies_from=deps, **common, **per_sat)
                               for x in rates]),
        "independent": np.array([g_down_per_satellite(rate_bps=float(x), raw_bits_per_pixel=24, **common, **per_sat)
                                 for x in rates]),
        "paper": g_down_curve(rates, t_baseline_s=summary["time_per_patch_s"]["baseline"],
                              t_dlrc_s=summary["time_per_patch_s"]["dlrc"], bpp_baseline=summary["bpp_baseline"],
                              bpp_dlrc=summary["bpp_dlrc"], raw_bits_per_pixel=24, **common),
    }


def gdown_figure(summary: dict):
    """G_down over the downlink rate (analytic, this run's t and bpp) with the simulated point (Figure A2)."""
    plt = _plt()
    d = summary["downlink"]
    x0 = d["rate_bps"]
    rates = np.logspace(np.log10(x0) - 3, np.log10(x0) + 3, 200)
    curves = gdown_curves(summary, rates, windows_per_day=d["windows_per_day"], window_s=d["window_s"])
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(rates / 1e6, 100 * curves["decodable"], label="decodable (model)")
    ax.plot(rates / 1e6, 100 * curves["independent"], "--", label="per satellite, counting undecodable data")
    ax.plot(rates / 1e6, 100 * curves["paper"], ":", label="paper's formula on mean t, bpp")
    if summary["g_down_simulated"] is not None:
        ax.plot([x0 / 1e6], [100 * summary["g_down_simulated"]], "o", label="simulated, decodable")
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
            f"G_down (decodable) simulated "
            f"{'n/a' if s['g_down_simulated'] is None else format(100 * s['g_down_simulated'], '+.1f') + ' %'}, "
            f"analytic {100 * s['g_down_analytic']:+.1f} % (paper's formula on means "
            f"{100 * s['g_down_analytic_paper']:+.1f} %, {s['g_down_regime']}; balanced ideal "
            f"{100 * s['g_down_balanced_ideal']:+.1f} %); priority {s['priority']}, schedule {s['schedule']}; "
            f"compute model: {s['compute_model']['profile']} ×{s['compute_model']['device_factor']:g}")
    return (f"{s['name']}: {s['model']} λ={s['lambda']}, {s['satellites']} satellites, "
            f"{s['rounds_simulated']} rounds ({s['capture']})\n" + pd.DataFrame(rows).to_string(index=False) + "\n" + tail)


def sweep_figures(table: pd.DataFrame, keys: list[str], x: str, out_dir: Path) -> dict:
    """A mission sweep's own figures: Figure A2 when the downlink rate is on the x axis."""
    if x != "ground.rate_bps":
        return {}
    return {"fig_a2_gdown.png": gdown_sweep_figure(table, keys, out_dir)}


def gdown_sweep_figure(table: pd.DataFrame, keys: list[str], out_dir: Path):
    """Figure A2: G_down over the downlink rate, one curve per other setting: the analytic curve
    (dense, from the points' measured t and bpp) and the simulated points."""
    import json

    plt = _plt()

    others = [k for k in keys if k != "ground.rate_bps"]
    fig, ax = plt.subplots(figsize=(10, 4.6))
    groups = table.groupby(others) if others else [((), table)]
    for i, (label, g) in enumerate(groups):
        g = g.sort_values("ground.rate_bps")
        color = f"C{i}"
        tag = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, label if isinstance(label, tuple) else (label,)))
        rates = np.logspace(np.log10(g["ground.rate_bps"].min()), np.log10(g["ground.rate_bps"].max()), 300)
        first = json.loads((out_dir / "points" / g["point"].iloc[0] / "summary.json").read_text())
        curves = gdown_curves(first, rates, windows_per_day=g["downlink.windows_per_day"].iloc[0],
                              window_s=g["downlink.window_s"].iloc[0])
        ax.plot(rates / 1e6, 100 * curves["decodable"], "-", color=color, label=f"decodable (model), {tag}")
        ax.plot(rates / 1e6, 100 * curves["paper"], ":", color=color, label=f"paper's formula on means, {tag}")
        ax.plot(g["ground.rate_bps"] / 1e6, 100 * g["g_down_simulated"], "o", color=color, mfc="none",
                label=f"simulated (decodable), {tag}")
    ax.set_xscale("log")
    ax.set_xlabel("downlink rate x [Mbit/s]")
    ax.set_ylabel("G_down [%]")
    ax.axhline(0, color="gray", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
