"""The quality guard's trade on revisits, from the sweep of scenarios/revisit_naip_guard.yaml.

For every (k, norm_guard) point and λ: DLRC's bpp saving σ and ΔPSNR δ over the codec alone (all
date gaps pooled), and the break-even the codec itself offers: between its two λ it trades
s = ΔPSNR / Δln(bpp) dB per log-bpp, so cutting bpp by σ with a coarser λ costs s·ln(1 − σ) dB.
A DLRC setting pays when δ > s·ln(1 − σ); ``net_db`` = δ − s·ln(1 − σ) is what it is worth in
PSNR at equal bpp (positive: better than simply coding coarser).

Run from the repository root after the sweep:  python results/revisit_naip_guard/trade.py
Writes trade.csv and trade.png next to this file.
"""

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows = []
    for point in sorted((HERE / "points").iterdir()):
        summary = json.loads((point / "summary.json").read_text())
        cfg = yaml.safe_load((point / "config.resolved.yaml").read_text())
        pooled = {r["lambda"]: r for r in summary["results_all_gaps"]}
        (l1, r1), (l2, r2) = sorted(pooled.items())[:2]
        slope = (r2["baseline"]["psnr"] - r1["baseline"]["psnr"]) / math.log(r2["baseline"]["bpp_total"] / r1["baseline"]["bpp_total"])
        for lmbda, r in pooled.items():
            saving = r["bpp_reduction"]
            rows.append({"rounds": cfg["dlrc"]["rounds"], "norm_guard": cfg["dlrc"].get("norm_guard"),
                         "lambda": lmbda, "bpp_reduction": saving, "delta_psnr": r["delta_psnr"],
                         "copied_fraction": r["copied_fraction"], "copied_inexact_fraction": r["copied_inexact_fraction"],
                         "codec_slope_db_per_ln_bpp": slope, "break_even_db": slope * math.log(1 - saving),
                         "net_db": r["delta_psnr"] - slope * math.log(1 - saving), "decode_exact": r["decode_exact"],
                         "patches": r["patches"]})
    table = pd.DataFrame(rows).sort_values(["lambda", "norm_guard", "rounds"], na_position="first")
    table.to_csv(HERE / "trade.csv", index=False, float_format="%.6g")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (lmbda, t) in zip(axes, table.groupby("lambda")):
        for guard, g in t.groupby(t["norm_guard"].fillna(0.0)):
            ax.plot(100 * g["bpp_reduction"], g["delta_psnr"], "o-", label=f"norm_guard {guard:g}" if guard else "no guard")
            for _, r in g.iterrows():
                ax.annotate(f"k={r['rounds']}", (100 * r["bpp_reduction"], r["delta_psnr"]), fontsize=6)
        s = t["codec_slope_db_per_ln_bpp"].iloc[0]
        xs = [i / 10 for i in range(0, int(10 * max(1.0, 100 * t["bpp_reduction"].max())) + 1)]
        ax.plot(xs, [s * math.log(1 - x / 100) for x in xs], "k--", label="break-even: codec alone at coarser λ")
        ax.set_xlabel("bpp saving [%]")
        ax.set_title(f"λ = {lmbda:g}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ΔPSNR, DLRC − codec alone [dB]")
    axes[0].legend(fontsize=7)
    fig.suptitle("NAIP revisits 2009–2018 (validation side), shared grid: what fewer rounds and the norm guard buy", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "trade.png", dpi=150)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
