"""Training curves of the shipped weights from their logs (run from the repository root):

    .venv/bin/python results/training/plot.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for log in sorted(HERE.glob("*.csv")):
    d = pd.read_csv(log, header=None, names=["step", "loss", "bpp", "psnr", "aux"])
    smooth = d.rolling(100, min_periods=20).mean()
    axes[0].plot(d["step"], smooth["psnr"], label=log.stem)
    axes[1].plot(d["step"], smooth["bpp"], label=log.stem)
for ax, label in zip(axes, ("training PSNR [dB] (100-step mean)", "training bpp (100-step mean)")):
    ax.set_xlabel("step (batch 8 × 128²)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(HERE / "training_curves.png", dpi=120)
