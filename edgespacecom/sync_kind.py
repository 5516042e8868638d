"""kind: sync — EdgeSpaceCom sync rounds over a time window (paper Appendix A)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import SyncScenario
from .kinds import ScenarioKind, register_kind


def sync_inputs(scenario) -> dict:
    tle = scenario.constellation.tle_file
    if tle is None:
        return {}
    if not tle.is_file():
        raise ValueError(f"constellation.tle_file: {tle} does not exist")
    return {f"tle:{tle.name}": tle}


def payload_label(payload_kib: float) -> str:
    """Payload as a summary key: 2.0 -> '2', 0.5 -> '0.5'."""
    return f"{payload_kib:g}"


def run_sync(scenario: SyncScenario, run) -> dict:  # run: edgespacecom.runner.RunContext
    """kind: sync — propagate, select participants, route, sync rounds; write tables, plots, summary."""
    from . import plots  # matplotlib and the routing stack: only when a sync scenario runs
    from .orbits import load_ephemeris
    from .outputs import write_figure, write_table
    from .participants import select_participants
    from .progress import stage
    from .sync import compute_sync_rounds, flows_table, per_round_table, per_satellite_table, topology_overhead

    out_dir = run.out_dir
    run.begin()

    eph = load_ephemeris(scenario.constellation, scenario.time, scenario.compute.cache_dir)
    stage(
        f"orbits: {eph.satellites} satellites x {eph.samples} samples "
        f"({'from cache' if eph.from_cache else 'propagated with SGP4'})"
    )
    if scenario.participants.count > eph.satellites:
        raise ValueError(
            f"participants.count: {scenario.participants.count} exceeds the {eph.satellites} satellites of the constellation"
        )
    reg, part_cfg = scenario.region, scenario.participants
    participants = select_participants(eph.positions_km, reg.lat_deg, reg.lon_deg, part_cfg.count, part_cfg.selection)
    stage(f"participants: {part_cfg.count} per sample ({part_cfg.selection}) over ({reg.lat_deg}, {reg.lon_deg})")

    payloads = scenario.sync.payloads_kib
    workers = run.workers(scenario.compute.workers)
    stage(f"routing: {len(payloads)} payloads, {workers} worker(s)")
    rounds = compute_sync_rounds(
        eph.positions_km, participants, payloads, scenario.isl, scenario.link, scenario.network, workers=workers,
        constellation=scenario.constellation,
    )

    stage("writing tables and plots")
    per_round = per_round_table(rounds, eph.times_utc, payloads, scenario.network)
    per_sat = per_satellite_table(rounds, eph.times_utc, eph.names, payloads)
    topo = per_round[per_round["payload_kib"] == payloads[0]][
        [
            "time_utc", "sample", "isl_links", "link_setups", "link_teardowns", "omega_topo_s",
            "participant_link_setups", "participant_link_teardowns", "omega_topo_participants_s",
        ]
    ]
    write_table(out_dir / "sync_rounds.csv", per_round)
    write_table(out_dir / "sync_satellites.csv", per_sat)
    write_table(out_dir / "topology.csv", topo)
    write_table(out_dir / "flows.parquet", flows_table(rounds, payloads))
    write_figure(out_dir / "fig10_sync_time.png", plots.sync_time_figure(per_round, title=scenario.name))
    write_figure(out_dir / "link_budget.png", plots.link_budget_figure(scenario.link, scenario.isl.d_max_km))
    write_figure(out_dir / "topology_events.png", plots.topology_figure(topo))

    t_round = rounds.t_round_s  # (K, P)
    t_sync = rounds.t_sync_s  # (K, P, n)
    omega = topology_overhead(rounds, scenario.network)
    omega_local = topology_overhead(rounds, scenario.network, scope="participants")
    summary = {
        "kind": "sync",
        "name": scenario.name,
        "satellites": eph.satellites,
        "satellites_dropped": list(eph.dropped),  # SGP4 could not propagate them over the window
        "samples": eph.samples,
        "participants": part_cfg.count,
        "noise_model": scenario.link.noise_model,
        "routing_objective": scenario.network.routing_objective,
        "sync_round_s": {
            payload_label(p): {"mean": float(np.mean(t_round[:, i])), "max": float(np.max(t_round[:, i]))}
            for i, p in enumerate(payloads)
        },
        "sync_satellite_s": {
            payload_label(p): {"mean": float(np.mean(t_sync[:, i])), "max": float(np.max(t_sync[:, i]))}
            for i, p in enumerate(payloads)
        },
        "hops_max": int(rounds.hops.max()),
        "unreachable_flows": int(np.sum(~np.isfinite(rounds.t_flow_s))),
        "isl_links_mean": float(rounds.n_links.mean()),
        "omega_topo_s": _stats(omega),
        "omega_topo_participants_s": _stats(omega_local),
        "routing_nodes_mean": float(rounds.routing_nodes.mean()),
        "orbit_cache_hit": eph.from_cache,
    }
    return run.finish(summary)


def _stats(values: np.ndarray) -> dict | None:
    """Mean and max over the defined (non-NaN) samples; None if there are none."""
    if not np.isfinite(values).any():
        return None
    return {"mean": float(np.nanmean(values)), "max": float(np.nanmax(values))}


def format_sync_summary(summary: dict) -> str:
    rows = [
        {
            "payload_KiB": key,
            "T_round mean [ms]": f"{v['mean'] * 1e3:.2f}",
            "T_round max [ms]": f"{v['max'] * 1e3:.2f}",
        }
        for key, v in summary["sync_round_s"].items()
    ]
    head = (
        f"{summary['name']}: {summary['satellites']} satellites, {summary['samples']} samples, "
        f"{summary['participants']} participants, noise model {summary['noise_model']}"
    )
    omega, local = summary.get("omega_topo_s"), summary.get("omega_topo_participants_s")
    tail = ""
    if omega:
        tail += f"Ω_topo (all ISLs) mean {omega['mean']:.3f} s, max {omega['max']:.3f} s; "
        tail += f"Ω_topo (participants' links) mean {local['mean'] * 1e3:.1f} ms, max {local['max'] * 1e3:.1f} ms; "
    tail += f"wall time {summary['wall_s']:.1f} s"
    return "\n".join([head, pd.DataFrame(rows).to_string(index=False), tail])


register_kind(ScenarioKind(
    name="sync", schema=SyncScenario, runner="edgespacecom.sync_kind:run_sync",
    formatter="edgespacecom.sync_kind:format_sync_summary", inputs=sync_inputs,
    sweep_y=("sync_round_s.2.mean",), description="EdgeSpaceCom sync rounds over a time window (Appendix A)"))
