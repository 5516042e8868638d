"""kind: rd — rate–distortion of a codec with and without DLRC (paper Figures 6 and 7).

For every λ and o_exp, every scene and every draw: N overlapping patches are
coded (a) independently by the codec (baseline: CompressAI's own compress /
decompress) and (b) with DLRC; the ground decodes both from bytes. Reported per
satellite and averaged: bpp (y, z, map raw, map LZMA, total), PSNR and MS-SSIM on
images quantised to 0–255, decode exactness and the geometric bound of the draw.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from edgespacecom.outputs import write_figure, write_table
from edgespacecom.progress import progress

from ..codecs.jpeg2000 import jpeg2000_point
from ..codecs.registry import load_codecs
from ..common.data import DataError, pixel_origins, read_rgb, scene_date, scene_label, scene_names, years_between
from ..common.imaging import patch_tensor, quality, to_uint8
from ..common.measures import strongest_anchor
from ..dlrc.alone import alone_stream
from ..dlrc.arbiter import reference_map
from ..dlrc.bitstream import DecodeBounds, pack_maps
from ..dlrc.onboard import CODEC_STAGES, DLRCConfig, encode_group
from ..dlrc.predict import side_calibration as predict_side_calibration
from ..dlrc.reconstructor import parse_round, reconstruct_parsed
from .capture import AXES, capture_group, describe_levels
from .overlap import draw_observation, window_for_overlap


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
            "bpp_header": 8 * (container - y_bytes - len(z_str)) / pixels, "psnr": psnr, "ms_ssim": msssim,
            "x_hat": x_hat}


def seeded_draw(seed: int, overlap, scenes: dict, o_exp: float, scene: str, draw: int):
    """Draw ``draw`` of the overlap protocol for ``scene`` (a key of ``scenes``) at ``o_exp``: the same
    for every model and every DLRC setting, seeded by the scenario seed, o_exp, draw and scene."""
    window = window_for_overlap(overlap.satellites, overlap.patch, o_exp, overlap.grid)
    rng = np.random.default_rng([seed, int(o_exp * 1000), draw, sorted(scenes).index(scene)])
    return draw_observation(scenes[scene], overlap.satellites, overlap.patch, window, rng, overlap.grid)


def per_satellite_times(timings_s: dict, satellites: int) -> dict:
    """On-board seconds per satellite of each stage: group sums / N, except the Arbiter,
    which every satellite runs in full on all the signatures."""
    return {f"time_{stage}_s": (v if stage == "arbiter" else v / satellites) for stage, v in timings_s.items()}


@torch.no_grad()
def evaluate_draw(codec, scene: np.ndarray, obs, cfg: DLRCConfig, baselines: dict | None = None) -> list[dict]:
    """Rows (one per satellite) for one draw of the crop protocol: baseline and DLRC side by side.

    ``baselines`` ({sat: baseline_codec_run(...)}) may be passed to reuse the codec-alone
    results across DLRC settings (the ablation); it is filled in when given empty.
    """
    images = {sat: patch_tensor(scene, y, x, obs.patch) for sat, (y, x) in enumerate(obs.offsets)}
    rows = evaluate_images(codec, images, cfg, baselines)
    for r in rows:
        r["geometric_bound"], r["o_exp_actual"] = obs.geometric_bound(), obs.o_exp
    return rows


def copy_counts(arb, latents: dict, intended: dict, sat) -> tuple[float, float]:
    """(fraction of ``sat``'s positions copied from another satellite, fraction copied from a vector
    that is not a valid quantisation of its own: some channel |ỹ − y| > 1/2, where its own
    rounding would differ). Both of all its positions."""
    y = latents[sat].y[0]
    C, H, W = y.shape
    owners = reference_map(arb, sat, H * W) // (H * W)
    copied = owners != sat
    far = (torch.abs(intended[sat] - y).reshape(C, -1).amax(dim=0) > 0.5 + 1e-6).numpy()
    return float(copied.mean()), float((copied & far).mean())


@torch.no_grad()
def evaluate_images(codec, images: dict, cfg: DLRCConfig, baselines: dict | None = None,
                    origins: dict | None = None, predicted: dict | None = None,
                    preferred: dict | None = None) -> list[dict]:
    """Rows (one per satellite) for one group {sat: image (1, 3, P, P)}: baseline and DLRC side by side.

    ``origins`` ({sat: tile origin on the shared grid [px]}) gives predict mode its references (else the
    Arbiter's matches; ``preferred``, {sat: peer}, the peer each takes its references from first).
    ``identical_to_codec_alone``: the ground's decoded image equals, pixel for pixel,
    what CompressAI's own decompress() makes of the codec-alone strings of the same capture.
    ``predicted``: where given, filled in predict mode with {sat: (H·W,) bool} of the positions coded as
    a residual (for figures)."""
    group = encode_group(codec, images, cfg, origins=origins if cfg.mode == "predict" else None,
                         preferred=preferred if cfg.mode == "predict" else None)
    if predicted is not None and group.predictions:
        predicted.update({s: pc.predicted for s, pc in group.predictions.items()})
    times = per_satellite_times(group.timings_s, len(images))
    sizes = {tuple(x.shape[-2:]) for x in images.values()}  # the ground knows the captures it expects
    parsed = {p.satellite: p for p in parse_round(codec, list(group.streams.values()),
                                                  bounds=DecodeBounds.expect(sizes, len(images)))}
    decoded = reconstruct_parsed(codec, list(parsed.values()))
    patch = next(iter(images.values())).shape[-1]
    pixels = patch**2
    n = len(images)
    map_sent_bits = 8 * sum(len(p.map_section()) for p in parsed.values())  # what the streams carry
    if cfg.mode == "predict":  # no assignment maps: each stream's reference map, as sent, is the only form
        map_lzma_bits = map_raw_bits = map_sent_bits
    else:
        map_lzma_bits = 8 * len(pack_maps(group.arbitration.assignment))  # all maps together, as the paper sends them
        map_raw_bits = group.arbitration.map_bits_raw()
    side_cal = {s: predict_side_calibration(p.side_string) if p.side_string else None for s, p in parsed.items()}
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
        if cfg.mode == "predict":  # nothing is copied: the positions coded as a residual instead
            pc = group.predictions[sat]
            copied, inexact = float(pc.predicted.mean()), 0.0
        else:
            copied, inexact = copy_counts(group.arbitration, group.latents, group.intended, sat)
        rows.append({
            "mode": cfg.mode, "calibration": cfg.calibration, "satellite": sat, "priority": p.priority,
            # predict mode: the stream carries the calibrated prediction (gain and bias in its side string)
            "calibrated": side_cal[sat] is not None,
            # ... and a registration of the references onto the capture, with its block side [px] (0: none)
            "registration_block_px": side_cal[sat].registration.block
            if side_cal[sat] is not None and side_cal[sat].registration is not None else 0,
            "baseline_bpp_y": base["bpp_y"], "baseline_bpp_z": base["bpp_z"], "baseline_bpp_total": base["bpp_total"],
            "baseline_psnr": base["psnr"], "baseline_ms_ssim": base["ms_ssim"],
            # predict mode: y holds the side string too (β, the flags' frequency, the rANS flags)
            "dlrc_bpp_y": 8 * (len(p.y_string) + len(p.side_string or b"")) / pixels,
            "dlrc_bpp_z": 8 * len(p.z_string) / pixels,
            # header, member and map lists, CRC: the container around the strings and maps
            "baseline_bpp_header": base["bpp_header"],
            "dlrc_bpp_header": 8 * (len(group.streams[sat]) - len(p.y_string) - len(p.side_string or b"")
                                    - len(p.z_string) - len(p.map_section())) / pixels,
            # the map cost is shared: all maps together, split evenly over the satellites
            "dlrc_bpp_map_raw": map_raw_bits / n / pixels, "dlrc_bpp_map_lzma": map_lzma_bits / n / pixels,
            "dlrc_bpp_map_sent": map_sent_bits / n / pixels,
            "dlrc_psnr": psnr, "dlrc_ms_ssim": msssim,
            "retained_fraction": p.retained / (p.y_shape[1] * p.y_shape[2]),
            "copied_fraction": copied, "copied_inexact_fraction": inexact,
            "decode_exact": bool(torch.equal(decoded[sat]["y_tilde"], group.intended[sat])),
            "identical_to_codec_alone": bool(torch.equal(decoded[sat]["x_hat"], base["x_hat"])),
            # bytes the satellite receives over the ISLs to code on board (not the downlink): the peers'
            # signatures (8 bytes a position each) where it arbitrates, or their tile origins (two u16)
            # on the shared grid; plus, for context codecs, the higher-priority ŷ vectors its context
            # needs, and in predict mode the higher-priority streams it decodes
            "exchange_bytes": ((4 if cfg.mode == "predict" and origins is not None else 8 * p.y_shape[1] * p.y_shape[2])
                               * (n - 1) + group.exchange_bytes.get(sat, 0)),
            # the residual's scale factor index; one per σ band, '/'-joined, where chosen by scale
            "predict_beta_index": _beta_label(group.predictions[sat].beta_index) if group.predictions else -1, **times,
        })
    for r in rows:
        r["dlrc_bpp_total"] = r["dlrc_bpp_y"] + r["dlrc_bpp_z"] + r["dlrc_bpp_map_sent"]
        # every byte each world sends: the totals above (the paper's payload) plus their containers
        r["baseline_bpp_sent"] = r["baseline_bpp_total"] + r["baseline_bpp_header"]
        r["dlrc_bpp_sent"] = r["dlrc_bpp_total"] + r["dlrc_bpp_header"]
        r["dlrc_bpp_total_paper_map"] = r["dlrc_bpp_y"] + r["dlrc_bpp_z"] + r["dlrc_bpp_map_lzma"]
    return rows


#: Columns that name a condition of the captures (dlrc_agents.studies.capture) and, for revisits, the date gap.
CONDITION_KEYS = ("axis", "level", "geo_grid")
#: Run-setting keys a table may hold beside the conditions: the DLRC mode (copy / predict) and predict
#: mode's calibration (none / gain_bias / registered).
SETTING_KEYS = ("mode", "calibration")


def setting_label(mode: str, calibration: str | None) -> str:
    """How tables and figures name a DLRC setting: its mode, and 'calibrated' or 'registered' for predict
    mode's calibrated predictions."""
    if calibration in (None, "none"):
        return mode
    return f"{mode}, registered" if calibration == "registered" else f"{mode}, calibrated"


def _setting(r: dict) -> str:
    """A result's DLRC setting as figures name it (:func:`setting_label`)."""
    return setting_label(r.get("mode", "copy"), r.get("calibration", "none"))


def _beta_label(beta) -> int | str:
    return "/".join(map(str, beta)) if isinstance(beta, tuple) else beta


def _finite_mean(values: pd.Series) -> float | None:
    v = values[np.isfinite(values.astype(float))]
    return float(v.mean()) if len(v) else None


def summarise(table: pd.DataFrame, satellites: int) -> list[dict]:
    """Averages per (λ, o_exp) and, where the table has them, per capture condition and date gap,
    over all satellites and draws, plus the lowest-priority satellite."""
    keys = ["lambda", "o_exp"] + [k for k in (*SETTING_KEYS, *CONDITION_KEYS, "date_gap_years") if k in table.columns]
    results = []
    for values, g in table.groupby(keys, sort=True):
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
                "copied_fraction": d["copied_fraction"].mean(),
                "copied_inexact_fraction": d["copied_inexact_fraction"].mean(),
            }
        key = dict(zip(keys, values))
        row = {"lambda": float(key["lambda"]), "o_exp": float(key["o_exp"]), **block(g),
               "geometric_bound": float(g.drop_duplicates(["scene", "draw"])["geometric_bound"].mean()),
               "decode_exact": bool(g["decode_exact"].all()),
               "identical_to_codec_alone": bool(g["identical_to_codec_alone"].all()),
               "exchange_bytes_per_satellite": float(g["exchange_bytes"].mean()),
               "lowest_priority": block(g[g["priority"] == satellites - 1]),
               "patches": int(len(g))}
        if "axis" in key:
            row.update(axis=key["axis"], level=float(key["level"]), geo_grid=bool(key["geo_grid"]),
                       perturbation=g["perturbation"].iloc[0],
                       resample_psnr=_finite_mean(g["resample_psnr"]),
                       geo_fill_fraction=float(g["geo_fill_fraction"].mean()),
                       # on-board cost of the shared grid against the codec's own encode, per satellite
                       geo_grid_time_s=float(g["geo_grid_time_s"].mean()),
                       geo_grid_cost=float(g["geo_grid_time_s"].sum() / g["encode_time_s"].sum()))
        if "date_gap_years" in key:
            row["date_gap_years"] = float(key["date_gap_years"])
        if "mode" in key:
            row["mode"] = key["mode"]
        if "calibration" in key:
            row["calibration"] = key["calibration"]
            # the share of predict-mode satellites whose stream carries the calibrated prediction
            row["calibrated_fraction"] = float(g["calibrated"].mean()) if "calibrated" in g.columns else 0.0
            if "time_calibration_s" in g.columns and key["calibration"] != "none":
                row["calibration_time_s"] = float(g["time_calibration_s"].fillna(0.0).mean())  # per satellite
        results.append(row)
    _relate_conditions(results)
    return results


