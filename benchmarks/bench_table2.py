"""Benchmark: the paper's Table 2 for four codecs side by side — the codec's encode broken down
(analysis transform, entropy modelling, entropy coding) and DLRC's on-board cost, time and memory.

    python benchmarks/bench_table2.py [--archs bmshj2018-hyperprior mbt2018 cheng2020-anchor elic2022-official]
                                      [--lambda 0.0067] [--patch 256] [--repeats 5] [--threads 1]
                                      [--out results/benchmarks]

Per codec, N = 8 patches of P² pixels at o_exp = 2 (the overlap protocol of the ``rd`` kind),
one CPU thread, median over ``--repeats`` runs, per satellite:

- baseline: CompressAI's own ``compress()`` of each patch, measured in the same run;
- the codec's breakdown, from the project's own encoder with nothing pruned (the same
  operations; for the context models the walk of :mod:`dlrc_agents.dlrc.context` with
  every position coded): analysis transform g_a; entropy modelling (h_a, z coding, h_s
  and, for context models, the context/parameter networks at every step); entropy coding
  (quantisation and rANS);
- DLRC: Recognizer (k = 20) + Selector + Arbiter (the Arbiter runs on all N signature sets
  at every satellite, so it counts in full), and the ratio DLRC / baseline encode;
- the DLRC encode itself (``encode_group``): with pruning, a context model computes
  parameters only where it codes, so its entropy modelling shrinks;
- memory: the codec's weights (fp32) plus the peak resident memory of one encode above what
  was resident before it, in a fresh process (Linux: freed heap returned with
  ``malloc_trim``, then VmHWM reset through ``/proc/self/clear_refs``; activations and
  workspaces), as the paper's "LIC Mem"; and DLRC's working
  set: the bytes of the arrays it allocates (rotations, projections, signatures of all N
  satellites, selection, assignment maps), computed from the arrays themselves.

Results: ``results/benchmarks/table2.{json,md}``. Weights: shipped or trained locally
(``make models-context``); a codec without weights is skipped with a note.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.registry import CodecError, load_codec  # noqa: E402
from dlrc_agents.common.data import read_rgb  # noqa: E402
from edgespacecom.datasets import registry  # noqa: E402
from dlrc_agents.dlrc.context import context_code, hyper_side, identity_plan  # noqa: E402
from dlrc_agents.codecs.hyperprior import hyper_analysis  # noqa: E402
from dlrc_agents.dlrc.filter import encode_positions  # noqa: E402
from dlrc_agents.dlrc.onboard import CODEC_STAGES, DLRC_STAGES, DLRCConfig, encode_group, timed  # noqa: E402
from dlrc_agents.dlrc.recognizer import Recognizer  # noqa: E402
from dlrc_agents.studies.overlap import draw_observation, window_for_overlap  # noqa: E402
from dlrc_agents.common.imaging import patch_tensor  # noqa: E402
from dlrc_agents.studies.rd import per_satellite_times
from edgespacecom.outputs import atomic_write_text, write_json  # noqa: E402

SCENE = registry().path("eo:rgb/test/inria_bellingham1_1024.tif")  # shipped with the package
SATELLITES = 8
MIB = 2**20
NAMES = {"bmshj2018-hyperprior": "BMSHJ", "mbt2018": "MBT", "cheng2020-anchor": "Cheng",
         "cheng2020-attn": "Cheng (attn)", "elic2022-official": "ELIC", "mbt2018-mean": "MBT-mean"}


@torch.no_grad()
def codec_breakdown(codec, x: torch.Tensor) -> dict:
    """Stage times [s] of the codec alone on one patch, through the project's encoder (nothing pruned)."""
    t: dict = {}
    with timed(t, "analysis_transform"):
        y = codec.model.g_a(x)
    _, _, H, W = y.shape
    if codec.family == "hyperprior":
        with timed(t, "entropy_modelling"):
            lat = hyper_analysis(codec.model, y, codec.means)
        with timed(t, "entropy_coding"):
            encode_positions(codec.model, lat, np.arange(H * W))
    else:
        with timed(t, "entropy_modelling"):
            lat = hyper_side(codec.model, codec.family, y)
        context_code(codec.model, codec.family, lat.side, identity_plan(H, W), y=y, timings=t)
    return t


