"""A retrained codec against the shipped one and JPEG 2000, on the validation and the test split.

    python benchmarks/bench_retrained_codec.py CANDIDATE.pt [--arch bmshj2018-hyperprior --lambda 0.0067]

For each split and scene (whole scenes cropped to multiples of 64): bpp and PSNR of the shipped
checkpoint and of the candidate (CompressAI's compress / decompress, every string counted), and
JPEG 2000's PSNR at each one's rate (OpenJPEG, MCT on, a ladder of rates, interpolated linearly in
log-rate). Prints the candidate's gain over the shipped model and both models' ΔPSNR against
JPEG 2000, measured in this run; the validation split (NAIP 2009) decides whether the candidate is
shipped, the test split only reports. Writes ``results/training/retrained_<arch>_lambda<λ>.json``
with the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.studies.codec_rd import crop_to_multiple  # noqa: E402
from dlrc_agents.codecs.registry import load_checkpoint, load_codec  # noqa: E402
from dlrc_agents.common.data import TEST_GLOBS, VALIDATION_GLOBS, read_rgb, scene_names  # noqa: E402
from dlrc_agents.common.imaging import quality, to_tensor  # noqa: E402
from edgespacecom.outputs import write_json  # noqa: E402

J2K_RATES = (0.05, 0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)


@torch.no_grad()
def codec_point(codec, image: np.ndarray) -> tuple[float, float]:
    x = to_tensor(image)
    out = codec.model.compress(x)
    nbytes = sum(len(s[0]) for s in out["strings"])
    x_hat = codec.model.decompress(out["strings"], out["shape"])["x_hat"]
    return 8 * nbytes / (image.shape[0] * image.shape[1]), quality(x, x_hat)[0]


def jpeg2000_at(image: np.ndarray, bpp: float, ladder: list) -> float:
    rates, psnrs = zip(*ladder)
    return float(np.interp(np.log(bpp), np.log(rates), psnrs))


def main(argv=None) -> int:
    from dlrc_agents.codecs import jpeg2000

    ap = argparse.ArgumentParser()
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--arch", default="bmshj2018-hyperprior")
    ap.add_argument("--lambda", dest="lmbda", type=float, default=0.0067)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    shipped = load_codec(args.arch, lmbda=args.lmbda)
    candidate = load_checkpoint(args.candidate, args.arch)
    rows = []
    for split, globs in (("validation", VALIDATION_GLOBS), ("test", TEST_GLOBS)):
        for name, path in scene_names(list(globs)).items():
            image = crop_to_multiple(read_rgb(path))
            ladder = []
            for r in J2K_RATES:
                p = jpeg2000.rd_point(image, r, True)
                ladder.append((p["bpp"], p["psnr"]))
            ladder.sort()
            row = {"split": split, "scene": Path(name).name}
            for label, codec in (("shipped", shipped), ("candidate", candidate)):
                bpp, psnr = codec_point(codec, image)
                row.update({f"{label}_bpp": bpp, f"{label}_psnr": psnr,
                            f"{label}_vs_jpeg2000_db": psnr - jpeg2000_at(image, bpp, ladder)})
            rows.append(row)
            print(f"{split:10s} {row['scene']:40s} shipped {row['shipped_bpp']:.3f} bpp {row['shipped_psnr']:.2f} dB "
                  f"({row['shipped_vs_jpeg2000_db']:+.2f} vs J2K) | candidate {row['candidate_bpp']:.3f} bpp "
                  f"{row['candidate_psnr']:.2f} dB ({row['candidate_vs_jpeg2000_db']:+.2f} vs J2K)", flush=True)
    summary = {"command": "python benchmarks/bench_retrained_codec.py " + " ".join(argv or sys.argv[1:]),
               "candidate": str(args.candidate), "shipped": shipped.source, "rows": rows}
    for split in ("validation", "test"):
        r = [x for x in rows if x["split"] == split]
        summary[split] = {k: float(np.mean([x[k] for x in r])) for k in r[0] if k not in ("split", "scene")}
        s = summary[split]
        print(f"{split}: ΔPSNR vs JPEG 2000 at equal rate: shipped {s['shipped_vs_jpeg2000_db']:+.3f} dB, candidate "
              f"{s['candidate_vs_jpeg2000_db']:+.3f} dB (gain {s['candidate_vs_jpeg2000_db'] - s['shipped_vs_jpeg2000_db']:+.3f} dB)")
    out = ROOT / "results" / "training" / f"retrained_{args.arch}_lambda{args.lmbda:g}.json"
    write_json(out, summary)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