def _relate_conditions(results: list[dict]) -> None:
    """Add what the shared grid recovers: ``saving_recovered`` (the condition's saving over the
    aligned captures' saving without the grid, same λ, o_exp and date gap) and, for grid rows,
    ``resample_bpp_change`` (codec-alone bpp on the grid tiles over that on the raw captures)."""
    def at(r, **kw):
        want = {"lambda": r["lambda"], "o_exp": r["o_exp"], "date_gap_years": r.get("date_gap_years"),
                "mode": r.get("mode"), "calibration": r.get("calibration"), **kw}
        for q in results:
            if all(q.get(k) == v for k, v in want.items()):
                return q
        return None

    for r in results:
        if "axis" not in r:
            continue
        ref = at(r, axis="aligned", geo_grid=False)
        r["saving_recovered"] = (r["bpp_reduction"] / ref["bpp_reduction"]
                                 if ref is not None and ref["bpp_reduction"] > 0 else None)
        raw = at(r, axis=r["axis"], level=r["level"], geo_grid=False) if r["geo_grid"] else None
        r["resample_bpp_change"] = (r["baseline"]["bpp_total"] / raw["baseline"]["bpp_total"] - 1.0
                                    if raw is not None else None)


def jpeg2000_reference(patches: list[tuple], cfg) -> pd.DataFrame:
    """JPEG 2000 (OpenJPEG, each patch coded alone, decoded from its codestream) at every target and
    MCT setting: one row a patch and setting, bpp from the whole codestream."""

    return pd.DataFrame([{"o_exp": o, "scene": scene, "draw": k, "satellite": sat, "mct": mct, "target_bpp": b,
                          **jpeg2000_point(image, b, mct)}
                         for o, scene, k, sat, image in progress(patches, desc="JPEG 2000 patches", unit="patch")
                         for mct in cfg.mct for b in cfg.bpp])


