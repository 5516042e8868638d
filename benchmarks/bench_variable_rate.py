"""One variable-rate network against a fixed-λ ladder trained at equal cost, on the validation split.

    python benchmarks/bench_variable_rate.py VR.pt FIXED_0.0067.pt FIXED_0.013.pt ... [--out DIR]

``VR.pt`` is a ``bmshj2018-hyperprior-vr`` checkpoint (one network, gain units, its trained λ), the
others ``bmshj2018-hyperprior`` checkpoints, one per λ, trained from the same warm start with, in all,
as many steps as the variable-rate one (the commands are in results/training/variable_rate/README.md).
Every scene of the validation split (NAIP 2009; model selection) and of the test split (reported only),
cropped to multiples of 64, is coded through CompressAI's compress / decompress (every string counted)
by each fixed model, by the variable-rate network at each of its trained λ and half-way between them
in log λ, and by the shipped λ ladder (the state both runs started from, the baseline of this run);
JPEG 2000 (OpenJPEG, MCT on) codes each scene at a ladder of rates. Per split, each curve is the mean
over scenes of bpp and PSNR at each λ; BD-rate (Akima, :func:`dlrc_agents.common.measures.bd_pair`)
of the variable-rate network against the fixed ladder, and of both against the shipped ladder and
against JPEG 2000, is printed and written with every point to ``DIR`` (default
``results/training/variable_rate``): ``points.csv`` and ``summary.json`` (the command, provenance).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_retrained_codec import J2K_RATES, codec_point as point  # noqa: E402  (same folder)
from dlrc_agents.codecs import jpeg2000  # noqa: E402
from dlrc_agents.codecs.registry import at_lambda, load_checkpoint, load_codec  # noqa: E402
from dlrc_agents.common.data import TEST_GLOBS, VALIDATION_GLOBS, read_rgb, scene_names  # noqa: E402
from dlrc_agents.common.measures import bd_pair  # noqa: E402
from dlrc_agents.studies.codec_rd import crop_to_multiple  # noqa: E402
from edgespacecom.outputs import write_json, write_table  # noqa: E402
from edgespacecom.provenance import provenance_of  # noqa: E402


def curves(points: pd.DataFrame) -> dict:
    """{curve: (mean bpp per λ, mean PSNR per λ)} over the scenes of one split, ordered by λ."""
    out = {}
    for name, g in points.groupby("curve"):
        m = g.groupby("lambda")[["bpp", "psnr"]].mean().sort_index()
        out[name] = (m["bpp"].to_numpy(), m["psnr"].to_numpy())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("vr", type=Path)
    ap.add_argument("fixed", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "training" / "variable_rate")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    started = dt.datetime.now(dt.timezone.utc)
    vr = load_checkpoint(args.vr, "bmshj2018-hyperprior-vr")
    trained = list(vr.lambdas)
    between = [math.sqrt(a * b) for a, b in zip(trained, trained[1:])]
    models = [("variable_rate", at_lambda(vr, l)) for l in sorted(trained + between)]
    fixed = sorted((load_checkpoint(p, "bmshj2018-hyperprior") for p in args.fixed), key=lambda c: c.lmbda)
    models += [("fixed_equal_cost", c) for c in fixed]
    models += [("shipped_ladder", load_codec("bmshj2018-hyperprior", lmbda=c.lmbda)) for c in fixed]
    rows, scenes = [], {}
    for split, globs in (("validation", VALIDATION_GLOBS), ("test", TEST_GLOBS)):
        for name, path in scene_names(list(globs)).items():
            scenes[f"{split}:{Path(name).name}"] = path
            image = crop_to_multiple(read_rgb(path))
            for curve, codec in models:
                bpp, psnr = point(codec, image)
                rows.append({"split": split, "scene": Path(name).name, "curve": curve, "lambda": codec.lmbda,
                             "trained_level": curve != "variable_rate" or codec.lmbda in trained, "bpp": bpp,
                             "psnr": psnr})
            for r in J2K_RATES:
                p = jpeg2000.rd_point(image, r, True)
                rows.append({"split": split, "scene": Path(name).name, "curve": "jpeg2000", "lambda": r,
                             "trained_level": True, "bpp": p["bpp"], "psnr": p["psnr"]})
            print(f"{split} {Path(name).name}: coded", flush=True)
    points = pd.DataFrame(rows)
    summary = {"command": "python benchmarks/bench_variable_rate.py " + " ".join(argv or sys.argv[1:]),
               "variable_rate": {"file": args.vr.name, "lambdas": trained, "steps": vr_steps(args.vr)},
               "fixed": [{"file": p.name} for p in args.fixed]}
    for split in ("validation", "test"):
        c = curves(points[points["split"] == split])
        vr_trained = points[(points["split"] == split) & (points["curve"] == "variable_rate") & points["trained_level"]]
        vr_curve = curves(vr_trained)["variable_rate"]
        res = {}
        for label, (a, b) in {"variable_rate_vs_fixed_equal_cost": (c["fixed_equal_cost"], vr_curve),
                              "variable_rate_vs_shipped_ladder": (c["shipped_ladder"], vr_curve),
                              "fixed_equal_cost_vs_shipped_ladder": (c["shipped_ladder"], c["fixed_equal_cost"]),
                              "variable_rate_vs_jpeg2000": (c["jpeg2000"], vr_curve),
                              "fixed_equal_cost_vs_jpeg2000": (c["jpeg2000"], c["fixed_equal_cost"]),
                              "shipped_ladder_vs_jpeg2000": (c["jpeg2000"], c["shipped_ladder"])}.items():
            rate, dist = bd_pair(a[0], a[1], b[0], b[1])
            res[label] = {"bd_rate_pct": rate, "bd_psnr_db": dist}
            print(f"{split:10s} {label:38s} BD-rate {fmt(rate, '%')} BD-PSNR {fmt(dist, ' dB')}")
        res["scenes"] = int(points[points["split"] == split]["scene"].nunique())
        summary[split] = res
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(args.out / "points.csv", points)
    inputs = {f"checkpoint:{p.name}": p for p in [args.vr, *args.fixed]}
    inputs.update(scenes)
    summary["provenance"] = provenance_of({"command": summary["command"]}, inputs, started)
    write_json(args.out / "summary.json", summary)
    print(f"written {args.out}")
    return 0


def vr_steps(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True).get("steps", 0))


def fmt(value, unit: str) -> str:
    return "   n/a" if value is None else f"{value:+7.2f}{unit}"


if __name__ == "__main__":
    sys.exit(main())
