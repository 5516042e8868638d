"""Print the Markdown tables of docs/results.md's segmentation section from the run's tables.

    python tools/segmentation_tables.py [RUN_DIR]     (default: results/downstream_segmentation/)

Reads ``segmentation.csv`` (Table 1 and Figure 2 analogs), ``segmentation_joint.csv`` (joint training
and its controls) and ``downstream.csv`` (the NDWI threshold); every number in those tables comes from
them. JPEG 2000's F1+ at a learned point's rate is interpolated in log-rate, as the R–D tables are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.studies.segmentation import interpolate_log_bpp  # noqa: E402

BACKBONES = {"mobilenet_v2": "MobileNetV2", "resnet34": "ResNet34"}
CODECS = {"bmshj2018-hyperprior": "BMSHJ", "cheng2020-gmm": "cheng2020-gmm"}


def table1(seg: pd.DataFrame) -> str:
    out = ["| task | bands | backbone | F1+ | macro F1 | best step / trained |", "|---|---|---|---|---|---|"]
    for (task, bb), r in seg[seg.codec == "uncompressed"].set_index(["task", "backbone"]).iterrows():
        out.append(f"| {task} | {int(r.bands)} | {BACKBONES.get(bb, bb)} | {r.f1_pos:.3f} | {r.f1_macro:.3f} | "
                   f"{int(r.best_step)} / {int(r.steps_trained)} |")
    return "\n".join(out)


def figure2(seg: pd.DataFrame) -> str:
    out = ["| task (backbone; uncompressed F1+ / macro) | JPEG 2000 bits per sample → F1+ | learned: bits per sample → F1+ (JPEG 2000 there, log-rate) |",
           "|---|---|---|"]
    for task, g in seg.groupby("task", sort=False):
        coded = g[g.codec != "uncompressed"]
        if coded.empty:
            continue
        bb = coded.backbone.iloc[0]
        raw = g[(g.codec == "uncompressed") & (g.backbone == bb)].iloc[0]
        j2k = coded[coded.codec == "jpeg2000"].sort_values("bits_per_sample")
        j = ", ".join(f"{r.bits_per_sample:.3f} → {r.f1_pos:.3f}" for r in j2k.itertuples())
        learned = []
        for r in coded[coded.codec != "jpeg2000"].sort_values(["codec", "bits_per_sample"]).itertuples():
            at = interpolate_log_bpp(list(zip(j2k.bits_per_sample, j2k.f1_pos)), r.bits_per_sample)
            there = f" ({at:.3f})" if at is not None else " (outside JPEG 2000's rates)"
            learned.append(f"{CODECS.get(r.codec, r.codec)} λ {r.lmbda:g}: "
                           f"{r.bits_per_sample:.3f} → {r.f1_pos:.3f}{there}")
        out.append(f"| {task} ({BACKBONES.get(bb, bb)}; {raw.f1_pos:.3f} / {raw.f1_macro:.3f}) | {j} | "
                   f"{'; '.join(learned) or 'none'} |")
    return "\n".join(out)


def joint(seg: pd.DataFrame, jt: pd.DataFrame) -> str:
    out = ["| run | bpp | PSNR [dB] | F1+ | macro F1 | validation loss start → best (step) |", "|---|---|---|---|---|---|"]
    for r in jt.itertuples():
        base = seg[(seg.task == r.task) & (seg.backbone == r.backbone) & (seg.codec == r.codec)
                   & (seg.lmbda == r.lmbda)]
        if not base.empty and r.Index == 0:
            b = base.iloc[0]
            out.append(f"| standalone (λ = {b.lmbda:g}) | {b.bpp:.4f} | {b.psnr:.2f} | {b.f1_pos:.3f} | "
                       f"{b.f1_macro:.3f} | — |")
        frozen = bool(getattr(r, "freeze_codec", False)) and str(getattr(r, "freeze_codec")) not in ("False", "nan")
        name = ("control, codec frozen (γ = 0; only the U-Net trains)" if frozen else
                "control, γ = 0 (codec tuned on its R–D loss alone)" if r.gamma == 0 else f"joint, γ = {r.gamma:g}")
        out.append(f"| {name} | {r.bpp:.4f} | {r.psnr:.2f} | {r.f1_pos:.3f} | {r.f1_macro:.3f} | "
                   f"{r.val_loss_start:.3f} → {r.val_loss:.3f} ({int(r.best_step)}) |")
    return "\n".join(out)


def ndwi(ds: pd.DataFrame) -> str:
    out = ["| codec | bits per sample | PSNR [dB] | F1+ | macro F1 |", "|---|---|---|---|---|"]
    for r in ds.itertuples():
        bps = "—" if not np.isfinite(r.bits_per_sample) else f"{r.bits_per_sample:.3f}"
        name = CODECS.get(r.codec, r.codec) + (f" λ {r.lmbda:g}" if np.isfinite(r.lmbda) else "")
        out.append(f"| {name} | {bps} | {r.psnr:.2f} | {r.f1_pos:.3f} | {r.f1_macro:.3f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path("results/downstream_segmentation")
    def read(name):  # 'lambda' is a Python keyword: itertuples would rename it
        return pd.read_csv(root / name).rename(columns={"lambda": "lmbda"})

    seg = read("segmentation.csv")
    print("Table 1 analog (uncompressed, test split)\n\n" + table1(seg) + "\n")
    print("Figure 2 analog (test split, every byte)\n\n" + figure2(seg) + "\n")
    if (root / "segmentation_joint.csv").is_file():
        print("Joint training\n\n" + joint(seg, read("segmentation_joint.csv")) + "\n")
    if (root / "downstream.csv").is_file():
        print("NDWI threshold (water_s2 test rows)\n\n" + ndwi(read("downstream.csv")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
