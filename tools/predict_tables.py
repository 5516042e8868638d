"""Print the Markdown tables of docs/results.md's predictive-coding section from the runs' summaries.

    python tools/predict_tables.py [RESULTS_DIR]     (default: results/)

Reads misregistration_predict, revisit_naip_predict, revisit_landsat_peru_predict,
multiview_pleiades, calibration_predict and revisit_naip_calibration; every number in those tables
comes from their summary.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(root: Path, name: str) -> dict | None:
    path = root / name / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def misregistration(s: dict) -> str:
    rows = {}
    for r in s["results"]:
        rows.setdefault((r["axis"], r["level"]), {})[r["mode"]] = r
    aligned = {m: rows[("aligned", 0.0)][m]["bpp_reduction"] for m in rows[("aligned", 0.0)]}
    out = ["| capture (on the shared grid) | copy: saving | of aligned | predict: saving | of aligned | predict ≡ codec alone | ISL bytes a satellite receives (copy / predict) |",
           "|---|---|---|---|---|---|---|"]
    for (axis, level), by in rows.items():
        c, p = by["copy"], by["predict"]
        label = "aligned" if axis == "aligned" else (c["perturbation"] if axis == "combined" else f"{axis} {level:g}")
        out.append(f"| {label} | {100 * c['bpp_reduction']:.1f} % | {100 * c['bpp_reduction'] / aligned['copy']:.0f} % | "
                   f"{100 * p['bpp_reduction']:.1f} % | {100 * p['bpp_reduction'] / aligned['predict']:.0f} % | "
                   f"{p['identical_to_codec_alone']} | {c['exchange_bytes_per_satellite']:.0f} / {p['exchange_bytes_per_satellite']:.0f} |")
    return "\n".join(out)


def revisits(s: dict, by_gap: bool) -> str:
    out = ["| λ | o_exp | " + ("gap [y] | " if by_gap else "") + "grid | copy: saving | predict: saving | predict ΔPSNR | predict ≡ codec alone |",
           "|---|---|" + ("---|" if by_gap else "") + "---|---|---|---|---|"]
    rows = {}
    for r in (s["results"] if by_gap else s.get("results_all_gaps", s["results"])):
        key = (r["lambda"], r["o_exp"], r.get("date_gap_years") if by_gap else None, r["geo_grid"])
        rows.setdefault(key, {})[r["mode"]] = r
    for (l, o, gap, grid), by in sorted(rows.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2] or 0, kv[0][3])):
        c, p = by["copy"], by["predict"]
        out.append(f"| {l:g} | {o:g} | " + (f"{gap:g} | " if by_gap else "") + f"{'shared' if grid else 'as captured'} | "
                   f"{100 * c['bpp_reduction']:+.1f} % | {100 * p['bpp_reduction']:+.1f} % | {p['delta_psnr']:+.3f} | "
                   f"{p['identical_to_codec_alone']} |")
    return "\n".join(out)


def multiview(s: dict) -> str:
    out = ["| set | λ | mode | overlap | bpp alone | PSNR alone [dB] | bpp DLRC | saving | ΔPSNR | exact | ≡ alone | from a peer | inexact | ISL bytes | residual misregistration [px] (before correction) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in s["results"]:
        out.append(f"| {r['set']} | {r['lambda']:g} | {r.get('setting', r['mode'])} | {100 * r['overlap_fraction']:.0f} % | {r['baseline_bpp']:.4f} | "
                   f"{r['baseline_psnr']:.2f} | "
                   f"{r['dlrc_bpp']:.4f} | {100 * r['bpp_reduction']:+.1f} % | {r['delta_psnr']:+.3f} | {r['decode_exact']} | "
                   f"{r['identical_to_codec_alone']} | {100 * r['copied_fraction']:.0f} % | {100 * r['copied_inexact_fraction']:.0f} % | "
                   f"{r['exchange_bytes_per_satellite']:.0f} | {r['residual_misregistration_px']:.2f} "
                   f"({r['uncorrected_misregistration_px']:.1f}) |")
    return "\n".join(out)


def calibration(s: dict) -> str:
    """predict without and with dlrc.calibration, per capture condition (and λ, o_exp, date gap)."""
    out = ["| capture | λ | saving, none | saving, gain_bias | streams calibrated | ≡ codec alone (both) | calibration time a satellite [ms] |",
           "|---|---|---|---|---|---|---|"]
    rows: dict = {}
    for r in s.get("results_all_gaps", s["results"]):
        label = ("aligned" if r.get("axis") == "aligned" else r.get("perturbation") if r.get("axis") == "combined"
                 else f"{r.get('axis')} {r.get('level'):g}") if "axis" in r else "revisit"
        rows.setdefault((label, r["lambda"], r["o_exp"]), {})[r.get("calibration", "none")] = r
    for (label, lmbda, o), by in rows.items():
        if "none" not in by or "gain_bias" not in by:
            continue
        n, g = by["none"], by["gain_bias"]
        t = g.get("calibration_time_s")
        out.append(f"| {label} | {lmbda:g} | {100 * n['bpp_reduction']:.2f} % | {100 * g['bpp_reduction']:.2f} % | "
                   f"{100 * g.get('calibrated_fraction', 0.0):.0f} % | {n['identical_to_codec_alone'] and g['identical_to_codec_alone']} | "
                   + (f"{1e3 * t:.0f}" if t is not None else "–") + " |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("results")
    for name, fn in (("misregistration_predict", misregistration),
                     ("revisit_naip_predict", lambda s: revisits(s, False)),
                     ("revisit_landsat_peru_predict", lambda s: revisits(s, False)),
                     ("multiview_pleiades", multiview),
                     ("calibration_predict", calibration),
                     ("revisit_naip_calibration", calibration)):
        s = _load(root, name)
        print(f"### {name}\n\n" + (fn(s) if s else "(not run)") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
