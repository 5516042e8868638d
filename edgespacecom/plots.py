"""Figures of the sync study (matplotlib, Agg backend, deterministic PNG bytes)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .config import LinkConfig  # noqa: E402
from .links import link_rate_bps, noise_power_dbm  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "edgespacecom", "figure.dpi": 100})


def sync_time_figure(rounds: pd.DataFrame, title: str = ""):
    """Paper Figure 10: T_sync over the window per payload, mean and max across participants."""
    payloads = sorted(rounds["payload_kib"].unique())
    fig, axes = plt.subplots(len(payloads), 1, figsize=(9, 2.1 * len(payloads) + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, payload in zip(axes, payloads):
        sel = rounds[rounds["payload_kib"] == payload]
        t = pd.to_datetime(sel["time_utc"])
        ax.plot(t, sel["t_sync_max_s"] * 1e3, lw=0.9, color="tab:red", label="max over satellites")
        ax.plot(t, sel["t_sync_mean_s"] * 1e3, lw=0.9, color="tab:blue", label="mean over satellites")
        ax.set_ylabel("T_sync [ms]")
        ax.set_title(f"payload {payload:g} KiB", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=2)
    axes[-1].set_xlabel("time [UTC]")
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def link_budget_figure(link: LinkConfig, d_max_km: float):
    """Effective ISL rate against distance for both noise models."""
    d = np.linspace(50.0, max(d_max_km * 1.2, 100.0), 400)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for model, style in (("thermal", "-"), ("paper_as_printed", "--")):
        cfg = link.model_copy(update={"noise_model": model})
        noise = noise_power_dbm(cfg.noise_temperature_k, cfg.bandwidth_mhz * 1e6, model)
        ax.semilogy(d, link_rate_bps(d, cfg) / 1e6, style, label=f"{model} (N = {noise:.2f} dBm)")
    ax.axvline(d_max_km, color="grey", lw=0.8, ls=":")
    ax.text(d_max_km, ax.get_ylim()[0] * 1.3, " d_max", color="grey", fontsize=8)
    ax.set_xlabel("ISL distance [km]")
    ax.set_ylabel("effective rate [Mbit/s]")
    ax.set_title(
        f"P_t {link.tx_power_dbm:g} dBm, G {link.tx_gain_dbi:g}+{link.rx_gain_dbi:g} dBi, "
        f"{link.frequency_ghz:g} GHz, B {link.bandwidth_mhz:g} MHz, δ {link.delta:g}",
        fontsize=9,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def topology_figure(topology: pd.DataFrame):
    """Link setups/teardowns (all ISLs) and Ω_topo per sample, constellation-wide and among participants."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    t = pd.to_datetime(topology["time_utc"])
    ax1.plot(t, topology["link_setups"].where(topology["link_setups"] >= 0), lw=0.8, label="setups")
    ax1.plot(t, topology["link_teardowns"].where(topology["link_teardowns"] >= 0), lw=0.8, label="teardowns")
    ax1.set_ylabel("events / sample")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.plot(t, topology["omega_topo_s"], lw=0.8, color="tab:purple", label="all ISLs")
    if "omega_topo_participants_s" in topology:  # one region (many regions: all ISLs only)
        ax2.plot(t, topology["omega_topo_participants_s"], lw=0.8, color="tab:green", label="participants' links")
    ax2.set_yscale("symlog", linthresh=1e-3)
    ax2.set_ylabel("Ω_topo [s]")
    ax2.legend(fontsize=8)
    ax2.set_xlabel("time [UTC]")
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def regions_figure(per_region: pd.DataFrame, payloads):
    """Each region's mean slowdown (its T_round with the others sharing the ISLs over its T_round
    alone) on a map, for the largest payload, and against the smallest payload's."""
    big, small = f"{max(payloads):g}", f"{min(payloads):g}"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    sc = ax1.scatter(per_region["lon_deg"], per_region["lat_deg"], c=per_region[f"slowdown_mean_{big}"], cmap="viridis",
                     s=18)
    fig.colorbar(sc, ax=ax1, label=f"mean T_round / T_round alone ({big} KiB)")
    ax1.set_xlim(-180, 180)
    ax1.set_ylim(-90, 90)
    ax1.set_xlabel("longitude [deg]")
    ax1.set_ylabel("latitude [deg]")
    ax1.grid(alpha=0.3)
    ax2.scatter(per_region[f"t_round_alone_mean_s_{big}"] * 1e3, per_region[f"t_round_mean_s_{big}"] * 1e3, s=12,
                label=f"{big} KiB")
    if small != big:
        ax2.scatter(per_region[f"t_round_alone_mean_s_{small}"] * 1e3, per_region[f"t_round_mean_s_{small}"] * 1e3, s=12,
                    label=f"{small} KiB")
    lim = [0, float(np.nanmax(per_region[f"t_round_mean_s_{big}"])) * 1.05e3]
    ax2.plot(lim, lim, color="grey", lw=0.8, ls=":")
    ax2.set_xlabel("mean T_round alone [ms]")
    ax2.set_ylabel("mean T_round, shared ISLs [ms]")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig
