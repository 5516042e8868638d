"""kind: codec_rd — rate–distortion of whole test scenes: learned codecs against JPEG.

Every scene is cropped (top-left) to a multiple of 64 pixels on each side, coded by
each model with CompressAI's own ``compress``/``decompress`` (bytes of y and z) and
by JPEG at every quality in ``jpeg.qualities``, with 4:2:0 and with 4:4:4 chroma.
The JPEG reference is the upper envelope (Pareto front) of both chroma modes, and its
bpp counts the whole JFIF file, headers included; the learned codecs' bpp counts
their y and z strings (the shape, a few bytes, travels in our container header).

"Beats JPEG" is decided per scene: JPEG's PSNR is interpolated (linearly in bpp,
along its Pareto front) at the bpp the model spends on that scene; the gain is the
model's PSNR minus that, averaged over the scenes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image
from edgespacecom.progress import progress

from edgespacecom.outputs import write_figure, write_table

from .codecs import load_codecs
from .data import expand_scenes, read_rgb
from .rd import baseline_codec_run, quality, to_tensor

JPEG_CHROMA = {"4:2:0": 2, "4:4:4": 0}  # Pillow's ``subsampling`` codes


def crop_to_multiple(image: np.ndarray, multiple: int = 64) -> np.ndarray:
    """The top-left crop of ``image`` whose sides are multiples of ``multiple``."""
    h, w = (image.shape[0] // multiple) * multiple, (image.shape[1] // multiple) * multiple
    if h == 0 or w == 0:
        raise ValueError(f"image of {image.shape[1]}×{image.shape[0]} px is smaller than {multiple} px")
    return image[:h, :w]


def jpeg_point(image: np.ndarray, quality_level: int, chroma: str) -> dict:
    """Code ``image`` as a JPEG file in memory and decode it back: bpp, PSNR, MS-SSIM."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality_level, subsampling=JPEG_CHROMA[chroma], optimize=True)
    data = buf.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    psnr, msssim = quality(to_tensor(image), to_tensor(decoded))
    return {"bpp": 8 * len(data) / (image.shape[0] * image.shape[1]), "psnr": psnr, "ms_ssim": msssim}


def pareto_front(points: pd.DataFrame, x: str = "bpp", y: str = "psnr") -> pd.DataFrame:
    """Rows not dominated (lower or equal bpp and higher PSNR) by another, sorted by bpp."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best = -np.inf
    keep = []
    for idx, value in zip(ordered.index, ordered[y]):
        if value > best:
            keep.append(idx)
            best = value
    return ordered.loc[keep]


def interpolate_at(front: pd.DataFrame, bpp: float, y: str = "psnr") -> float | None:
    """``y`` of the front at ``bpp`` (linear); None outside the front's bpp range."""
    xs, ys = front["bpp"].to_numpy(), front[y].to_numpy()
    if bpp < xs[0] or bpp > xs[-1]:
        return None
    return float(np.interp(bpp, xs, ys))


def compare_with_jpeg(model_rows: pd.DataFrame, jpeg_rows: pd.DataFrame) -> list[dict]:
    """Per model (architecture, λ, weights): mean R–D over scenes and the PSNR gain over JPEG at equal bpp."""
    fronts = {scene: (pareto_front(j), pareto_front(j, y="ms_ssim")) for scene, j in jpeg_rows.groupby("scene")}
    out = []
    for (arch, lmbda, weights), g in model_rows.groupby(["architecture", "lambda", "weights"], sort=True):
        gains, ssim_gains = [], []
        for _, r in g.iterrows():
            front, sfront = fronts[r["scene"]]
            at = interpolate_at(front, r["bpp"])
            gains.append(None if at is None else r["psnr"] - at)
            s_at = interpolate_at(sfront, r["bpp"], y="ms_ssim")
            ssim_gains.append(None if s_at is None else r["ms_ssim"] - s_at)
        known = [x for x in gains if x is not None]
        out.append({
            "architecture": arch, "lambda": float(lmbda), "weights": weights,
            "bpp": float(g["bpp"].mean()), "psnr": float(g["psnr"].mean()), "ms_ssim": float(g["ms_ssim"].mean()),
            "psnr_gain_vs_jpeg_db": float(np.mean(known)) if known else None,
            "psnr_gain_vs_jpeg_per_scene_db": dict(zip(g["scene"], gains)),
            "ms_ssim_gain_vs_jpeg": float(np.mean([x for x in ssim_gains if x is not None])) if any(
                x is not None for x in ssim_gains) else None,
            # beats JPEG: higher PSNR at equal bpp on every scene where JPEG reaches that bpp
            "beats_jpeg": bool(known) and all(x > 0 for x in known),
        })
    return out


