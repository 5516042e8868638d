"""8-bit weight storage against fp16: what the shipped storage costs in rate and distortion.

    python benchmarks/bench_weight_storage.py CKPT.pt [CKPT.pt ...] [--crop PX] [--out FILE]

Each fp16 checkpoint is re-exported in 8-bit storage (``registry.pack_int8``: int8 codes with one
scale per output slice; what ships) in a temporary folder, and both versions code every test-split
scene (cropped to the centre ``--crop`` px square, default 512, so that the context models' serial
decoding stays within minutes) through CompressAI's compress / decompress, every string counted. The
ground's decode is checked against a second decode from the same bytes (bit-exact), and the int8
model's tensors against their sha256. Prints per model and scene the fp16 point, the int8 point and
the change (bpp %, PSNR dB), and per architecture with several λ the BD-rate of int8 against fp16
(Akima, as codec_rd). Writes ``results/training/weight_storage.json`` (or ``--out``) with the command.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.registry import load_checkpoint, repack_checkpoint  # noqa: E402
from dlrc_agents.common.data import TEST_GLOBS, read_rgb, scene_names  # noqa: E402
from dlrc_agents.common.imaging import quality, to_tensor  # noqa: E402
from dlrc_agents.common.measures import bd_pair  # noqa: E402
from edgespacecom.outputs import write_json  # noqa: E402


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    size = min(size, h // 64 * 64, w // 64 * 64)
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


@torch.no_grad()
def point(codec, image: np.ndarray) -> dict:
    x = to_tensor(image)
    out = codec.model.compress(x)
    nbytes = sum(len(s) for strings in out["strings"] for s in strings)
    first = codec.model.decompress(out["strings"], out["shape"])["x_hat"]
    again = codec.model.decompress([list(s) for s in out["strings"]], out["shape"])["x_hat"]
    return {"bpp": 8 * nbytes / (image.shape[0] * image.shape[1]), "psnr": quality(x, first)[0],
            "decode_exact": bool(torch.equal(first, again))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "training" / "weight_storage.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    scenes = {Path(n).name: centre_crop(read_rgb(p), args.crop) for n, p in scene_names(list(TEST_GLOBS)).items()}
    rows, by_arch = [], defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.checkpoints:
            packed = repack_checkpoint(ckpt, Path(tmp) / ckpt.name, "int8")
            fp16, int8 = load_checkpoint(ckpt), load_checkpoint(packed)
            for scene, image in scenes.items():
                a, b = point(fp16, image), point(int8, image)
                row = {"checkpoint": ckpt.name, "architecture": fp16.architecture, "lambda": fp16.lmbda, "scene": scene,
                       "fp16": a, "int8": b, "bytes_fp16": ckpt.stat().st_size, "bytes_int8": packed.stat().st_size,
                       "bpp_change_pct": 100 * (b["bpp"] / a["bpp"] - 1), "psnr_change_db": b["psnr"] - a["psnr"]}
                rows.append(row)
                by_arch[(fp16.architecture, scene)].append(row)
                print(f"{ckpt.name:48s} {scene:32s} fp16 {a['bpp']:.4f} bpp {a['psnr']:.3f} dB | int8 {b['bpp']:.4f} bpp "
                      f"{b['psnr']:.3f} dB | {row['bpp_change_pct']:+.2f} % {row['psnr_change_db']:+.3f} dB"
                      f"{'' if a['decode_exact'] and b['decode_exact'] else '  DECODE NOT EXACT'}", flush=True)
    bd = {}
    for (arch, scene), r in sorted(by_arch.items()):
        if len(r) >= 4:
            rate, dist = bd_pair([x["fp16"]["bpp"] for x in r], [x["fp16"]["psnr"] for x in r],
                                 [x["int8"]["bpp"] for x in r], [x["int8"]["psnr"] for x in r])
            bd.setdefault(arch, {})[scene] = {"bd_rate_pct": rate, "bd_psnr_db": dist}
            print(f"{arch} {scene}: BD-rate int8 vs fp16 {rate:+.2f} %, BD-PSNR {dist:+.3f} dB")
    summary = {"command": "python benchmarks/bench_weight_storage.py " + " ".join(argv or sys.argv[1:]),
               "crop_px": args.crop, "scenes": sorted(scenes), "rows": rows, "bd_int8_vs_fp16": bd,
               "mean_bpp_change_pct": float(np.mean([r["bpp_change_pct"] for r in rows])),
               "mean_psnr_change_db": float(np.mean([r["psnr_change_db"] for r in rows])),
               "all_decodes_exact": all(r["fp16"]["decode_exact"] and r["int8"]["decode_exact"] for r in rows)}
    print(f"mean change: {summary['mean_bpp_change_pct']:+.2f} % bpp, {summary['mean_psnr_change_db']:+.3f} dB; "
          f"decodes exact: {summary['all_decodes_exact']}")
    write_json(args.out, summary)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