def dlrc_working_set(codec, group, rounds: int) -> int:
    """Bytes of the arrays DLRC allocates for one satellite (see the module docstring)."""
    C = codec.M
    n = next(iter(group.arbitration.assignment.values())).size
    rotations = rounds * C * C * 4  # float32
    projections = rounds * C * n * 4  # the batched matmul's output
    signatures = SATELLITES * n * 8  # all satellites' uint64 signatures (Arbiter input)
    selection = 2 * n * 8  # representative + unique positions (int64)
    maps = sum(a.nbytes for a in group.arbitration.assignment.values()) + sum(
        r.nbytes for r in group.arbitration.retained.values())
    return rotations + projections + signatures + selection + maps


@torch.no_grad()
def measure(codec, scene: np.ndarray, patch: int, repeats: int, rounds: int) -> dict:
    window = window_for_overlap(SATELLITES, patch, 2.0, 16)
    obs = draw_observation(scene, SATELLITES, patch, window, np.random.default_rng(0), 16)
    images = {s: patch_tensor(scene, y, x, patch) for s, (y, x) in enumerate(obs.offsets)}
    cfg = DLRCConfig(rounds=rounds)
    Recognizer(codec.M, rounds, cfg.seed)  # build the rotations once (a one-off per mission)
    encode_group(codec, {0: images[0], 1: images[1]}, cfg)  # warm-up
    codec.model.compress(images[0])
    base, dlrc_stages, dlrc_encode, breakdown = [], {}, [], {}
    group = None
    for _ in range(repeats):
        started = time.perf_counter()
        for x in images.values():
            codec.model.compress(x)
        base.append((time.perf_counter() - started) / SATELLITES)
        sums: dict = {}
        for x in images.values():
            for k, v in codec_breakdown(codec, x).items():
                sums[k] = sums.get(k, 0.0) + v / SATELLITES
        for k, v in sums.items():
            breakdown.setdefault(k, []).append(v)
        started = time.perf_counter()
        group = encode_group(codec, images, cfg)
        per = per_satellite_times(group.timings_s, SATELLITES)
        dlrc_encode.append(sum(per[f"time_{s}_s"] for s in CODEC_STAGES + DLRC_STAGES))
        for s in DLRC_STAGES:
            dlrc_stages.setdefault(s, []).append(per[f"time_{s}_s"])
    med = lambda v: 1e3 * statistics.median(v)  # noqa: E731
    dlrc_ms = sum(med(dlrc_stages[s]) for s in DLRC_STAGES)
    base_ms = med(base)
    return {
        "baseline_encode_ms": base_ms,
        **{f"{s}_ms": med(breakdown[s]) for s in CODEC_STAGES},
        **{f"{s}_ms": med(dlrc_stages[s]) for s in DLRC_STAGES},
        "dlrc_ms": dlrc_ms, "dlrc_over_baseline": dlrc_ms / base_ms,
        "dlrc_encode_ms": med(dlrc_encode),
        "dlrc_working_set_mib": dlrc_working_set(codec, group, rounds) / MIB,
        "retained_fraction": sum(len(v) for v in group.arbitration.retained.values())
        / sum(a.size for a in group.arbitration.assignment.values()),
    }


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_probe(arch: str, lmbda: float, patch: int) -> dict:
    """In this (fresh) process: the resident-memory peak of one encode above what was resident
    before it (Linux: VmHWM reset through /proc/self/clear_refs), and the weights [MiB]."""
    torch.set_num_threads(1)
    codec = load_codec(arch, lmbda=lmbda)
    x = patch_tensor(read_rgb(SCENE), 0, 0, patch)
    weights = sum(p.numel() * p.element_size() for p in codec.model.parameters()) / MIB
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the encode cannot reuse it unseen
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak := current
    with torch.no_grad():
        codec.model.compress(x)
    return {"activations_mib": max(0, _status_kib("VmHWM") - before) / 1024, "weights_mib": weights}


