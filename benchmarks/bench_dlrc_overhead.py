"""Benchmark: DLRC's on-board time against the codec's own encode (paper Table 2 and Figure 9).

    python benchmarks/bench_dlrc_overhead.py [--lambda 0.0067] [--patches 256 512 1024 2048]
                                             [--rotations dense hadamard] [--repeats 5] [--threads 1]
                                             [--out results/benchmarks]

For each patch size P, N = 8 patches are cut from one scene at o_exp = 2 (the
overlap protocol of the ``rd`` kind) and coded by DLRC (:func:`encode_group`, which
times every stage) and, as the baseline measured in the same run, by the codec alone
(CompressAI's ``compress``: g_a, h_a, z coding, h_s, y coding). Per satellite:

- codec stages (Table 2): analysis transform, entropy modelling (h_a, z coding, h_s),
  entropy coding (the Filter's gather + rANS of the retained ŷ);
- DLRC: Recognizer (k = 20 rounds) + Selector + Arbiter (every satellite runs the Arbiter
  on all N signature sets, so it is counted in full for each), for each ``--rotations``
  ('dense': Haar C × C matrices; 'hadamard': the fast form, see dlrc.recognizer).

The figures are ratios: DLRC time / baseline encode time (target ≤ 5 % at 256², k = 20);
every rotation's DLRC run and the baseline alternate within each repeat.
Each timing is the median over ``--repeats`` runs; torch and BLAS run on ``--threads``
threads (one core, as on a small on-board computer). Patches of 1024² and 2048² need a
scene of at least 2·P pixels a side at o_exp = 2: the test scene is mirrored out to that
size (timing only; no quality is measured here).

Results: ``results/benchmarks/dlrc_overhead.{json,md}`` and ``fig9_overhead.png``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.registry import load_codec  # noqa: E402
from dlrc_agents.common.data import read_rgb  # noqa: E402
from edgespacecom.datasets import registry  # noqa: E402
from dlrc_agents.dlrc.onboard import CODEC_STAGES, DLRC_STAGES, DLRCConfig, encode_group  # noqa: E402
from dlrc_agents.studies.overlap import draw_observation, window_for_overlap  # noqa: E402
from dlrc_agents.common.imaging import patch_tensor  # noqa: E402
from dlrc_agents.studies.rd import per_satellite_times
from edgespacecom.outputs import atomic_write_text, write_figure, write_json  # noqa: E402

SCENE = registry().path("eo:rgb/test/inria_bellingham1_1024.tif")  # shipped with the package


def scene_of_size(scene: np.ndarray, size: int) -> np.ndarray:
    """``scene`` mirrored out to at least size × size pixels."""
    pad_y, pad_x = max(0, size - scene.shape[0]), max(0, size - scene.shape[1])
    return np.pad(scene, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
SATELLITES = 8


@torch.no_grad()
def measure(codec, scene: np.ndarray, patch: int, repeats: int, rounds: int, rotations: list[str],
            seed: int = 0) -> list[dict]:
    """One row per rotation; the baseline encode is timed in the same loop and shared by the rows."""
    window = window_for_overlap(SATELLITES, patch, 2.0, 16)
    obs = draw_observation(scene, SATELLITES, patch, window, np.random.default_rng(seed), 16)
    images = {s: patch_tensor(scene, y, x, patch) for s, (y, x) in enumerate(obs.offsets)}
    cfgs = {r: DLRCConfig(rounds=rounds, rotation=r) for r in rotations}
    for cfg in cfgs.values():
        encode_group(codec, {0: images[0], 1: images[1]}, cfg)  # warm-up (allocator, rANS tables)
    stages: dict[str, dict[str, list[float]]] = {r: {} for r in rotations}
    baseline: list[float] = []
    groups = {}
    for _ in range(repeats):
        for r, cfg in cfgs.items():
            groups[r] = encode_group(codec, images, cfg)
            for k, v in per_satellite_times(groups[r].timings_s, SATELLITES).items():
                stages[r].setdefault(k.removeprefix("time_").removesuffix("_s"), []).append(v)
        started = time.perf_counter()
        for x in images.values():
            codec.model.compress(x)
        baseline.append((time.perf_counter() - started) / SATELLITES)
    base = statistics.median(baseline)
    rows = []
    for r in rotations:
        med = {k: statistics.median(v) for k, v in stages[r].items()}
        dlrc = sum(med[s] for s in DLRC_STAGES)
        arb = groups[r].arbitration
        rows.append({
            "patch": patch, "rotation": r, "baseline_encode_ms": 1e3 * base,
            **{f"{s}_ms": 1e3 * med[s] for s in CODEC_STAGES + DLRC_STAGES},
            "dlrc_ms": 1e3 * dlrc, "dlrc_over_baseline": dlrc / base,
            "retained_fraction": sum(len(v) for v in arb.retained.values()) / sum(a.size for a in arb.assignment.values()),
        })
    return rows


def figure(rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    first = [r for r in rows if r["rotation"] == rows[0]["rotation"]]
    p = [r["patch"] for r in first]
    axes[0].plot(p, [r["baseline_encode_ms"] for r in first], "o-", color="black", label="codec encode (baseline)")
    for rotation, marker in (("dense", "s-"), ("hadamard", "^-")):
        rs = [r for r in rows if r["rotation"] == rotation]
        if not rs:
            continue
        axes[0].plot([r["patch"] for r in rs], [r["dlrc_ms"] for r in rs], marker,
                     label=f"DLRC, {rotation} rotations (Recognizer + Selector + Arbiter)")
        axes[1].plot([r["patch"] for r in rs], [100 * r["dlrc_over_baseline"] for r in rs], marker, label=rotation)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("time per satellite [ms]")
    axes[1].axhline(5, ls="--", color="gray", lw=1)
    axes[1].legend(fontsize=8)
    axes[1].set_ylabel("DLRC / baseline encode [%]")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(p, [str(v) for v in p])
        ax.set_xlabel("patch size P [px]")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="bmshj2018-hyperprior")
    parser.add_argument("--lambda", dest="lmbda", type=float, default=0.0067)
    parser.add_argument("--patches", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights to use instead of the shipped ones")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rotations", nargs="+", choices=["dense", "hadamard"], default=["dense", "hadamard"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = load_codec(args.arch, lmbda=args.lmbda, checkpoint=args.checkpoint)
    base = read_rgb(SCENE)
    rows = []
    for patch in args.patches:
        scene = scene_of_size(base, 2 * patch)
        repeats = args.repeats if patch <= 512 else max(1, args.repeats // 3)
        for row in measure(codec, scene, patch, repeats, args.rounds, args.rotations):
            rows.append(row)
            print(f"P={patch:5d} {row['rotation']:8s}: baseline encode {row['baseline_encode_ms']:9.1f} ms/sat, "
                  f"DLRC {row['dlrc_ms']:8.2f} ms/sat = {100 * row['dlrc_over_baseline']:.1f} % of the baseline",
                  flush=True)
    result = {"architecture": args.arch, "lambda": args.lmbda, "weights": codec.source, "rounds": args.rounds,
              "satellites": SATELLITES, "threads": args.threads, "repeats": args.repeats,
              "cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "rows": rows,
              "command": "python benchmarks/bench_dlrc_overhead.py " + " ".join(sys.argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "dlrc_overhead.json", result)
    write_figure(args.out / "fig9_overhead.png", figure(rows))
    head = ("| P | rotation | baseline encode [ms] | analysis [ms] | entropy modelling [ms] | entropy coding [ms] | "
            "Recognizer [ms] | Selector [ms] | Arbiter [ms] | DLRC [ms] | DLRC / baseline |\n|" + "---|" * 11)
    lines = [f"| {r['patch']} | {r['rotation']} | {r['baseline_encode_ms']:.1f} | {r['analysis_transform_ms']:.1f} | "
             f"{r['entropy_modelling_ms']:.1f} | {r['entropy_coding_ms']:.1f} | {r['recognizer_ms']:.2f} | "
             f"{r['selector_ms']:.2f} | {r['arbiter_ms']:.2f} | {r['dlrc_ms']:.2f} | "
             f"{100 * r['dlrc_over_baseline']:.1f} % |" for r in rows]
    md = (f"# DLRC on-board overhead ({args.arch}, λ={args.lmbda:g}, k={args.rounds}, N={SATELLITES}, "
          f"{args.threads} thread(s))\n\nCommand: `{result['command']}`\n\nPer satellite, median of "
          f"{args.repeats} runs (a third as many for P ≥ 1024); baseline = CompressAI `compress()` in the same run.\n\n"
          + head + "\n" + "\n".join(lines) + "\n")
    atomic_write_text(args.out / "dlrc_overhead.md", md)
    print(md)


if __name__ == "__main__":
    main()