def jpeg2000_comparison(table: pd.DataFrame, j2k: pd.DataFrame) -> list[dict]:
    """Per o_exp: JPEG 2000's mean R–D points on the same patches, and BD-rate / BD-PSNR of the codec
    alone and of codec + DLRC (their λ ladders, every byte sent: strings, maps and containers)
    against JPEG 2000's stronger MCT setting (negative BD-rate: fewer bits than JPEG 2000)."""

    out = []
    by = ["o_exp"] + [k for k in SETTING_KEYS if k in table.columns]
    for key, g in table.groupby(by, sort=False):
        o = key[0]
        points = (j2k[j2k["o_exp"] == o].groupby(["mct", "target_bpp"], as_index=False)[["bpp", "psnr", "ms_ssim"]].mean())
        ladder = g.groupby("lambda", as_index=False)[["baseline_bpp_sent", "dlrc_bpp_sent", "baseline_psnr",
                                                      "dlrc_psnr"]].mean()
        row = {"o_exp": float(o), "points": points.to_dict("records"), "patches": int(len(g.drop_duplicates(
            ["scene", "draw", "satellite"])))}
        row.update({k: v for k, v in zip(by[1:], key[1:])})
        for world in ("baseline", "dlrc"):
            rate, dist, mct = strongest_anchor(points, ladder[f"{world}_bpp_sent"], ladder[f"{world}_psnr"])
            row[f"{world}_bd_rate_pct"], row[f"{world}_bd_psnr_db"], row[f"{world}_anchor_mct"] = rate, dist, mct
        out.append(row)
    return out


