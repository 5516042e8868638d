"""Figure A2 twice: the paper's model of G_down next to the realistic one, from two mission sweeps.

Left, the paper's model (``scenarios/paper_gdown.yaml``, ``priority: fixed``): fixed slots and a fixed
overlap, the serial schedule, every satellite encoding back to back, and G_down from the paper's formula
on the group's mean t and bpp, with the simulated points counted the paper's way (every delivered
bit). Right, the realistic model (``scenarios/geometric_gdown.yaml``): participants and overlap from
the sensors' footprints, the pipelined schedule, each priority policy, and G_down counted as what the
ground can decode (points: simulated; lines: the bottleneck model of it). A band under each panel
names the regime of each point: which term binds for DLRC and for the baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIME_NAMES = {
    "D:downlink B:downlink": "both downlink-limited",
    "D:compute B:downlink": "DLRC compute-limited, baseline downlink-limited",
    "D:compute B:compute": "both compute-limited",
    "D:downlink B:compute": "DLRC downlink-, baseline compute-limited",
    "D:captures B:downlink": "DLRC sends all it captures, baseline downlink-limited",
    "D:captures B:captures": "both send all they capture",
    "D:downlink B:captures": "DLRC downlink-limited, baseline sends all",
}
REGIME_COLOURS = ["#dbe9f6", "#fde0c5", "#e2f0d9", "#f3dcef", "#fff2b3", "#e6e6e6", "#d9d2e9"]


def _regime_band(ax, rates: np.ndarray, regimes: list[str], colours: dict, unit: float) -> None:
    """Shade the x range of each point (between the geometric midpoints to its neighbours) by its regime."""
    order = np.argsort(rates)
    x = np.asarray(rates, float)[order]
    reg = [regimes[i] for i in order]
    edges = np.sqrt(x[:-1] * x[1:]) if len(x) > 1 else np.array([])
    lo = np.concatenate([[x[0] / 1.5], edges])
    hi = np.concatenate([edges, [x[-1] * 1.5]])
    for a, b, r in zip(lo, hi, reg):
        ax.axvspan(a / unit, b / unit, ymin=0.0, ymax=0.05, color=colours[r], lw=0)


def figure_a2_twice(paper: pd.DataFrame, realistic: pd.DataFrame):
    """The two panels from the two sweeps' tables (``sweep.csv``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    regimes = sorted(set(paper["g_down_regime"]) | set(realistic["g_down_regime"]))
    colours = {r: REGIME_COLOURS[i % len(REGIME_COLOURS)] for i, r in enumerate(regimes)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), sharey=False)

    fixed = paper[paper["dlrc.priority"] == "fixed"] if "dlrc.priority" in paper else paper
    key = "ground.downlink.windows_per_day"
    for i, (nw, g) in enumerate(fixed.groupby(key) if key in fixed else [(None, fixed)]):
        g = g.sort_values("ground.rate_bps")
        tag = f"N_w = {nw:g}/day" if nw is not None else ""
        left.plot(g["ground.rate_bps"] / 1e6, 100 * g["g_down_analytic_paper"], "-", color=f"C{i}",
                  label=f"paper's formula on means, {tag}")
        left.plot(g["ground.rate_bps"] / 1e6, 100 * g["g_down_delivered"], "o", mfc="none", color=f"C{i}",
                  label=f"simulated, every delivered bit, {tag}")
        if i == 0:
            _regime_band(left, g["ground.rate_bps"].to_numpy(), list(g["g_down_regime"]), colours, 1e6)
    left.set_title("Paper's model: fixed slots and o_exp, fixed priority, serial,\n"
                   "continuous capture, delivered bits counted (band: the first N_w)", fontsize=9)

    for i, (policy, g) in enumerate(realistic.groupby("dlrc.priority")):
        g = g.sort_values("ground.rate_bps")
        right.plot(g["ground.rate_bps"], 100 * g["g_down_simulated"], "o", color=f"C{i + 2}",
                   label=f"simulated, decodable, priority {policy}")
        right.plot(g["ground.rate_bps"], 100 * g["g_down_analytic"], "--", color=f"C{i + 2}",
                   label=f"bottleneck model, priority {policy}")
        if i == 0:
            _regime_band(right, g["ground.rate_bps"].to_numpy(), list(g["g_down_regime"]), colours, 1.0)
    ideal = 100 * realistic["g_down_balanced_ideal"].mean()
    right.axhline(ideal, color="gray", ls=":", lw=1, label=f"balanced ideal (mean-bpp ratio − 1), {ideal:+.0f} %")
    right.set_title("Realistic: participants and overlap from the footprints,\n"
                    "pipelined, decodable accounting, per priority policy", fontsize=9)

    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("downlink rate x [Mbit/s]" if ax is left
                      else "the target's share of each satellite's downlink x [bit/s]")
        ax.set_ylabel("G_down [%]")
        ax.axhline(0, color="gray", lw=0.8)
        ax.grid(alpha=0.3)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo - 0.12 * (hi - lo), hi + 0.05 * (hi - lo))  # room for the regime band below the data
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    fig.legend(handles=[Patch(color=colours[r], label=REGIME_NAMES.get(r, r)) for r in regimes],
               loc="lower center", ncol=min(4, len(regimes)), fontsize=7, frameon=False, title="regime (band)",
               title_fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def compare_command(args) -> int:
    from edgespacecom.outputs import write_figure, write_table

    tables = {}
    for name in ("paper", "realistic"):
        csv = getattr(args, name) / "sweep.csv"
        if not csv.is_file():
            raise FileNotFoundError(f"{name}: {csv} does not exist (run the sweep first)")
        tables[name] = pd.read_csv(csv)
    write_figure(args.out, figure_a2_twice(tables["paper"], tables["realistic"]))
    cols = ["ground.rate_bps", "ground.downlink.windows_per_day", "dlrc.priority", "g_down_regime",
            "g_down_simulated", "g_down_analytic", "g_down_delivered", "g_down_analytic_paper",
            "g_down_balanced_ideal"]
    both = pd.concat([t.reindex(columns=cols).assign(model=name) for name, t in tables.items()], ignore_index=True)
    write_table(args.out.with_suffix(".csv"), both[["model", *cols]])
    print(f"figure written to {args.out} (table: {args.out.with_suffix('.csv')})")
    return 0