def probe_in_fresh_process(arch: str, lmbda: float, patch: int) -> dict:
    """:func:`memory_probe` in a fresh interpreter, so no earlier encode left memory behind."""
    out = subprocess.run([sys.executable, __file__, "--probe", arch, "--lambda", str(lmbda), "--patch", str(patch)],
                         capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return {"lic_mem_mib": probe["weights_mib"] + probe["activations_mib"], **probe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=["bmshj2018-hyperprior", "mbt2018", "cheng2020-anchor",
                                                        "elic2022-official"])
    parser.add_argument("--lambda", dest="lmbda", type=float, default=0.0067)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(memory_probe(args.probe, args.lmbda, args.patch)))
        return
    torch.set_num_threads(args.threads)
    scene = read_rgb(SCENE)
    rows, skipped = [], {}
    for arch in args.archs:
        try:
            codec = load_codec(arch, lmbda=args.lmbda)
        except CodecError as exc:
            skipped[arch] = str(exc)
            print(f"{arch}: skipped: {exc}", flush=True)
            continue
        row = {"architecture": arch, "name": NAMES.get(arch, arch), "weights": codec.source,
               **measure(codec, scene, args.patch, args.repeats, args.rounds),
               **probe_in_fresh_process(arch, args.lmbda, args.patch)}
        rows.append(row)
        print(f"{arch}: baseline {row['baseline_encode_ms']:.1f} ms, DLRC +{row['dlrc_ms']:.2f} ms "
              f"({100 * row['dlrc_over_baseline']:.1f} %), LIC mem {row['lic_mem_mib']:.0f} MiB, "
              f"DLRC +{row['dlrc_working_set_mib']:.2f} MiB", flush=True)
    command = "python benchmarks/bench_table2.py " + " ".join(sys.argv[1:])
    result = {"lambda": args.lmbda, "patch": args.patch, "rounds": args.rounds, "satellites": SATELLITES,
              "threads": args.threads, "repeats": args.repeats, "cpu": platform.processor() or platform.machine(),
              "torch": torch.__version__, "rows": rows, "skipped": skipped, "command": command}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "table2.json", result)
    head = ("| codec | LIC time [ms] | LIC mem [MiB] | DLRC time [ms] | DLRC mem [MiB] | DLRC / LIC | "
            "analysis transform [ms] | entropy modelling [ms] | entropy coding [ms] | DLRC encode, pruned [ms] |\n|"
            + "---|" * 10)
    lines = [f"| {r['name']} | {r['baseline_encode_ms']:.1f} | {r['lic_mem_mib']:.0f} | +{r['dlrc_ms']:.2f} | "
             f"+{r['dlrc_working_set_mib']:.2f} | {100 * r['dlrc_over_baseline']:.1f} % | "
             f"{r['analysis_transform_ms']:.1f} | {r['entropy_modelling_ms']:.1f} | {r['entropy_coding_ms']:.1f} | "
             f"{r['dlrc_encode_ms']:.1f} |" for r in rows]
    notes = "".join(f"\n- {a}: skipped ({msg.split(': neither')[0]})" for a, msg in skipped.items())
    md = (f"# Table 2 on this CPU: codec encode breakdown and DLRC overhead (λ={args.lmbda:g}, P={args.patch}, "
          f"k={args.rounds}, N={SATELLITES}, {args.threads} thread(s))\n\nCommand: `{command}`\n\n"
          f"Per satellite, median of {args.repeats} runs. LIC time: CompressAI `compress()` in the same run; the "
          "breakdown: the project's encoder with nothing pruned. LIC mem: weights (fp32) + the peak resident memory "
          "of one encode above what was resident before it (fresh process). DLRC mem: bytes of DLRC's arrays. DLRC encode, pruned: "
          "codec + DLRC stages of `encode_group` (context models skip the parameters of pruned positions).\n\n"
          + head + "\n" + "\n".join(lines) + "\n" + notes + "\n")
    atomic_write_text(args.out / "table2.md", md)
    print(md)


if __name__ == "__main__":
    main()