def rd_figures(results: list[dict], model: str, jpeg2000: pd.DataFrame | None = None):
    """Figure 6 (R–D, PSNR and MS-SSIM, baseline vs DLRC; JPEG 2000's mean points on the same patches
    when given) and Figure 7 (bpp breakdown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overlaps = sorted({r["o_exp"] for r in results}, reverse=True)
    fig6, axes = plt.subplots(2, len(overlaps), figsize=(4.6 * len(overlaps), 7), squeeze=False)
    for col, o in enumerate(overlaps):
        at_o = [r for r in results if r["o_exp"] == o]
        modes = list(dict.fromkeys(_setting(r) for r in at_o))
        rs = sorted([r for r in at_o if _setting(r) == modes[0]], key=lambda r: r["lambda"])
        for row, (metric, label) in enumerate((("psnr", "PSNR [dB]"), ("ms_ssim", "MS-SSIM"))):
            ax = axes[row, col]
            ax.plot([r["baseline"]["bpp_total"] for r in rs], [r["baseline"][metric] for r in rs], "o-", label=model)
            for mode in modes:
                rm = sorted([r for r in at_o if _setting(r) == mode], key=lambda r: r["lambda"])
                ax.plot([r["dlrc"]["bpp_total"] for r in rm], [r["dlrc"][metric] for r in rm], "s-",
                        label=f"{model} + DLRC" + (f" ({mode})" if len(modes) > 1 else ""))
            if jpeg2000 is not None and len(jpeg2000[jpeg2000["o_exp"] == o]):
                for mct, g in jpeg2000[jpeg2000["o_exp"] == o].groupby("mct"):
                    m = g.groupby("target_bpp")[["bpp", metric]].mean()
                    ax.plot(m["bpp"], m[metric], "^:", ms=4, label=f"JPEG 2000{' (MCT)' if mct else ''}")
                ax.set_xlim(right=1.15 * max(r["baseline"]["bpp_total"] for r in rs))
            ax.set_xlabel("bpp (total, LZMA map included)" if jpeg2000 is None
                          else "bpp (learned: y, z, map; JPEG 2000: its whole codestream)")
            ax.set_ylabel(label)
            ax.set_title(f"o_exp = {o:g}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig6.tight_layout()

    fig7, axes = plt.subplots(1, len(overlaps), figsize=(4.6 * len(overlaps), 4), squeeze=False)
    for col, o in enumerate(overlaps):
        first = results[0].get("mode", "copy") if results else "copy"  # the breakdown of the first mode
        rs = sorted([r for r in results if r["o_exp"] == o and _setting(r) == first], key=lambda r: r["lambda"])
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


def load_views(scenario) -> tuple[dict, dict, dict]:
    """({name: image}, {name: date}, {name: (row, column) of its pixel (0, 0) on the ground grid}) of
    the scenario's scenes; dates and grid places for revisit stacks only (empty otherwise).

    A revisit stack's files are placed by their georeferencing on one absolute grid (multiples of
    the pixel size in map coordinates): NAIP's dates differ by fractions of a pixel, which the
    captures keep (each satellite crops its own file) and the shared grid removes. The stack is
    cut to the rows and columns every file has."""
    names = scene_names(scenario.data.scenes)
    scenes = {name: read_rgb(path, scenario.data.bands) for name, path in names.items()}
    if scenario.overlap.source != "revisits":
        return scenes, {}, {}
    dates = {name: scene_date(name) for name in scenes}
    if len(scenes) < 2:
        raise DataError("overlap.source: revisits needs two or more dates in data.scenes")
    if len(set(dates.values())) < len(dates):
        raise DataError("data.scenes: two files of the revisit stack have the same date")
    places = pixel_origins(names)
    far = {n: p for n, p in places.items() if max(map(abs, p)) > 4 * scenario.overlap.grid}
    if far:
        raise DataError(f"data.scenes: {scene_label(next(iter(far)))} lies {next(iter(far.values()))} px from the "
                        "stack's grid origin; a revisit stack must cover the same ground")
    h = min(im.shape[0] for im in scenes.values())
    w = min(im.shape[1] for im in scenes.values())
    order = sorted(scenes, key=lambda n: dates[n])
    return ({n: scenes[n][:h, :w] for n in order}, {n: dates[n] for n in order}, {n: places[n] for n in order})


def draw_dates(names: list, satellites: int, rng: np.random.Generator) -> list:
    """Each satellite's date of a revisit stack: distinct while the stack has enough, seeded."""
    return [names[i] for i in rng.choice(len(names), satellites, replace=satellites > len(names))]


