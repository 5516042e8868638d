"""kind: rd — rate–distortion of a codec with and without DLRC (paper Figures 6 and 7).

For every λ and o_exp, every scene and every draw: N overlapping patches are
coded (a) independently by the codec (baseline: CompressAI's own compress /
decompress) and (b) with DLRC; the ground decodes both from bytes. Reported per
satellite and averaged: bpp (y, z, map raw, map LZMA, total), PSNR and MS-SSIM on
images quantised to 0–255, decode exactness and the geometric bound of the draw.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import torch
from pytorch_msssim import ms_ssim
from edgespacecom.progress import progress

from edgespacecom.outputs import write_figure, write_table

from .codecs import load_codecs
from .data import read_rgb, scene_label, scene_names
from .dlrc.alone import alone_stream
from .dlrc.bitstream import pack_maps
from .dlrc.onboard import DLRCConfig, encode_group
from .dlrc.reconstructor import parse_round, reconstruct_parsed
from .overlap import draw_observation, window_for_overlap


def quality(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[float, float]:
    """(PSNR [dB], MS-SSIM) of images in [0, 1], both quantised to integers 0..255.

    MS-SSIM (5 scales, 11-pixel window) needs both sides > 160 px; smaller images get NaN.
    """
    a = torch.round(x.clamp(0, 1) * 255.0)
    b = torch.round(x_hat.clamp(0, 1) * 255.0)
    mse = torch.mean((a - b) ** 2).item()
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    if min(a.shape[-2:]) <= 160:
        return psnr, float("nan")
    return psnr, float(ms_ssim(a, b, data_range=255.0).item())


@torch.no_grad()
def baseline_codec_run(codec, x: torch.Tensor, satellite: int = 0, members: tuple = ()) -> dict:
    """The codec alone: bytes of y and z, of the container around them (header, CRC: what a
    satellite of a group of ``members`` sends with them), and the image decoded from them."""
    out = codec.model.compress(x)
    *y_strs, (z_str,) = out["strings"]  # z last; ELIC writes one y string per group and step
    y_bytes = sum(len(s[0]) for s in y_strs)
    container = len(alone_stream(codec, out, tuple(x.shape[-2:]), satellite, 0, members).to_bytes())
    x_hat = codec.model.decompress(out["strings"], out["shape"])["x_hat"]
    pixels = x.shape[-2] * x.shape[-1]
    psnr, msssim = quality(x, x_hat)
    return {"bpp_y": 8 * y_bytes / pixels, "bpp_z": 8 * len(z_str) / pixels,
            "bpp_total": 8 * (y_bytes + len(z_str)) / pixels,
            "bpp_header": 8 * (container - y_bytes - len(z_str)) / pixels, "psnr": psnr, "ms_ssim": msssim}


def seeded_draw(seed: int, overlap, scenes: dict, o_exp: float, scene: str, draw: int):
    """Draw ``draw`` of the overlap protocol for ``scene`` (a key of ``scenes``) at ``o_exp``: the same
    for every model and every DLRC setting, seeded by the scenario seed, o_exp, draw and scene."""
    window = window_for_overlap(overlap.satellites, overlap.patch, o_exp, overlap.grid)
    rng = np.random.default_rng([seed, int(o_exp * 1000), draw, sorted(scenes).index(scene)])
    return draw_observation(scenes[scene], overlap.satellites, overlap.patch, window, rng, overlap.grid)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None] / 255.0


def patch_tensor(scene: np.ndarray, y: int, x: int, size: int) -> torch.Tensor:
    return to_tensor(scene[y:y + size, x:x + size])


def per_satellite_times(timings_s: dict, satellites: int) -> dict:
    """On-board seconds per satellite of each stage: group sums / N, except the Arbiter,
    which every satellite runs in full on all the signatures."""
    return {f"time_{stage}_s": (v if stage == "arbiter" else v / satellites) for stage, v in timings_s.items()}


@torch.no_grad()
def evaluate_draw(codec, scene: np.ndarray, obs, cfg: DLRCConfig, baselines: dict | None = None) -> list[dict]:
    """Rows (one per satellite) for one draw: baseline and DLRC side by side.

    ``baselines`` ({sat: baseline_codec_run(...)}) may be passed to reuse the codec-alone
    results across DLRC settings (the ablation); it is filled in when given empty.
    """
    images = {sat: patch_tensor(scene, y, x, obs.patch) for sat, (y, x) in enumerate(obs.offsets)}
    group = encode_group(codec, images, cfg)
    times = per_satellite_times(group.timings_s, len(images))
    parsed = {p.satellite: p for p in parse_round(codec, list(group.streams.values()))}
    decoded = reconstruct_parsed(codec, list(parsed.values()))
    pixels = obs.patch**2
    n = len(images)
    map_lzma_bits = 8 * len(pack_maps(group.arbitration.assignment))  # all maps together, as the paper sends them
    map_sent_bits = 8 * sum(len(p.map_section()) for p in parsed.values())  # what the streams carry
    map_raw_bits = group.arbitration.map_bits_raw()
    rows = []
    for sat, x in images.items():
        if baselines is not None and sat in baselines:
            base = baselines[sat]
        else:
            base = baseline_codec_run(codec, x, sat, tuple(images))
            if baselines is not None:
                baselines[sat] = base
        psnr, msssim = quality(x, decoded[sat]["x_hat"])
        p = parsed[sat]
        rows.append({
            "satellite": sat, "priority": p.priority,
            "baseline_bpp_y": base["bpp_y"], "baseline_bpp_z": base["bpp_z"], "baseline_bpp_total": base["bpp_total"],
            "baseline_psnr": base["psnr"], "baseline_ms_ssim": base["ms_ssim"],
            "dlrc_bpp_y": 8 * len(p.y_string) / pixels, "dlrc_bpp_z": 8 * len(p.z_string) / pixels,
            # header, member and map lists, CRC: the container around the strings and maps
            "baseline_bpp_header": base["bpp_header"],
            "dlrc_bpp_header": 8 * (len(group.streams[sat]) - len(p.y_string) - len(p.z_string)
                                    - len(p.map_section())) / pixels,
            # the map cost is shared: all maps together, split evenly over the satellites
            "dlrc_bpp_map_raw": map_raw_bits / n / pixels, "dlrc_bpp_map_lzma": map_lzma_bits / n / pixels,
            "dlrc_bpp_map_sent": map_sent_bits / n / pixels,
            "dlrc_psnr": psnr, "dlrc_ms_ssim": msssim,
            "retained_fraction": p.retained / (p.y_shape[1] * p.y_shape[2]),
            "decode_exact": bool(torch.equal(decoded[sat]["y_tilde"], group.intended[sat])),
            "geometric_bound": obs.geometric_bound(), "o_exp_actual": obs.o_exp,
            # context codecs: higher-priority ŷ vectors this satellite needs on board (ISL, not downlink)
            "exchange_bytes": group.exchange_bytes.get(sat, 0), **times,
        })
    for r in rows:
        r["dlrc_bpp_total"] = r["dlrc_bpp_y"] + r["dlrc_bpp_z"] + r["dlrc_bpp_map_sent"]
        # every byte each world sends: the totals above (the paper's payload) plus their containers
        r["baseline_bpp_sent"] = r["baseline_bpp_total"] + r["baseline_bpp_header"]
        r["dlrc_bpp_sent"] = r["dlrc_bpp_total"] + r["dlrc_bpp_header"]
        r["dlrc_bpp_total_paper_map"] = r["dlrc_bpp_y"] + r["dlrc_bpp_z"] + r["dlrc_bpp_map_lzma"]
    return rows


def summarise(table: pd.DataFrame, satellites: int) -> list[dict]:
    """Averages per (λ, o_exp) over all satellites and draws, plus the lowest-priority satellite."""
    results = []
    for (lmbda, o_exp), g in table.groupby(["lambda", "o_exp"], sort=True):
        def block(d: pd.DataFrame) -> dict:
            base = d["baseline_bpp_total"].mean()
            dl = d["dlrc_bpp_total"].mean()
            return {
                "baseline": {"bpp_y": d["baseline_bpp_y"].mean(), "bpp_z": d["baseline_bpp_z"].mean(),
                             "bpp_total": base, "psnr": d["baseline_psnr"].mean(), "ms_ssim": d["baseline_ms_ssim"].mean()},
                "dlrc": {"bpp_y": d["dlrc_bpp_y"].mean(), "bpp_z": d["dlrc_bpp_z"].mean(),
                         "bpp_map_raw": d["dlrc_bpp_map_raw"].mean(), "bpp_map_lzma": d["dlrc_bpp_map_lzma"].mean(),
                         "bpp_map_sent": d["dlrc_bpp_map_sent"].mean(),
                         "bpp_total": dl, "bpp_total_paper_map": d["dlrc_bpp_total_paper_map"].mean(),
                         "psnr": d["dlrc_psnr"].mean(), "ms_ssim": d["dlrc_ms_ssim"].mean()},
                "bpp_reduction": 1.0 - dl / base,
                # containers included (headers, member and map lists, CRC), both worlds
                "bpp_reduction_sent": 1.0 - d["dlrc_bpp_sent"].mean() / d["baseline_bpp_sent"].mean(),
                "bpp_reduction_paper_map": 1.0 - d["dlrc_bpp_total_paper_map"].mean() / base,
                "delta_psnr": d["dlrc_psnr"].mean() - d["baseline_psnr"].mean(),
                "delta_ms_ssim": d["dlrc_ms_ssim"].mean() - d["baseline_ms_ssim"].mean(),
            }
        row = {"lambda": float(lmbda), "o_exp": float(o_exp), **block(g),
               "geometric_bound": float(g.drop_duplicates(["scene", "draw"])["geometric_bound"].mean()),
               "decode_exact": bool(g["decode_exact"].all()),
               "exchange_bytes_per_satellite": float(g["exchange_bytes"].mean()),
               "lowest_priority": block(g[g["priority"] == satellites - 1]),
               "patches": int(len(g))}
        results.append(row)
    return results


def rd_figures(results: list[dict], model: str):
    """Figure 6 (R–D, PSNR and MS-SSIM, baseline vs DLRC) and Figure 7 (bpp breakdown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overlaps = sorted({r["o_exp"] for r in results}, reverse=True)
    fig6, axes = plt.subplots(2, len(overlaps), figsize=(4.6 * len(overlaps), 7), squeeze=False)
    for col, o in enumerate(overlaps):
        rs = sorted([r for r in results if r["o_exp"] == o], key=lambda r: r["lambda"])
        for row, (metric, label) in enumerate((("psnr", "PSNR [dB]"), ("ms_ssim", "MS-SSIM"))):
            ax = axes[row, col]
            ax.plot([r["baseline"]["bpp_total"] for r in rs], [r["baseline"][metric] for r in rs], "o-", label=model)
            ax.plot([r["dlrc"]["bpp_total"] for r in rs], [r["dlrc"][metric] for r in rs], "s-", label=f"{model} + DLRC")
            ax.set_xlabel("bpp (total, LZMA map included)")
            ax.set_ylabel(label)
            ax.set_title(f"o_exp = {o:g}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig6.tight_layout()

    fig7, axes = plt.subplots(1, len(overlaps), figsize=(4.6 * len(overlaps), 4), squeeze=False)
    for col, o in enumerate(overlaps):
        rs = sorted([r for r in results if r["o_exp"] == o], key=lambda r: r["lambda"])
        ax = axes[0, col]
        xs = np.arange(len(rs))
        w = 0.2
        y = np.array([r["dlrc"]["bpp_y"] + r["dlrc"]["bpp_z"] for r in rs])
        ax.bar(xs - 1.5 * w, [r["baseline"]["bpp_total"] for r in rs], w, label="baseline (y + z)", color="tab:blue")
        for i, (key, label, color) in enumerate((("bpp_map_raw", "map, fixed width", "tab:gray"),
                                                 ("bpp_map_lzma", "map, LZMA (paper)", "tab:red"),
                                                 ("bpp_map_sent", "map, predictive LZMA (sent)", "tab:green"))):
            at = xs + (i - 0.5) * w
            ax.bar(at, y, w, color="tab:orange", label="DLRC y + z" if i == 0 else None)
            ax.bar(at, [r["dlrc"][key] for r in rs], w, bottom=y, color=color, label=f"+ {label}")
        ax.set_xticks(xs, [f"λ={r['lambda']:g}" for r in rs])
        ax.set_ylabel("bpp")
        ax.set_title(f"o_exp = {o:g}", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig7.tight_layout()
    return fig6, fig7


def run_rd(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    c, ov, d = scenario.codec, scenario.overlap, scenario.dlrc
    codecs = dict(zip(c.model_lambdas, load_codecs(c)))  # a missing model stops the run before it writes anything
    run.begin()
    # keyed by portable names (eo:... or file:NAME): the draws' seeds never depend on host paths
    scenes = {name: read_rgb(path) for name, path in scene_names(scenario.data.scenes).items()}
    stage(f"rd: {c.architecture}, {len(codecs)} model(s), {len(scenes)} scene(s), o_exp {ov.o_exp}, {ov.draws} draws")
    cfg = DLRCConfig(**d.core())
    rows = []
    jobs = [(l, o, s, k) for l in codecs for o in ov.o_exp for s in scenes for k in range(ov.draws)]
    for l, o, s, k in progress(jobs, desc="rd draws", unit="draw"):
        obs = seeded_draw(scenario.seed, ov, scenes, o, s, k)
        for r in evaluate_draw(codecs[l], scenes[s], obs, cfg):
            rows.append({"lambda": codecs[l].lmbda if codecs[l].lmbda is not None else float("nan"), "o_exp": o,
                         "scene": scene_label(s), "draw": k, "window": obs.window, **r})
    table = pd.DataFrame(rows)
    write_table(out_dir / "rd_patches.csv", table)
    results = summarise(table, ov.satellites)
    fig6, fig7 = rd_figures(results, c.architecture)
    write_figure(out_dir / "fig6_rd.png", fig6)
    write_figure(out_dir / "fig7_bpp_breakdown.png", fig7)
    summary = {"kind": "rd", "name": scenario.name, "model": c.architecture,
               "weights": {str(l): codecs[l].source for l in codecs}, "results": results}
    return run.finish(summary)


def format_rd_summary(summary: dict) -> str:
    rows = [{
        "λ": r["lambda"], "o_exp": r["o_exp"], "bpp base": f"{r['baseline']['bpp_total']:.4f}",
        "bpp DLRC": f"{r['dlrc']['bpp_total']:.4f}", "reduction": f"{100 * r['bpp_reduction']:.1f} %",
        "all bytes": f"{100 * r['bpp_reduction_sent']:.1f} %", "bound": f"{100 * r['geometric_bound']:.1f} %", "ΔPSNR [dB]": f"{r['delta_psnr']:+.3f}",
        "ΔMS-SSIM": f"{r['delta_ms_ssim']:+.4f}", "exact": r["decode_exact"],
    } for r in summary["results"]]
    return f"{summary['name']}: {summary['model']}\n" + pd.DataFrame(rows).to_string(index=False)
