"""kind: dlrc_ablation — DLRC against the number of LSH rounds k and the representative strategy (paper Figure 12).

One model, the overlap protocol of the ``rd`` kind, and for every (k, strategy) the
same draws: bpp (LZMA map included), PSNR and MS-SSIM against the codec alone, the
fraction of latent vectors retained, decode exactness, and DLRC's on-board time per
satellite (Recognizer + Selector + Arbiter). The codec-alone results are computed
once per draw and shared by every setting.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from edgespacecom.progress import progress

from edgespacecom.outputs import write_figure, write_table

from dlrc_agents.codecs.registry import load_codecs
from dlrc_agents.common.data import read_rgb, scene_label, scene_names
from dlrc_agents.dlrc.onboard import DLRC_STAGES, DLRCConfig
from dlrc_agents.studies.rd import evaluate_draw, seeded_draw


def summarise_ablation(table: pd.DataFrame) -> list[dict]:
    out = []
    for (k, strategy, o_exp), g in table.groupby(["rounds", "representative", "o_exp"], sort=True):
        base, dl = g["baseline_bpp_total"].mean(), g["dlrc_bpp_total"].mean()
        out.append({
            "rounds": int(k), "representative": strategy, "o_exp": float(o_exp),
            "baseline_bpp": base, "dlrc_bpp": dl, "bpp_reduction": 1.0 - dl / base,
            "bpp_reduction_sent": 1.0 - g["dlrc_bpp_sent"].mean() / g["baseline_bpp_sent"].mean(),
            "baseline_psnr": g["baseline_psnr"].mean(), "dlrc_psnr": g["dlrc_psnr"].mean(),
            "delta_psnr": g["dlrc_psnr"].mean() - g["baseline_psnr"].mean(),
            "delta_ms_ssim": g["dlrc_ms_ssim"].mean() - g["baseline_ms_ssim"].mean(),
            "retained_fraction": g["retained_fraction"].mean(),
            "geometric_bound": float(g.drop_duplicates(["scene", "draw"])["geometric_bound"].mean()),
            "dlrc_time_ms": 1e3 * g["dlrc_time_s"].mean(),
            "decode_exact": bool(g["decode_exact"].all()),
        })
    return out


def ablation_figure(results: list[dict], model: str):
    """Figure 12: bpp reduction, ΔPSNR and DLRC time against k, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (("bpp_reduction", "bpp reduction [%]", 100.0), ("delta_psnr", "ΔPSNR vs codec alone [dB]", 1.0),
              ("dlrc_time_ms", "DLRC time per satellite [ms]", 1.0))
    for strategy in sorted({r["representative"] for r in results}):
        for o_exp in sorted({r["o_exp"] for r in results}, reverse=True):
            rs = sorted([r for r in results if r["representative"] == strategy and r["o_exp"] == o_exp],
                        key=lambda r: r["rounds"])
            label = f"{strategy.capitalize()} Rep., o_exp={o_exp:g}"
            for ax, (key, _, scale) in zip(axes, panels):
                ax.plot([r["rounds"] for r in rs], [scale * r[key] for r in rs], "o-", label=label)
    for ax, (_, ylabel, _) in zip(axes, panels):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (hash rounds)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"DLRC ablation on {model}", fontsize=10)
    fig.tight_layout()
    return fig


def run_ablation(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    c, ov, a = scenario.codec, scenario.overlap, scenario.ablation
    (codec,) = load_codecs(c)  # weights first: a missing model stops the run before it writes anything
    run.begin()
    # keyed by portable names (eo:... or file:NAME): the draws' seeds never depend on host paths
    scenes = {name: read_rgb(path) for name, path in scene_names(scenario.data.scenes).items()}
    base_cfg = DLRCConfig(**scenario.dlrc.core())
    settings = [(k, s) for k in a.rounds for s in a.representative]
    stage(f"dlrc_ablation: {c.architecture}, {len(settings)} settings × {len(scenes)} scene(s) × "
          f"{len(ov.o_exp)} o_exp × {ov.draws} draws")
    rows = []
    jobs = [(o, s, d) for o in ov.o_exp for s in sorted(scenes) for d in range(ov.draws)]
    with progress(total=len(jobs) * len(settings), desc="ablation", unit="run") as bar:
        for o, s, d in jobs:
            obs = seeded_draw(scenario.seed, ov, scenes, o, s, d)
            baselines: dict = {}
            for k, strategy in settings:
                cfg = replace(base_cfg, rounds=k, representative=strategy)
                for r in evaluate_draw(codec, scenes[s], obs, cfg, baselines):
                    r["dlrc_time_s"] = sum(r.get(f"time_{st}_s", 0.0) for st in DLRC_STAGES)
                    rows.append({"rounds": k, "representative": strategy, "o_exp": o, "scene": scene_label(s),
                                 "draw": d, **r})
                bar.update(1)
    table = pd.DataFrame(rows)
    write_table(out_dir / "ablation_patches.csv", table)
    results = summarise_ablation(table)
    write_table(out_dir / "ablation.csv", pd.DataFrame(results))
    write_figure(out_dir / "fig12_ablation.png", ablation_figure(results, c.architecture))
    summary = {"kind": "dlrc_ablation", "name": scenario.name, "model": c.architecture, "weights": codec.source,
               "lambda": codec.lmbda, "results": results}
    return run.finish(summary)


def format_ablation_summary(summary: dict) -> str:
    rows = [{
        "k": r["rounds"], "strategy": r["representative"], "o_exp": r["o_exp"],
        "reduction": f"{100 * r['bpp_reduction']:.1f} %", "ΔPSNR [dB]": f"{r['delta_psnr']:+.3f}",
        "ΔMS-SSIM": f"{r['delta_ms_ssim']:+.4f}", "retained": f"{100 * r['retained_fraction']:.1f} %",
        "DLRC [ms/sat]": f"{r['dlrc_time_ms']:.2f}", "exact": r["decode_exact"],
    } for r in summary["results"]]
    return f"{summary['name']}: {summary['model']} λ={summary['lambda']}\n" + pd.DataFrame(rows).to_string(index=False)