def run_rd(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    c, ov, d = scenario.codec, scenario.overlap, scenario.dlrc
    codecs = dict(zip(c.model_lambdas, load_codecs(c)))  # a missing model stops the run before it writes anything
    # keyed by portable names (eo:... or file:NAME): the draws' seeds never depend on host paths
    scenes, dates, places = load_views(scenario)
    run.begin()
    revisits = bool(dates)
    conditions = scenario.captures.conditions()
    geo_values = scenario.captures.geo_grid
    # a revisit stack draws its windows on its first date (co-registered: same ground, same no-data)
    draw_scenes = {"stack": next(iter(scenes.values()))} if revisits else scenes
    stage(f"rd: {c.architecture}, {len(codecs)} model(s), "
          + (f"a revisit stack of {len(scenes)} dates" if revisits else f"{len(scenes)} scene(s)")
          + f", o_exp {ov.o_exp}, {ov.draws} draws, {len(conditions)} capture condition(s) × geo_grid {geo_values}")
    cfgs = [replace(DLRCConfig(**d.core()), mode=m, calibration=k)
            for m in d.modes() for k in (d.calibrations() if m == "predict" else ["none"])]
    rows = []
    j2k_patches = []  # (o_exp, scene, draw, satellite, uint8 patch): the aligned captures of the first λ
    jobs = [(l, o, s, k) for l in codecs for o in ov.o_exp for s in draw_scenes for k in range(ov.draws)]
    for l, o, s, k in progress(jobs, desc="rd draws", unit="draw"):
        obs = seeded_draw(scenario.seed, ov, draw_scenes, o, s, k)
        if revisits:
            taken = draw_dates(list(scenes), ov.satellites,
                               np.random.default_rng([scenario.seed, int(o * 1000), k, 0xDA7E]))
            views = {sat: (scenes[n], places[n]) for sat, n in enumerate(taken)}
            gap = max(years_between(dates[a], dates[b]) for a in taken for b in taken)
        else:
            views = {sat: (scenes[s], (0.0, 0.0)) for sat in range(ov.satellites)}
        for ci, (axis, level, levels) in enumerate(conditions):
            for geo in geo_values:
                # the same perturbations with and without the grid: a paired comparison
                rng = np.random.default_rng([scenario.seed, int(o * 1000), k, sorted(draw_scenes).index(s), ci])
                group = capture_group(views, obs, levels, geo, ov.grid, rng)
                if scenario.jpeg2000.enabled and l == next(iter(codecs)) and ci == 0 and geo == geo_values[0]:
                    j2k_patches += [(o, scene_label(s), k, sat, to_uint8(x)) for sat, x in group.images.items()]
                baselines: dict = {}  # the codec alone once per capture group, shared by the modes
                for r in (r for cfg in cfgs
                          for r in evaluate_images(codecs[l], group.images, cfg, baselines, group.origins)):
                    sat = r["satellite"]
                    r.update(geometric_bound=obs.geometric_bound(), o_exp_actual=obs.o_exp, axis=axis, level=level,
                             geo_grid=geo, perturbation=describe_levels(levels),
                             resample_psnr=group.resample_psnr.get(sat, float("inf")),
                             geo_fill_fraction=group.fill.get(sat, 0.0), geo_grid_time_s=group.grid_time_s.get(sat, 0.0),
                             encode_time_s=sum(r[f"time_{st}_s"] for st in CODEC_STAGES))
                    if revisits:
                        r.update(date=dates[taken[sat]].isoformat(), scene_file=scene_label(taken[sat]),
                                 date_gap_years=round(gap))
                    rows.append({"lambda": codecs[l].lmbda if codecs[l].lmbda is not None else float("nan"),
                                 "o_exp": o, "scene": scene_label(s), "draw": k, "window": obs.window, **r})
    table = pd.DataFrame(rows)
    write_table(out_dir / "rd_patches.csv", table)
    results = summarise(table, ov.satellites)
    summary = {"kind": "rd", "name": scenario.name, "model": c.architecture, "source": ov.source,
               "weights": {str(l): codecs[l].source for l in codecs}, "results": results}
    if revisits:
        # pooled over the date gaps; the dates each file carries, and which split they belong to
        pooled = summarise(table.drop(columns=["date_gap_years"]), ov.satellites)
        summary["results_all_gaps"] = pooled
        summary["dates"] = {scene_label(n): dt.isoformat() for n, dt in dates.items()}
    reference = [r for r in (summary.get("results_all_gaps") or results)
                 if r.get("axis", "aligned") == conditions[0][0] and not r.get("geo_grid", False)] or results
    j2k = None
    if j2k_patches:
        stage(f"JPEG 2000 on the same {len(j2k_patches)} patches")
        j2k = jpeg2000_reference(j2k_patches, scenario.jpeg2000)
        write_table(out_dir / "jpeg2000_patches.csv", j2k)
        aligned = table if "axis" not in table.columns else table[(table["axis"] == conditions[0][0]) & ~table["geo_grid"]]
        summary["jpeg2000"] = jpeg2000_comparison(aligned, j2k)
    fig6, fig7 = rd_figures(reference, c.architecture, j2k)
    write_figure(out_dir / "fig6_rd.png", fig6)
    write_figure(out_dir / "fig7_bpp_breakdown.png", fig7)
    axes = list(dict.fromkeys(a for a, _, _ in conditions if a != "aligned"))
    for axis in axes:
        write_figure(out_dir / f"misreg_{axis}.png", condition_figure(results, axis, c.architecture))
    if axes:
        write_figure(out_dir / "misreg_overview.png", overview_figure(results, c.architecture))
    if revisits:
        write_figure(out_dir / "revisit_by_gap.png", gap_figure(results, c.architecture))
    return run.finish(summary)


def _series(results: list[dict]) -> dict:
    """Results grouped into plot lines: (λ, o_exp, geo_grid, mode) -> rows."""
    lines: dict = {}
    for r in results:
        lines.setdefault((r["lambda"], r["o_exp"], r.get("geo_grid", False), _setting(r)), []).append(r)
    return lines


def _mode_label(mode: str, modes: set) -> str:
    return f", {mode}" if len(modes) > 1 else ""


#: Line colours of the DLRC modes (copy: the paper's; predict: predictive coding).
MODE_COLOURS = {"copy": "tab:blue", "predict": "tab:green"}


def condition_figure(results: list[dict], axis: str, model: str):
    """Saving (payload and all bytes) and ΔPSNR against one perturbation axis, with and without the
    shared grid; the aligned captures are level 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    rows = [r for r in results if r.get("axis") in (axis, "aligned")]
    modes = {_setting(r) for r in rows}
    for (lmbda, o_exp, geo, mode), rs in sorted(_series(rows).items()):
        rs = sorted(rs, key=lambda r: r["level"])
        xs = [r["level"] for r in rs]
        style = "s-" if geo else "o--"
        label = f"λ={lmbda:g}, o_exp={o_exp:g}, {'shared grid' if geo else 'as captured'}{_mode_label(mode, modes)}"
        a1.plot(xs, [100 * r["bpp_reduction"] for r in rs], style, label=label)
        a2.plot(xs, [r["delta_psnr"] for r in rs], style, label=label)
    a1.set_ylabel("bpp saving [%]")
    a2.set_ylabel("ΔPSNR, DLRC − codec alone [dB]")
    for ax in (a1, a2):
        ax.set_xlabel(f"{axis}: {AXES.get(axis, 'combination number') if axis != 'combined' else 'combination'}",
                      fontsize=7)
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    fig.suptitle(f"{model}: DLRC against {axis}", fontsize=10)
    fig.tight_layout()
    return fig


def overview_figure(results: list[dict], model: str):
    """Every perturbation axis in one figure: the saving as captured and on the shared grid, against
    the axis's level (the aligned captures at level 0). Redraw it from a run's summary with
    ``overview_figure(json.load(open("summary.json"))["results"], model)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = [a for a in dict.fromkeys(r.get("axis") for r in results) if a not in (None, "aligned")]
    cols = min(4, len(axes_names))
    nrows = -(-len(axes_names) // cols)
    fig, grid = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.9 * nrows), squeeze=False, sharey=True)
    for k, axis in enumerate(axes_names):
        ax = grid[k // cols, k % cols]
        rows = [r for r in results if r.get("axis") in (axis, "aligned")]
        modes = {_setting(r) for r in results}
        for (lmbda, o_exp, geo, mode), rs in sorted(_series(rows).items()):
            rs = sorted(rs, key=lambda r: r["level"])
            colour = MODE_COLOURS.get(mode, "tab:gray") if len(modes) > 1 else ("tab:orange" if geo else "tab:blue")
            ax.plot([r["level"] for r in rs], [100 * r["bpp_reduction"] for r in rs], "s-" if geo else "o--",
                    color=colour, label=("shared grid" if geo else "as captured") + _mode_label(mode, modes))
        ax.set_title(axis, fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("level (combined: setting no.)" if axis == "combined" else "level", fontsize=7)
    for k in range(len(axes_names), nrows * cols):
        grid[k // cols, k % cols].axis("off")
    for row in grid:
        row[0].set_ylabel("bpp saving [%]")
    handles, labels = grid[0, 0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    grid[0, 0].legend(uniq.values(), uniq.keys(), fontsize=7)
    fig.suptitle(f"{model}: DLRC saving off the ideal protocol, with and without the shared grid"
                 + (" (copy: the paper's; predict: predictive coding)" if len({_setting(r) for r in results}) > 1 else ""),
                 fontsize=10)
    fig.tight_layout()
    return fig


def gap_figure(results: list[dict], model: str):
    """Saving and ΔPSNR against the date gap of revisit captures (aligned condition)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    aligned = [r for r in results if r.get("axis") == "aligned"]
    modes = {_setting(r) for r in aligned}
    for (lmbda, o_exp, geo, mode), rs in sorted(_series(aligned).items()):
        rs = sorted(rs, key=lambda r: r["date_gap_years"])
        xs = [r["date_gap_years"] for r in rs]
        label = f"λ={lmbda:g}, o_exp={o_exp:g}" + (", shared grid" if geo else "") + _mode_label(mode, modes)
        a1.plot(xs, [100 * r["bpp_reduction"] for r in rs], "o-", label=label)
        a2.plot(xs, [r["delta_psnr"] for r in rs], "o-", label=label)
    a1.set_ylabel("bpp saving [%]")
    a2.set_ylabel("ΔPSNR, DLRC − codec alone [dB]")
    for ax in (a1, a2):
        ax.set_xlabel("largest date gap in the group [years]")
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    fig.suptitle(f"{model}: DLRC on revisits", fontsize=10)
    fig.tight_layout()
    return fig


def format_rd_summary(summary: dict) -> str:
    rows = []
    for r in summary["results"]:
        row = {"λ": r["lambda"], "o_exp": r["o_exp"]}
        if "date_gap_years" in r:
            row["gap [y]"] = r["date_gap_years"]
        if "axis" in r:
            row.update({"capture": r["perturbation"], "grid": "shared" if r["geo_grid"] else "-"})
        if "mode" in r:
            row["mode"] = r["mode"]
        row.update({
            "bpp base": f"{r['baseline']['bpp_total']:.4f}", "bpp DLRC": f"{r['dlrc']['bpp_total']:.4f}",
            "reduction": f"{100 * r['bpp_reduction']:.1f} %", "all bytes": f"{100 * r['bpp_reduction_sent']:.1f} %",
            "bound": f"{100 * r['geometric_bound']:.1f} %", "ΔPSNR [dB]": f"{r['delta_psnr']:+.3f}",
            "ΔMS-SSIM": f"{r['delta_ms_ssim']:+.4f}", "exact": r["decode_exact"],
            "= alone": r.get("identical_to_codec_alone"), "ISL B/sat": f"{r.get('exchange_bytes_per_satellite', 0):.0f}"})
        rows.append(row)
    text = f"{summary['name']}: {summary['model']}\n" + pd.DataFrame(rows).to_string(index=False)
    for j in summary.get("jpeg2000", []):
        fmt = lambda v, unit: "n/a" if v is None else f"{v:+.2f}{unit}"  # noqa: E731
        text += (f"\nagainst JPEG 2000 on the same {j['patches']} patches, o_exp {j['o_exp']:g}"
                 + (f", DLRC {j['mode']}" if "mode" in j else "") + " (every byte sent): "
                 f"codec alone BD-rate {fmt(j['baseline_bd_rate_pct'], ' %')}, BD-PSNR {fmt(j['baseline_bd_psnr_db'], ' dB')}; "
                 f"+ DLRC BD-rate {fmt(j['dlrc_bd_rate_pct'], ' %')}, BD-PSNR {fmt(j['dlrc_bd_psnr_db'], ' dB')}")
    return text
