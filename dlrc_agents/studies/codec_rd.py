"""kind: codec_rd — rate–distortion of whole test scenes: learned codecs against JPEG and JPEG 2000.

Every scene is cropped (top-left) to a multiple of 64 pixels on each side, coded by
each model with CompressAI's own ``compress``/``decompress`` (bytes of y and z), by
JPEG at every quality in ``jpeg.qualities``, with 4:2:0 and with 4:4:4 chroma, and by
JPEG 2000 (OpenJPEG, :mod:`.jpeg2000`) at every target in ``jpeg2000.bpp``, with and
without the multi-component transform. Each reference is the upper envelope (Pareto
front) of its modes, and its bpp counts the whole file (JFIF, or the J2K codestream with
its main header); the learned codecs' bpp counts their y and z strings (the shape, a
few bytes, travels in our container header).

BD-rate and BD-PSNR (the ``bjontegaard`` package, Akima interpolation) compare each
architecture's λ ladder with each reference's strongest setting per scene (its 4:2:0 or
4:4:4 curve, with or without MCT: :func:`strongest_anchor`), over the rates both curves
cover, averaged over scenes; they need two or more λ of the architecture, else None.

"Beats JPEG" is decided per scene: JPEG's PSNR is interpolated (linearly in bpp,
along its Pareto front) at the bpp the model spends on that scene; the gain is the
model's PSNR minus that, averaged over the scenes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import torch
from PIL import Image
from edgespacecom.progress import progress

from edgespacecom.outputs import write_figure, write_table

from dlrc_agents.codecs.registry import load_codecs
from dlrc_agents.common.data import expand_scenes, read_band_set, read_rgb
from dlrc_agents.common.measures import REFERENCE_SETTINGS, bd_pair, interpolate_at, pareto_front, strongest_anchor
from dlrc_agents.codecs.jpeg2000 import jpeg2000_point
from dlrc_agents.common.imaging import quality, to_tensor
from dlrc_agents.studies.rd import baseline_codec_run

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


def code_band_set(raw: np.ndarray, j2k_cfg, codecs: list):
    """Every coding of a band set (H, W, B) of raw samples, as (codec, extra columns, decoded samples,
    bytes): JPEG 2000 at every target in bits per sample, with and without the multi-component
    transform where it applies (3 or 4 bands), decoded from the bytes counted; then every learned
    codec with as many bands (its own normalisation; samples rounded back to the data's type), with the
    fraction of samples its normalisation clips before any coding (``clipped_fraction``)."""
    from dlrc_agents.codecs import jpeg2000

    bands = raw.shape[2]
    for mct in sorted({m and bands in jpeg2000.MCT_BANDS for m in j2k_cfg.mct}):
        for bps in j2k_cfg.bits_per_sample:
            data = jpeg2000.encode(raw, bps * bands, mct)
            yield "jpeg2000", {"mct": mct, "target_bits_per_sample": bps}, jpeg2000.decode(data, expect=raw.shape), len(data)
    for codec in codecs:
        if codec.bands is None or codec.in_channels != bands:
            continue
        yield (codec.architecture, {"lambda": codec.lmbda, "weights": codec.source,
                                    "clipped_fraction": codec.bands.clipped_fraction(raw)}, *code_learned(codec, raw))


def code_learned(codec, raw: np.ndarray) -> tuple[np.ndarray, int]:
    """(decoded samples, bytes) of an N-band learned codec on raw samples (H, W, B): its own
    normalisation, real bitstreams decoded from them, samples rounded back to the data's type."""
    with torch.no_grad():
        out = codec.model.compress(codec.bands.to_model(raw))
        x_hat = codec.model.decompress(out["strings"], out["shape"])["x_hat"].clamp(0, 1)
    return codec.bands.to_raw(x_hat, raw.dtype), sum(len(s[0]) for s in out["strings"])


def band_set_rows(name: str, raw: np.ndarray, j2k_cfg, codecs: list) -> list[dict]:
    """R–D points of one band set (:func:`code_band_set`). PSNR over all bands, peak the band set's
    largest sample (16-bit data rarely uses its full range; the same peak for every codec)."""
    from dlrc_agents.codecs import jpeg2000

    h, w, bands = raw.shape
    peak = float(max(int(raw.max()), 1))
    rows = [{"codec": codec, **extra, "scene": name, "bands": bands, "sample_bits": 8 * raw.dtype.itemsize,
             "bpp": 8 * nbytes / (h * w), "bits_per_sample": 8 * nbytes / (h * w * bands),
             "psnr": jpeg2000.psnr(raw, decoded, peak)}
            for codec, extra, decoded, nbytes in code_band_set(raw, j2k_cfg, codecs)]
    j2k = [r for r in rows if r["codec"] == "jpeg2000"]
    front = pareto_front(pd.DataFrame(j2k)) if j2k else None
    for r in rows:  # the learned codec's PSNR against JPEG 2000's best at the same rate (linear along its front)
        if r["codec"] != "jpeg2000":
            at = None if front is None else interpolate_at(front, r["bpp"])
            r["psnr_gain_vs_jpeg2000_db"] = None if at is None else r["psnr"] - at
    return rows


def band_set_figure(rows: pd.DataFrame):
    """PSNR against bits per sample, one panel a band set: JPEG 2000 with and without MCT, learned codecs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(rows["scene"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.8 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = rows[rows["scene"] == name]
        for (codec, mct), g in r.groupby([r["codec"], r.get("mct", pd.Series(index=r.index, dtype=object)).fillna("")],
                                         sort=True):
            g = g.sort_values("bits_per_sample")
            label = codec if codec != "jpeg2000" else f"JPEG 2000{' (MCT)' if mct is True else ''}"
            ax.plot(g["bits_per_sample"], g["psnr"], "o-" if codec != "jpeg2000" else ".--", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("bits per sample")
        ax.set_ylabel("PSNR [dB] (peak: largest sample)")
        ax.set_title(f"{name}: {int(r['bands'].iloc[0])} band(s), {int(r['sample_bits'].iloc[0])} bit", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def bjontegaard_rows(model_rows: pd.DataFrame, ref_rows: pd.DataFrame, anchor: str) -> list[dict]:
    """BD-rate [%] and BD-PSNR [dB] of each architecture's λ ladder against the reference's strongest
    configuration (:func:`strongest_anchor`), per scene and averaged (negative BD-rate: the model needs
    fewer bits for the same PSNR). The ladder's curve is its Pareto front: a ladder that mixes model
    families (the 4-band adapters and whole models) can hold a point another of its points beats at a
    lower rate, which no user would pick and through which no monotonic fit passes."""
    out = []
    for arch, g in model_rows.groupby("architecture", sort=True):
        per_scene = {}
        for scene, m in g.groupby("scene"):
            m = pareto_front(m)
            per_scene[scene] = ((None, None, None) if len(m) < 2 else
                                strongest_anchor(ref_rows[ref_rows["scene"] == scene], m["bpp"], m["psnr"]))
        rates = [r for r, _, _ in per_scene.values() if r is not None]
        dists = [d for _, d, _ in per_scene.values() if d is not None]
        out.append({"architecture": arch, "anchor": anchor,
                    "bd_rate_pct": float(np.mean(rates)) if rates else None,
                    "bd_psnr_db": float(np.mean(dists)) if dists else None,
                    "scenes": len(rates),
                    "per_scene": {s: {"bd_rate_pct": r, "bd_psnr_db": d, "anchor_setting": a}
                                  for s, (r, d, a) in per_scene.items()}})
    return out


def compare_with_jpeg(model_rows: pd.DataFrame, jpeg_rows: pd.DataFrame,
                      jpeg2000_rows: pd.DataFrame | None = None) -> list[dict]:
    """Per model (architecture, λ, weights): mean R–D over scenes and the PSNR gain over JPEG (and
    JPEG 2000, when given) at equal bpp."""
    out = _gains(model_rows, jpeg_rows, "jpeg")
    if jpeg2000_rows is not None and len(jpeg2000_rows):
        for row, other in zip(out, _gains(model_rows, jpeg2000_rows, "jpeg2000")):
            row.update({k: v for k, v in other.items() if "jpeg2000" in k})
    return out


def _gains(model_rows: pd.DataFrame, jpeg_rows: pd.DataFrame, ref: str) -> list[dict]:
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
            f"psnr_gain_vs_{ref}_db": float(np.mean(known)) if known else None,
            f"psnr_gain_vs_{ref}_per_scene_db": dict(zip(g["scene"], gains)),
            f"ms_ssim_gain_vs_{ref}": float(np.mean([x for x in ssim_gains if x is not None])) if any(
                x is not None for x in ssim_gains) else None,
            # beats the reference: higher PSNR at equal bpp on every scene where it reaches that bpp
            f"beats_{ref}": bool(known) and all(x > 0 for x in known),
        })
    return out


def codec_rd_figure(model_rows: pd.DataFrame, jpeg_rows: pd.DataFrame, columns: int = 4,
                    jpeg2000_rows: pd.DataFrame | None = None):
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
    xmax = max(2.0, float(model_rows["bpp"].max()) * 1.2) if len(model_rows) else 2.0
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
            if jpeg2000_rows is not None and len(jpeg2000_rows):
                j2 = jpeg2000_rows[jpeg2000_rows["scene"] == scene]
                f2 = pareto_front(j2, y=metric)
                ax.plot(f2["bpp"], f2[metric], "-.", lw=1.6, color="tab:brown", label="JPEG 2000 envelope")
            for arch, g in m.groupby("architecture"):
                g = g.sort_values("bpp")
                ax.plot(g["bpp"], g[metric], "o-", color=colours[arch], label=arch)
            in_range = pd.concat([j[j["bpp"] <= xmax][metric], m[metric]])
            in_range = pd.to_numeric(in_range, errors="coerce").to_numpy(dtype=float)
            in_range = in_range[np.isfinite(in_range)]  # MS-SSIM is NaN on images of 160 px or less
            if len(in_range):
                lo, hi = float(in_range.min()), float(in_range.max())
                ax.set_ylim(lo - 0.05 * (hi - lo) - 1e-6, hi + 0.05 * (hi - lo) + 1e-6)
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


#: How close a rate-controlled stream must come to its target (relative).
RATE_TOLERANCE = 0.02


def rate_control_rows(scenario, scenes: dict) -> list[dict]:
    """Every RGB scene coded at each ``target_bpp`` of each model section (:mod:`dlrc_agents.codecs.rate`):
    the model (a variable-rate one: its level) and step chosen, the rate of the whole stream (strings and
    the 3 bytes of step and model, 4 of step and level),
    decoded from those strings, PSNR and MS-SSIM."""
    from dlrc_agents.codecs import rate

    rows = []
    for section in scenario.models:
        if not section.target_bpp or section.bands != 3:
            continue
        ladder = load_codecs(section)
        for name, img in progress(list(scenes.items()), desc=f"rate control {section.architecture}", unit="scene"):
            x = to_tensor(img)
            for target in section.target_bpp:
                coded = rate.code_at_rate(ladder, x, target, RATE_TOLERANCE)
                codec = sorted(ladder, key=lambda c: c.lmbda or 0.0)[coded.ladder_index]
                psnr, msssim = quality(x, rate.decode(codec, coded))
                level = None if coded.level_code is None else rate.level_of(coded.level_code, codec.model.levels)
                rows.append({"architecture": section.architecture, "scene": name, "target_bpp": target,
                             "bpp": coded.bpp, "rate_error": coded.bpp / target - 1.0, "lambda": coded.lmbda,
                             "level": level, "step": rate.step_of(coded.step_code), "psnr": psnr, "ms_ssim": msssim})
    return rows


def run_codec_rd(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    codecs = [codec for c in scenario.models for codec in load_codecs(c)]  # before any output is written
    run.begin()
    paths = expand_scenes(scenario.data.scenes)
    scenes = {p.name: crop_to_multiple(read_rgb(p)) for p in paths}
    j2 = scenario.jpeg2000
    stage(f"codec_rd: {len(codecs)} model(s), {len(scenes)} scene(s), JPEG at {len(scenario.jpeg.qualities)} qualities"
          + (f", JPEG 2000 at {len(j2.bpp)} rates × MCT {j2.mct}" if j2.enabled else ""))
    jpeg_rows = [{"scene": name, "chroma": chroma, "quality": q, **jpeg_point(img, q, chroma)}
                 for name, img in scenes.items() for chroma in JPEG_CHROMA for q in scenario.jpeg.qualities]
    jpeg2000_rows = [{"scene": name, "mct": mct, "target_bpp": b, **jpeg2000_point(img, b, mct)}
                     for name, img in scenes.items() for mct in j2.mct for b in j2.bpp] if j2.enabled else []
    model_rows = []
    for codec in progress([c for c in codecs if c.in_channels == 3], desc="models", unit="model"):  # RGB scenes
        for name, img in scenes.items():
            r = baseline_codec_run(codec, to_tensor(img))
            model_rows.append({"architecture": codec.architecture, "lambda": codec.lmbda, "weights": codec.source,
                               "scene": name, "bpp": r["bpp_total"], "bpp_y": r["bpp_y"], "bpp_z": r["bpp_z"],
                               "psnr": r["psnr"], "ms_ssim": r["ms_ssim"]})
    jpeg_table = pd.DataFrame(jpeg_rows)
    model_table = pd.DataFrame(model_rows, columns=["architecture", "lambda", "weights", "scene", "bpp", "bpp_y",
                                                    "bpp_z", "psnr", "ms_ssim"])
    j2k_table = pd.DataFrame(jpeg2000_rows)
    write_table(out_dir / "jpeg_rd.csv", jpeg_table)
    write_table(out_dir / "model_rd.csv", model_table)
    if len(j2k_table):
        write_table(out_dir / "jpeg2000_rd.csv", j2k_table)
    write_figure(out_dir / "codec_rd.png", codec_rd_figure(model_table, jpeg_table, jpeg2000_rows=j2k_table))
    rate_rows = rate_control_rows(scenario, scenes)
    if rate_rows:
        write_table(out_dir / "rate_control.csv", pd.DataFrame(rate_rows))
    band_rows = []
    for band_set in progress(scenario.band_sets, desc="band sets", unit="band set"):
        raw = read_band_set(band_set.files, band_set.bands, band_set.rows)
        if band_set.crop:
            raw = raw[:band_set.crop, :band_set.crop]
        band_rows += band_set_rows(band_set.name, crop_to_multiple(raw), scenario.jpeg2000,
                                   codecs if band_set.learned else [])
    band_table = pd.DataFrame(band_rows)
    if len(band_table):
        write_table(out_dir / "band_sets_rd.csv", band_table)
        write_figure(out_dir / "band_sets_rd.png", band_set_figure(band_table))
    bd = bjontegaard_rows(model_table, jpeg_table, "jpeg")
    if len(j2k_table):
        bd += bjontegaard_rows(model_table, j2k_table, "jpeg2000")
    summary = {"kind": "codec_rd", "name": scenario.name, "scenes": {n: list(i.shape[:2]) for n, i in scenes.items()},
               "models": compare_with_jpeg(model_table, jpeg_table, j2k_table), "bjontegaard": bd,
               # every point, one row each: what a table or a plot of this run needs
               "results": [{"codec": r["architecture"], "lambda": r["lambda"], "bands": 3, "scene": r["scene"],
                            "bpp": r["bpp"], "psnr": r["psnr"], "ms_ssim": r["ms_ssim"]} for r in model_rows]
               + [{"codec": "jpeg", "chroma": r["chroma"], "quality": r["quality"], "bands": 3, "scene": r["scene"],
                   "bpp": r["bpp"], "psnr": r["psnr"], "ms_ssim": r["ms_ssim"]} for r in jpeg_rows]
               + [{"codec": "jpeg2000", "mct": r["mct"], "target_bpp": r["target_bpp"], "bands": 3, "scene": r["scene"],
                   "bpp": r["bpp"], "psnr": r["psnr"], "ms_ssim": r["ms_ssim"]} for r in jpeg2000_rows]
               + band_rows}
    if rate_rows:
        errors = [abs(r["rate_error"]) for r in rate_rows]
        summary["rate_control"] = {"tolerance": RATE_TOLERANCE, "max_rate_error": max(errors),
                                   "within_tolerance": bool(max(errors) <= RATE_TOLERANCE), "rows": rate_rows}
    if len(band_table) and (band_table["codec"] != "jpeg2000").any():
        ref = band_table[band_table["codec"] == "jpeg2000"]
        learned = band_table[band_table["codec"] != "jpeg2000"]
        # one ladder per architecture and band count (a 1-band and a 13-band model are different codecs)
        summary["bjontegaard"] += bjontegaard_rows(
            learned.assign(architecture=learned["codec"] + " (" + learned["bands"].astype(str) + " bands)"), ref,
            "jpeg2000")
    return run.finish(summary)


def format_codec_rd_summary(summary: dict) -> str:
    rows = [{
        "model": m["architecture"], "λ": m["lambda"], "bpp": f"{m['bpp']:.3f}", "PSNR [dB]": f"{m['psnr']:.2f}",
        "MS-SSIM": f"{m['ms_ssim']:.4f}",
        "ΔPSNR vs JPEG [dB]": "n/a" if m["psnr_gain_vs_jpeg_db"] is None else f"{m['psnr_gain_vs_jpeg_db']:+.2f}",
        "beats JPEG": m["beats_jpeg"],
        **({} if "beats_jpeg2000" not in m else {
            "ΔPSNR vs JPEG 2000 [dB]": "n/a" if m["psnr_gain_vs_jpeg2000_db"] is None
            else f"{m['psnr_gain_vs_jpeg2000_db']:+.2f}", "beats JPEG 2000": m["beats_jpeg2000"]}),
    } for m in summary["models"]]
    text = f"{summary['name']}: {len(summary['scenes'])} scene(s)\n" + pd.DataFrame(rows).to_string(index=False)
    bd = [{"model": b["architecture"], "anchor": b["anchor"],
           "BD-rate": "n/a" if b["bd_rate_pct"] is None else f"{b['bd_rate_pct']:+.1f} %",
           "BD-PSNR": "n/a" if b["bd_psnr_db"] is None else f"{b['bd_psnr_db']:+.2f} dB", "scenes": b["scenes"]}
          for b in summary.get("bjontegaard", [])]
    text += ("\n\nBjøntegaard deltas (model's λ ladder against the anchor's strongest setting, mean over scenes)\n"
             + pd.DataFrame(bd).to_string(index=False) if bd else "")
    rc = summary.get("rate_control")
    if rc:
        table = pd.DataFrame([{"model": r["architecture"], "scene": r["scene"], "target bpp": r["target_bpp"],
                               "bpp": f"{r['bpp']:.4f}", "error": f"{100 * r['rate_error']:+.2f} %",
                               "λ": r["lambda"], "step": f"{r['step']:.3f}", "PSNR [dB]": f"{r['psnr']:.2f}"}
                              for r in rc["rows"]])
        text += (f"\n\nRate control (every byte; ±{100 * rc['tolerance']:g} %: "
                 f"{'all within' if rc['within_tolerance'] else 'NOT all within'})\n" + table.to_string(index=False))
    return text