def codec_rd_figure(model_rows: pd.DataFrame, jpeg_rows: pd.DataFrame, columns: int = 4):
    """PSNR and MS-SSIM against bpp, one column per scene (wrapped after ``columns``).

    Per scene, because that is what the verdict compares: a mean over scenes of JPEG's
    points at equal quality is not a mean at equal bpp, and can lie above a model that
    beats JPEG on every scene. Each panel shows JPEG 4:2:0 and 4:4:4 and, bold, their
    upper envelope (the curve the model is interpolated against).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = sorted(jpeg_rows["scene"].unique())
    ncols = min(columns, len(scenes))
    blocks = -(-len(scenes) // ncols)
    fig, axes = plt.subplots(2 * blocks, ncols, figsize=(3.6 * ncols, 3.2 * 2 * blocks), squeeze=False)
    xmax = max(2.0, float(model_rows["bpp"].max()) * 1.2)
    colours = {arch: f"C{i}" for i, arch in enumerate(sorted(model_rows["architecture"].unique()))}
    for k, scene in enumerate(scenes):
        j, m = jpeg_rows[jpeg_rows["scene"] == scene], model_rows[model_rows["scene"] == scene]
        for row, (metric, label) in enumerate((("psnr", "PSNR [dB]"), ("ms_ssim", "MS-SSIM"))):
            ax = axes[2 * (k // ncols) + row, k % ncols]
            for chroma, g in j.groupby("chroma"):
                g = g.sort_values("bpp")
                ax.plot(g["bpp"], g[metric], "--", lw=0.8, color="gray" if chroma == "4:2:0" else "black",
                        label=f"JPEG {chroma}")
            front = pareto_front(j, y=metric)
            ax.plot(front["bpp"], front[metric], "-", lw=2.5, color="0.6", alpha=0.5, zorder=1,
                    label="JPEG envelope")
            for arch, g in m.groupby("architecture"):
                g = g.sort_values("bpp")
                ax.plot(g["bpp"], g[metric], "o-", color=colours[arch], label=arch)
            in_range = j[j["bpp"] <= xmax][metric]
            lo = min(float(in_range.min()), float(m[metric].min()))
            hi = max(float(in_range.max()), float(m[metric].max()))
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            ax.set_xlim(0, xmax)
            ax.set_xlabel("bpp")
            ax.set_ylabel(label)
            ax.set_title(scene, fontsize=8)
            ax.grid(alpha=0.3)
    for k in range(len(scenes), blocks * ncols):  # empty cells of the last block
        for row in range(2):
            axes[2 * (k // ncols) + row, k % ncols].axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Learned codecs against JPEG, per scene", fontsize=10)
    fig.tight_layout()
    return fig


def run_codec_rd(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    codecs = [codec for c in scenario.models for codec in load_codecs(c)]  # before any output is written
    run.begin()
    paths = expand_scenes(scenario.data.scenes)
    scenes = {p.name: crop_to_multiple(read_rgb(p)) for p in paths}
    stage(f"codec_rd: {len(codecs)} model(s), {len(scenes)} scene(s), JPEG at {len(scenario.jpeg.qualities)} qualities")
    jpeg_rows = [{"scene": name, "chroma": chroma, "quality": q, **jpeg_point(img, q, chroma)}
                 for name, img in scenes.items() for chroma in JPEG_CHROMA for q in scenario.jpeg.qualities]
    model_rows = []
    for codec in progress(codecs, desc="models", unit="model"):
        for name, img in scenes.items():
            r = baseline_codec_run(codec, to_tensor(img))
            model_rows.append({"architecture": codec.architecture, "lambda": codec.lmbda, "weights": codec.source,
                               "scene": name, "bpp": r["bpp_total"], "bpp_y": r["bpp_y"], "bpp_z": r["bpp_z"],
                               "psnr": r["psnr"], "ms_ssim": r["ms_ssim"]})
    jpeg_table, model_table = pd.DataFrame(jpeg_rows), pd.DataFrame(model_rows)
    write_table(out_dir / "jpeg_rd.csv", jpeg_table)
    write_table(out_dir / "model_rd.csv", model_table)
    write_figure(out_dir / "codec_rd.png", codec_rd_figure(model_table, jpeg_table))
    summary = {"kind": "codec_rd", "name": scenario.name, "scenes": {n: list(i.shape[:2]) for n, i in scenes.items()},
               "models": compare_with_jpeg(model_table, jpeg_table)}
    return run.finish(summary)


def format_codec_rd_summary(summary: dict) -> str:
    rows = [{
        "model": m["architecture"], "λ": m["lambda"], "bpp": f"{m['bpp']:.3f}", "PSNR [dB]": f"{m['psnr']:.2f}",
        "MS-SSIM": f"{m['ms_ssim']:.4f}",
        "ΔPSNR vs JPEG [dB]": "n/a" if m["psnr_gain_vs_jpeg_db"] is None else f"{m['psnr_gain_vs_jpeg_db']:+.2f}",
        "beats JPEG": m["beats_jpeg"],
    } for m in summary["models"]]
    return f"{summary['name']}: {len(summary['scenes'])} scene(s)\n" + pd.DataFrame(rows).to_string(index=False)
