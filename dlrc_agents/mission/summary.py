"""A mission's summary (G_down simulated and analytic), its figures and its printed table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edgespacecom.gdown import g_down_per_satellite, gain_terms

from .ground import delivered_per_day

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
    per_day_b, basis = delivered_per_day(deliveries, "baseline", duration_s)
    per_day_d, _ = delivered_per_day(deliveries, "dlrc", duration_s)
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


def sweep_figures(table: pd.DataFrame, keys: list[str], x: str, out_dir: Path) -> dict:
    """A mission sweep's own figures: Figure A2 when the downlink rate is on the x axis."""
    if x != "ground.rate_bps":
        return {}
    return {"fig_a2_gdown.png": gdown_sweep_figure(table, keys, out_dir)}


def gdown_sweep_figure(table: pd.DataFrame, keys: list[str], out_dir: Path):
    """Figure A2: G_down over the downlink rate, one curve per other setting: the analytic curve
    (dense, from the points' measured t and bpp) and the simulated points."""
    import json

    from edgespacecom.gdown import g_down_curve, g_down_per_satellite

    plt = _plt()

    others = [k for k in keys if k != "ground.rate_bps"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    groups = table.groupby(others) if others else [((), table)]
    for i, (label, g) in enumerate(groups):
        g = g.sort_values("ground.rate_bps")
        color = f"C{i}"
        tag = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, label if isinstance(label, tuple) else (label,)))
        rates = np.logspace(np.log10(g["ground.rate_bps"].min()), np.log10(g["ground.rate_bps"].max()), 300)
        first = json.loads((out_dir / "points" / g["point"].iloc[0] / "summary.json").read_text())
        common = dict(patch_px=int(g["patch"].iloc[0]), raw_bits_per_pixel=24,
                      windows_per_day=g["downlink.windows_per_day"].iloc[0], window_s=g["downlink.window_s"].iloc[0])
        per_sat = [g_down_per_satellite(rate_bps=float(x), **common, **first["per_satellite"]) for x in rates]
        paper = g_down_curve(rates, t_baseline_s=first["time_per_patch_s"]["baseline"],
                             t_dlrc_s=first["time_per_patch_s"]["dlrc"], bpp_baseline=first["bpp_baseline"],
                             bpp_dlrc=first["bpp_dlrc"], **common)
        ax.plot(rates / 1e6, 100 * np.array(per_sat), "-", color=color, label=f"formula per satellite, {tag}")
        ax.plot(rates / 1e6, 100 * paper, ":", color=color, label=f"paper's formula on means, {tag}")
        ax.plot(g["ground.rate_bps"] / 1e6, 100 * g["g_down_simulated"], "o", color=color, mfc="none",
                label=f"simulated, {tag}")
    ax.set_xscale("log")
    ax.set_xlabel("downlink rate x [Mbit/s]")
    ax.set_ylabel("G_down [%]")
    ax.axhline(0, color="gray", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
