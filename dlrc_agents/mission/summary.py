"""A mission's summary (G_down simulated and analytic), its figures and its printed table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edgespacecom.gdown import T_DAY_S, g_down_decodable, g_down_per_satellite, gain_terms

from .decodable import weighted_percentiles
from .ground import delivered_per_day, measured_span

def _latency(values: np.ndarray, weights: np.ndarray) -> dict | None:
    if not len(values):
        return None
    p50, p95 = weighted_percentiles(values, weights)
    return {"p50": p50, "p95": p95, "max": float(values.max())}


def participants_summary(rounds: pd.DataFrame, scenario) -> dict:
    """Who took part and how much they overlapped, over the capture rounds (``capture_rounds.csv``)."""
    stats = lambda col: ({"mean": float(rounds[col].mean()), "min": float(rounds[col].min()),  # noqa: E731
                          "max": float(rounds[col].max())} if len(rounds) else None)
    return {"selection": scenario.participants.selection, "capture_rounds": int(len(rounds)),
            "rounds_alone": int((rounds["N"] < 2).sum()), "N": stats("N"), "o_exp": stats("o_exp"),
            "table": "capture_rounds.csv"}


def losses_summary(scenario, items: pd.DataFrame, ground: dict, mission) -> dict:
    """What the injected losses cost: streams and patches lost per world, and the DLRC rounds the
    ground decoded degraded (positions copied from a lost stream took the model's prediction)."""
    lc = scenario.mission.losses
    slot_of = {int(i): s for s, i in enumerate(mission.flows.participants)}
    lost = items[items["lost"]] if len(items) and "lost" in items else items.iloc[0:0]
    col = lambda d, c: d[c] if c in d else pd.Series(dtype=float)  # noqa: E731
    dl = ground["dlrc"]
    degraded = dl[col(dl, "degraded").astype(bool)] if len(dl) else dl
    intact = dl[~col(dl, "degraded").astype(bool)] if len(dl) else dl
    return {
        "stream_loss_rate": lc.stream_loss_rate,
        "failures": [{"satellite": f.satellite, "at_s": f.at_s,
                      "slot": slot_of.get(f.satellite)}  # None: it never took part
                     for f in lc.failures],
        "streams_lost": {wd: int((lost["world"] == wd).sum()) for wd in ("baseline", "dlrc")},
        "patches_lost": {wd: int(lost.loc[lost["world"] == wd, "rounds"].sum()) for wd in ("baseline", "dlrc")},
        "rounds_with_lost_streams": {wd: int((col(g, "streams_lost") > 0).sum()) for wd, g in ground.items()},
        "rounds_degraded": int(len(degraded)),
        "psnr_degraded": float(degraded["psnr"].mean()) if len(degraded) else None,
        "psnr_intact": float(intact["psnr"].mean()) if len(intact) else None,
    }


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
    span_lo, span_s = measured_span(duration_s)
    in_span = table["captured_s"] >= span_lo
    dl, bl = dl_all[in_span[dl_all.index]], bl_all[in_span[bl_all.index]]
    def w(d: pd.DataFrame, col: str) -> float:
        """Per-patch mean of ``col`` over rows where it is defined (NaN: none is)."""
        ok = d[col].notna() & (d["rounds"] > 0)
        return float(np.average(d.loc[ok, col], weights=d.loc[ok, "rounds"])) if ok.any() else float("nan")

    pixels = scenario.overlap.patch**2
    slots = sorted(table["slot"].unique())
    paced_by_captures = scenario.mission.capture == "rounds"

    def period(d: pd.DataFrame, count: int = 1) -> float:
        """Production period per patch [s] of rows ``d`` (``count`` satellites): the on-board time, or,
        when captures come at set times, the span over the patches captured, whichever is longer."""
        t = w(d, "time_per_patch_s")
        if not paced_by_captures:
            return t
        n = float(d["rounds"].sum())
        return max(t, count * span_s / n) if n else float("inf")

    t_b, t_d = period(bl, len(slots)), period(dl, len(slots))
    bpp_b, bpp_d = w(bl, "bits_per_patch") / pixels, w(dl, "bits_per_patch") / pixels
    windows = g.downlink.windows_per_day if g.downlink else contact_stats["windows_per_day"]
    window_s = g.downlink.window_s if g.downlink else contact_stats["window_s_mean"]
    terms = gain_terms(patch_px=scenario.overlap.patch, raw_bits_per_pixel=g.raw_bits_per_pixel, t_baseline_s=t_b,
                       t_dlrc_s=t_d, bpp_baseline=bpp_b, bpp_dlrc=bpp_d, windows_per_day=windows,
                       window_s=window_s, rate_bps=g.rate_bps)
    bpp_of = lambda d, mean: (w(d, "bits_per_patch") / pixels) if len(d) else mean  # noqa: E731
    per_sat = {
        "t_baseline_s": [period(bl[bl["slot"] == s]) for s in slots],
        "t_dlrc_s": [period(dl[dl["slot"] == s]) for s in slots],
        "bpp_baseline": [bpp_of(bl[bl["slot"] == s], bpp_b) for s in slots],
        "bpp_dlrc": [bpp_of(dl[dl["slot"] == s], bpp_d) for s in slots],
    }
    g_sat = g_down_per_satellite(patch_px=scenario.overlap.patch, raw_bits_per_pixel=g.raw_bits_per_pixel,
                                 windows_per_day=windows, window_s=window_s, rate_bps=g.rate_bps, **per_sat)
    per_day_b, basis = delivered_per_day(deliveries, "baseline", duration_s)
    per_day_d, _ = delivered_per_day(deliveries, "dlrc", duration_s)
    items, latencies = decodable
    per_patch = (items["raw_equivalent_bits"] / items["rounds"]) if len(items) else pd.Series(dtype=float)
    two_days = span_lo > 0.0

    def decodable_per_day(world: str) -> float:
        if not len(items):
            return 0.0
        mine = items["world"] == world
        count = items["patches_decodable_in_span"] if two_days else items["patches_decodable"]
        total = float((count * per_patch)[mine].sum())
        return total if two_days else total * T_DAY_S / duration_s

    dec_b, dec_d = decodable_per_day("baseline"), decodable_per_day("dlrc")
    deps = copies_from_counts(dl)
    # each satellite's own contact time a day over the measured span (stations serve them unequally)
    contact = [sum(max(0.0, min(b, duration_s) - max(a, span_lo)) for a, b in mission.plan[s_]) * T_DAY_S / span_s
               for s_ in slots]
    g_dec = g_down_decodable(patch_px=scenario.overlap.patch, windows_per_day=windows, window_s=window_s,
                             rate_bps=g.rate_bps, copies_from=deps, contact_s_per_day=contact, **per_sat)
    delivered = {wd: float(deliveries.loc[deliveries["world"] == wd, "bits"].sum()) for wd in ("baseline", "dlrc")}
    decodable_bits = {wd: float((items["patches_decodable"] * items["bits"] / items["rounds"])[items["world"] == wd]
                                .sum()) if len(items) else 0.0 for wd in delivered}
    backlog = {wd: {"final_bits": [mission.storage[(wd, s_)].bits for s_ in slots],
                    "max_bits": [max(b for _, b in mission.storage[(wd, s_)].history) for s_ in slots]}
               for wd in delivered}
    sync = sync_table["sync_round_s"][np.isfinite(sync_table["sync_round_s"])]
    incomplete = int((~np.isfinite(sync_table["sync_round_s"])).sum())
    gr = {wd: ground[ground["world"] == wd] if len(ground) else ground for wd in ("baseline", "dlrc")}
    return {
        "kind": "mission", "name": scenario.name, "model": scenario.codec.architecture,
        "lambda": work.codec.lmbda, "capture": scenario.mission.capture, "patch": scenario.overlap.patch,
        "satellites": len(slots),
        "rounds_simulated": int(dl_all.groupby("round")["rounds"].first().sum()) if len(dl_all) else 0,
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
        "dlrc_mode": scenario.dlrc.modes()[0],
        # what the satellites send each other over the ISLs per capture round: signatures (copy mode) or
        # tile origins on the grid, and in predict mode the streams the lower-priority satellites decode
        "isl_bytes_per_round": {"mean": float(sync_table["isl_bytes"].mean()),
                                "per_satellite": float((sync_table["isl_bytes"] / sync_table["participants"]).mean())}
        if len(sync_table) else None,
        "predicted_fraction": w(dl, "predicted_fraction") if "predicted_fraction" in dl else None,
        "peer_timeouts": int(dl_all["timed_out"].sum()) if len(dl_all) else 0,
        # on-board time per patch, and the production period the formulas use (the same unless captures
        # come at set times: then one patch per capture)
        "time_per_patch_s": {"baseline": w(bl, "time_per_patch_s"), "dlrc": w(dl, "time_per_patch_s")},
        "production_period_s": {"baseline": t_b, "dlrc": t_d},
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
                                                         *((("peer_decode", "t_peer_decode_s"),)
                                                           if "t_peer_decode_s" in dl else ()),
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
        # which term binds per world: compute (or, when captures come at set times, captures) or downlink
        "g_down_regime": terms.regime.replace("compute", "captures") if paced_by_captures else terms.regime,
        "per_satellite": {**per_sat, "contact_s_per_day": contact, "backlog": backlog},
        "gain_terms_bits_per_day": {"P_B": terms.P_B, "P_D": terms.P_D, "L_B": terms.L_B, "L_D": terms.L_D},
        # decodable raw-equivalent volume a day (a patch counts when the last stream it needs lands)
        "g_down_simulated": (dec_d / dec_b - 1.0) if dec_b > 0 else None,
        # the same counting every delivered bit, decodable or not (what earlier versions reported)
        "g_down_delivered": (per_day_d / per_day_b - 1.0) if per_day_b > 0 else None,
        "losses": losses_summary(scenario, items, gr, mission),
        "duration_s": duration_s,
    }


# ---------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def backlog_figure(backlog: pd.DataFrame, per_slot_max: int = 12):
    """On-board backlog over time, per slot (or, with more than ``per_slot_max`` slots, summed)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    many = backlog["slot"].nunique() > per_slot_max
    for ax, world in zip(axes, ("baseline", "dlrc")):
        mine = backlog[backlog["world"] == world]
        if many:  # the group's total: each slot's step function, summed on the union of change times
            wide = mine.pivot_table(index="t_s", columns="slot", values="bits", aggfunc="last").sort_index().ffill()
            total = wide.fillna(0.0).sum(axis=1)
            ax.step(total.index / 3600, total / 8e6, where="post", lw=1, label=f"all {mine['slot'].nunique()} slots")
        else:
            for slot, g in mine.groupby("slot"):
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

    # a satellite with no capture in the measured span has an infinite period (JSON null)
    per_sat = {k: [np.inf if v is None else v for v in summary["per_satellite"][k]] for k in FORMULA_KEYS}
    period = summary.get("production_period_s", summary["time_per_patch_s"])  # results made before it existed
    common = dict(patch_px=summary["patch"], windows_per_day=windows_per_day, window_s=window_s)
    deps = summary["copies_from"]
    return {
        "decodable": np.array([g_down_decodable(rate_bps=float(x), copies_from=deps, **common, **per_sat,
                                                contact_s_per_day=summary["per_satellite"].get("contact_s_per_day"))
                               for x in rates]),
        "independent": np.array([g_down_per_satellite(rate_bps=float(x), raw_bits_per_pixel=24, **common, **per_sat)
                                 for x in rates]),
        "paper": g_down_curve(rates, t_baseline_s=period["baseline"],
                              t_dlrc_s=period["dlrc"], bpp_baseline=summary["bpp_baseline"],
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


def why_line(s: dict) -> str:
    """One line saying why DLRC gains or loses in this run's regime."""
    f = lambda v: "n/a" if v is None else f"{100 * v:+.0f} %"  # noqa: E731
    b, d = s["bpp_baseline"], s["bpp_dlrc"]
    regime = s["g_down_regime"]
    t = s.get("production_period_s", s["time_per_patch_s"])
    if regime == "D:downlink B:downlink":
        return (f"why: both worlds are downlink-limited, so DLRC gains what it saves per patch ({b:.3f} → {d:.3f} bpp, "
                f"{f(s['g_down_balanced_ideal'])} if every satellite carried the same load); it gets "
                f"{f(s['g_down_simulated'])} because a patch decodes only once every stream it copies from has "
                f"landed, and the most loaded satellite's downlink paces those")
    if regime == "D:compute B:downlink":
        return (f"why: the baseline is downlink-limited but DLRC is compute-limited ({1e3 * t['dlrc']:.1f} ms a patch "
                f"against {1e3 * t['baseline']:.1f} ms): it makes fewer patches than the baseline can send, whatever "
                f"it saves per patch ({b:.3f} → {d:.3f} bpp)")
    if "captures" in regime and "downlink" not in regime:
        return (f"why: both worlds send everything they capture, so the ground gets the same patches "
                f"({f(s['g_down_simulated'])}); DLRC's gain is the downlink it leaves free ({b:.3f} → {d:.3f} bpp, "
                f"{100 * (1 - d / b):.0f} % fewer bits)")
    if regime == "D:compute B:compute":
        return (f"why: neither world fills its downlink, so each delivers what it can compute and G_down is the "
                f"production ratio ({1e3 * t['baseline']:.1f} against {1e3 * t['dlrc']:.1f} ms a patch)")
    return f"why: regime {regime}: DLRC {b:.3f} → {d:.3f} bpp"


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
    part = s.get("participants") or {}
    if part.get("selection") == "geometric":
        tail += (f"\nparticipants from the sensor's geometry: {part['capture_rounds']} captures, N {part['N']['min']:.0f}"
                 f"–{part['N']['max']:.0f} (mean {part['N']['mean']:.2f}), o_exp mean {part['o_exp']['mean']:.2f}, "
                 f"{part['rounds_alone']} by one satellite alone")
    loss = s.get("losses") or {}
    if loss.get("streams_lost", {}).get("dlrc") or loss.get("failures"):
        tail += (f"\nlosses: {loss['streams_lost']['dlrc']} DLRC and {loss['streams_lost']['baseline']} baseline streams "
                 f"lost; {loss['rounds_degraded']} DLRC rounds decoded degraded (PSNR "
                 f"{'n/a' if loss['psnr_degraded'] is None else format(loss['psnr_degraded'], '.2f')} dB)")
    tail += "\n" + why_line(s)
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
