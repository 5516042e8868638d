"""A retrained λ ladder against the shipped one, both against JPEG 2000: BD-rate on the validation and
the test split.

    python benchmarks/bench_candidate_ladder.py [--arch bmshj2018-hyperprior] [--candidates DIR]

``DIR`` (default ``results/training/candidates``) holds ``<arch>_lambda<λ>_continued.pt`` for every λ of
the shipped ladder (0.0067, 0.013, 0.025, 0.0483). For each split and scene (whole scenes cropped to
multiples of 64): every λ of both ladders through CompressAI's compress / decompress (every string
counted), and JPEG 2000 (OpenJPEG, MCT on) at a ladder of rates, all in this run. Prints each ladder's
BD-rate and BD-PSNR against JPEG 2000 (Akima, the same function the codec_rd kind uses), per scene and
their mean, and the candidate's change. The validation split (NAIP 2009) decides; the test split only
reports. Writes ``results/training/ladder_<arch>.json`` with the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_retrained_codec import J2K_RATES, codec_point  # noqa: E402
from dlrc_agents.codecs.registry import load_checkpoint, load_codec  # noqa: E402
from dlrc_agents.common.data import TEST_GLOBS, VALIDATION_GLOBS, read_rgb, scene_names  # noqa: E402
from dlrc_agents.common.measures import bd_pair  # noqa: E402
from dlrc_agents.studies.codec_rd import crop_to_multiple  # noqa: E402
from edgespacecom.outputs import write_json  # noqa: E402

LADDER = (0.0067, 0.013, 0.025, 0.0483)


def main(argv=None) -> int:
    from dlrc_agents.codecs import jpeg2000

    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="bmshj2018-hyperprior")
    ap.add_argument("--candidates", type=Path, default=ROOT / "results" / "training" / "candidates")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = {l: args.candidates / f"{args.arch}_lambda{l:g}_continued.pt" for l in LADDER}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        print(f"bench_candidate_ladder: missing candidate checkpoint(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    ladders = {"shipped": {l: load_codec(args.arch, lmbda=l) for l in LADDER},
               "candidate": {l: load_checkpoint(files[l], args.arch) for l in LADDER}}
    rows = []
    for split, globs in (("validation", VALIDATION_GLOBS), ("test", TEST_GLOBS)):
        for name, path in scene_names(list(globs)).items():
            image = crop_to_multiple(read_rgb(path))
            j2k = sorted((p["bpp"], p["psnr"]) for p in (jpeg2000.rd_point(image, r, True) for r in J2K_RATES))
            row = {"split": split, "scene": Path(name).name, "jpeg2000": j2k}
            for label, ladder in ladders.items():
                points = [codec_point(codec, image) for codec in ladder.values()]
                rate, dist = bd_pair([b for b, _ in j2k], [p for _, p in j2k], [b for b, _ in points], [p for _, p in points])
                row[label] = {"points": points, "bd_rate_pct": rate, "bd_psnr_db": dist}
            rows.append(row)
            print(f"{split:10s} {row['scene']:40s} BD-rate vs JPEG 2000: shipped {row['shipped']['bd_rate_pct']:+.1f} %, "
                  f"candidate {row['candidate']['bd_rate_pct']:+.1f} %", flush=True)
    summary = {"command": "python benchmarks/bench_candidate_ladder.py " + " ".join(argv or sys.argv[1:]),
               "architecture": args.arch, "lambdas": list(LADDER),
               "shipped": {str(l): c.source for l, c in ladders["shipped"].items()},
               "candidate": {str(l): str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f) for l, f in files.items()},
               "rows": rows}
    for split in ("validation", "test"):
        r = [x for x in rows if x["split"] == split]
        summary[split] = {label: {k: float(np.mean([x[label][k] for x in r if x[label][k] is not None]))
                                  for k in ("bd_rate_pct", "bd_psnr_db")} for label in ladders}
        s = summary[split]
        print(f"{split}: BD-rate vs JPEG 2000 shipped {s['shipped']['bd_rate_pct']:+.1f} % "
              f"({s['shipped']['bd_psnr_db']:+.2f} dB), candidate {s['candidate']['bd_rate_pct']:+.1f} % "
              f"({s['candidate']['bd_psnr_db']:+.2f} dB); change {s['candidate']['bd_rate_pct'] - s['shipped']['bd_rate_pct']:+.1f} points")
    out = ROOT / "results" / "training" / f"ladder_{args.arch}.json"
    write_json(out, summary)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
