"""Benchmark: the full Table A1 sync scenario, cold and warm, against the naive full-graph version.

    python benchmarks/bench_sync.py [--naive-every 12] [--out results/benchmarks]

1. Cold: ``edgespacecom run scenarios/paper_table_a1.yaml`` in a fresh process with an
   empty position cache (propagation included). 2. Warm: the same again (cache hit).
3. Naive baseline, measured in this run: for each sample, build the NetworkX graph of
   the whole constellation (every satellite, every ISL) and run Dijkstra from each of
   the 8 participants for each payload (:func:`route_participants_full`). It costs
   ~1 s a sample, so it is timed on every ``--naive-every``-th sample and scaled to
   720; the pruned routing is timed on the same samples and must give the same flows.

Figures are printed as ratios against the naive baseline and written to
``results/benchmarks/sync_benchmark.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgespacecom.config import load_scenario  # noqa: E402
from edgespacecom.orbits import load_ephemeris  # noqa: E402
from edgespacecom.outputs import atomic_write_text, write_json  # noqa: E402
from edgespacecom.participants import select_participants  # noqa: E402
from edgespacecom.routing import route_participants, route_participants_full  # noqa: E402
from edgespacecom.topology import isl_links  # noqa: E402

SCENARIO = ROOT / "scenarios" / "paper_table_a1.yaml"


def timed_cli_run(cache: Path, out: Path) -> float:
    env = {**os.environ, "EDGESPACECOM_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "edgespacecom", "run", str(SCENARIO), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--naive-every", type=int, default=12, help="time the naive version on every n-th sample")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold = timed_cli_run(tmp / "cache", tmp / "cold")
        warm = timed_cli_run(tmp / "cache", tmp / "warm")
        summary = json.loads((tmp / "warm" / "summary.json").read_text())
        sc = load_scenario(SCENARIO)
        eph = load_ephemeris(sc.constellation, sc.time, tmp / "cache")

    pos = eph.positions_km
    part = select_participants(pos, sc.region.lat_deg, sc.region.lon_deg, sc.participants.count)
    payloads = sc.sync.payloads_kib
    samples = list(range(0, eph.samples, args.naive_every))
    naive_s = pruned_s = 0.0
    for k in samples:
        links = isl_links(pos[k], sc.isl.d_max_km, sc.isl.earth_margin_km)
        t0 = time.perf_counter()
        full = route_participants_full(pos[k], links, part[k], payloads, sc.link, sc.network)
        t1 = time.perf_counter()
        fast = route_participants(pos[k], links, part[k], payloads, sc.link, sc.network)
        t2 = time.perf_counter()
        naive_s += t1 - t0
        pruned_s += t2 - t1
        np.testing.assert_allclose(fast.t_flow_s, full.t_flow_s, rtol=1e-12)
    naive_per_sample = naive_s / len(samples)
    pruned_per_sample = pruned_s / len(samples)
    naive_total = naive_per_sample * eph.samples

    result = {
        "command": "python benchmarks/bench_sync.py" + (f" --naive-every {args.naive_every}" if args.naive_every != 12 else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "scenario": "scenarios/paper_table_a1.yaml (1000 satellites, 720 samples, 8 participants, 4 payloads)",
        "cold_run_s": round(cold, 2),
        "warm_run_s": round(warm, 2),
        "in_process_wall_s": round(summary["wall_s"], 2),
        "naive_routing_per_sample_s": round(naive_per_sample, 4),
        "pruned_routing_per_sample_s": round(pruned_per_sample, 5),
        "naive_samples_timed": len(samples),
        "naive_full_run_estimate_s": round(naive_total, 1),
        "routing_speedup": round(naive_per_sample / pruned_per_sample, 1),
        "warm_run_vs_naive_routing_alone": round(naive_total / warm, 1),
        "targets": {"cold_run_s": 30, "warm_run_s": 10},
        "identical_flows_on_timed_samples": True,
    }
    lines = [
        "# Sync benchmark (Table A1 scenario)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}",
        "",
        "| measure | value | vs naive |",
        "|---|---|---|",
        f"| cold run (propagation + routing + outputs), fresh process | {cold:.1f} s (target ≤ 30 s) | {naive_total / cold:.1f}× faster |",
        f"| warm run (position cache hit), fresh process | {warm:.1f} s (target ≤ 10 s) | {naive_total / warm:.1f}× faster |",
        f"| naive routing alone: full graph + Dijkstra, per sample | {naive_per_sample * 1e3:.0f} ms | 1× |",
        f"| pruned routing, per sample (same samples, same flows) | {pruned_per_sample * 1e3:.2f} ms | {naive_per_sample / pruned_per_sample:.0f}× faster |",
        f"| naive routing alone, 720 samples (from {len(samples)} timed) | {naive_total:.0f} s | 1× |",
    ]
    table = "\n".join(lines)
    print(table)
    write_json(args.out / "sync_benchmark.json", result)
    atomic_write_text(args.out / "sync_benchmark.md", table + "\n")


if __name__ == "__main__":
    main()
