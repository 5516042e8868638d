"""Benchmark: the full Table A1 sync scenario, cold and warm, against the naive full-graph version.

    python benchmarks/bench_sync.py [--repeats 3] [--naive-every 12] [--out results/benchmarks]

1. Cold: ``edgespacecom run scenarios/paper_table_a1.yaml`` in a fresh process with an
   empty position cache (propagation included). 2. Warm: the same again (cache hit).
   Each is the median of ``--repeats`` fresh processes. 3. The same warm run with
   ``link.noise_model=paper_as_printed`` (links ~10⁴ times slower: the pruned router's
   bound then covers the whole constellation), as a ratio to the thermal run.
4. Where a warm run's time goes: the run profiled in this process (cProfile), by stage.
5. Naive baseline, measured in this run: for each sample, build the NetworkX graph of
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


def timed_cli_run(cache: Path, out: Path, *overrides: str) -> float:
    env = {**os.environ, "EDGESPACECOM_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "edgespacecom", "run", str(SCENARIO), "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


#: Stages of a run, by the functions that do them (cumulative profile time).
STAGES = {
    "propagation or position cache": "stream.py:chunk_positions",
    "participants": "participants.py:select_participants",
    "ISL search (k-d tree, line of sight)": "topology.py:isl_links",
    "link events (Ω_topo)": "topology.py:link_events",
    "routing (link budget, pruned Dijkstra)": "routing.py:route_participants",
    "tables (building them)": "sync.py:per_round_table|per_satellite_table|flows_table",
    "tables (writing CSV, Parquet)": "stream.py:append|close;outputs.py:write_table",
    "figures (PNG)": "outputs.py:write_figure",
}


def profile_warm_run(cache: Path, out: Path) -> dict:
    """Seconds per stage of one warm run profiled in this process, and the whole run."""
    import cProfile
    import pstats

    from edgespacecom.cli import main as cli_main

    os.environ["EDGESPACECOM_CACHE"] = str(cache)
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.runcall(cli_main, ["-q", "run", str(SCENARIO), "--out", str(out), "--workers", "1"])
    total = time.perf_counter() - start
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    out_s = {}
    for stage, where in STAGES.items():  # "module:name|name;module:name"
        out_s[stage] = 0.0
        for part in where.split(";"):
            module, names = part.split(":")
            out_s[stage] += sum(v[3] for (f, _, n), v in stats.items() if f.endswith(module) and n in names.split("|"))
    return {"in_process_run_s": total, "stages_s": out_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--naive-every", type=int, default=12, help="time the naive version on every n-th sample")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per timing (median)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        colds, warms, printed = [], [], []
        for r in range(args.repeats):
            colds.append(timed_cli_run(tmp / f"cache{r}", tmp / "cold"))  # an empty cache each time
            warms.append(timed_cli_run(tmp / f"cache{r}", tmp / "warm"))
            printed.append(timed_cli_run(tmp / f"cache{r}", tmp / "printed", "link.noise_model=paper_as_printed"))
        cold, warm, slow = (float(np.median(v)) for v in (colds, warms, printed))
        summary = json.loads((tmp / "warm" / "summary.json").read_text())
        profile = profile_warm_run(tmp / "cache0", tmp / "profiled")
        sc = load_scenario(SCENARIO)
        eph = load_ephemeris(sc.constellation, sc.time, tmp / "cache0")

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
        "cold_runs_s": [round(v, 2) for v in colds],
        "warm_runs_s": [round(v, 2) for v in warms],
        "printed_noise_warm_run_s": round(slow, 2),
        "printed_noise_runs_s": [round(v, 2) for v in printed],
        "printed_over_thermal": round(slow / warm, 2),
        "profile": {"in_process_run_s": round(profile["in_process_run_s"], 2),
                    "stages_s": {k: round(v, 3) for k, v in profile["stages_s"].items()}},
        "in_process_wall_s": round(summary["wall_s"], 2),
        "naive_routing_per_sample_s": round(naive_per_sample, 4),
        "pruned_routing_per_sample_s": round(pruned_per_sample, 5),
        "naive_samples_timed": len(samples),
        "naive_full_run_estimate_s": round(naive_total, 1),
        "routing_speedup": round(naive_per_sample / pruned_per_sample, 1),
        "warm_run_vs_naive_routing_alone": round(naive_total / warm, 1),
        "targets": {"cold_run_s": 8, "warm_run_s": 5, "printed_over_thermal": 3},
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
        f"| cold run (propagation + routing + outputs), fresh process, median of {args.repeats} | {cold:.1f} s (target ≤ 8 s) | {naive_total / cold:.1f}× faster |",
        f"| warm run (position cache hit), fresh process, median of {args.repeats} | {warm:.1f} s (target ≤ 5 s) | {naive_total / warm:.1f}× faster |",
        f"| warm run, `link.noise_model=paper_as_printed`, median of {args.repeats} | {slow:.1f} s = {slow / warm:.2f}× the thermal run (target ≤ 3×) | |",
        f"| naive routing alone: full graph + Dijkstra, per sample | {naive_per_sample * 1e3:.0f} ms | 1× |",
        f"| pruned routing, per sample (same samples, same flows) | {pruned_per_sample * 1e3:.2f} ms | {naive_per_sample / pruned_per_sample:.0f}× faster |",
        f"| naive routing alone, 720 samples (from {len(samples)} timed) | {naive_total:.0f} s | 1× |",
    ]
    lines += ["", f"Where a warm run's time goes (profiled in process, 1 worker: {profile['in_process_run_s']:.2f} s; "
              "the rest of a fresh process is Python start-up and imports):", "", "| stage | s |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in profile["stages_s"].items()]
    table = "\n".join(lines)
    print(table)
    write_json(args.out / "sync_benchmark.json", result)
    atomic_write_text(args.out / "sync_benchmark.md", table + "\n")


if __name__ == "__main__":
    main()
