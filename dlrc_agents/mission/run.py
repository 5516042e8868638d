"""Running a mission scenario: orbits, participants, ground plan, agents, tables and summary."""

from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from edgespacecom.outputs import write_figure, write_table

from ..codecs import load_codecs
from ..data import read_rgb, scene_names
from .agents import FlowOracle, Mission
from .decodable import decodability
from .ground import contact_plan_for
from .onboard import OnboardWork
from .summary import backlog_figure, gdown_figure, summarise_mission, sync_figure

# ---------------------------------------------------------------- runner


def _participants_at_start(eph, scenario) -> np.ndarray:
    from edgespacecom.participants import select_participants

    reg, part = scenario.region, scenario.participants
    return select_participants(eph.positions_km[:1], reg.lat_deg, reg.lon_deg, part.count, part.selection)[0]


def rounds_in_flight(scenario, codec) -> tuple[int, float]:
    """(rounds a pipelined satellite may hold at once, on-board memory of one [MB]): the capture
    (float32, 3·P²) and its latents y (M·(P/16)²) and z (N·(P/64)²); ``in_flight`` lowered to
    what ``in_flight_memory_mb`` holds (at least one)."""
    p = scenario.overlap.patch
    round_mb = 4 * (3 * p * p + codec.M * (p // 16) ** 2 + codec.N * (p // 64) ** 2) / 1e6
    mc = scenario.mission
    k = mc.in_flight
    if mc.in_flight_memory_mb is not None:
        k = max(1, min(k, int(mc.in_flight_memory_mb // round_mb)))
    return k, round_mb


def production_periods(table: pd.DataFrame, scenario) -> pd.DataFrame:
    """Each row's capture → stored time per patch as ``latency_per_patch_s``; ``time_per_patch_s`` is
    the production period: the same when serial, the time to the next capture when pipelined."""
    table = table.copy()
    table["latency_per_patch_s"] = (table["stored_s"] - table["captured_s"]) / table["rounds"]
    if scenario.mission.schedule == "pipelined" and scenario.mission.capture == "continuous":
        for _, g in table[table["world"] == "dlrc"].groupby("slot"):
            g = g.sort_values("captured_s")
            nxt = g["captured_s"].shift(-1)
            period = ((nxt - g["captured_s"]) / g["rounds"]).fillna(g["latency_per_patch_s"])
            table.loc[g.index, "time_per_patch_s"] = period
    return table


def run_mission(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.orbits import load_ephemeris
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    c = scenario.codec
    (codec,) = load_codecs(c)  # before any output is written
    run.begin()
    torch.set_num_threads(scenario.mission.threads)
    scenes = {name: read_rgb(path) for name, path in scene_names(scenario.data.scenes).items()}
    eph = load_ephemeris(scenario.constellation, scenario.time, scenario.compute.cache_dir)
    tc = scenario.time
    duration_s = (tc.end - tc.start).total_seconds() if tc.end is not None else tc.duration_h * 3600.0
    participants = _participants_at_start(eph, scenario)
    stage(f"mission: {eph.satellites} satellites, slots {participants.tolist()} over "
          f"({scenario.region.lat_deg}, {scenario.region.lon_deg}), {duration_s / 3600:.1f} h, "
          f"{c.architecture}, {scenario.mission.capture} capture")
    # 64-bit signature per latent position (+ the sender's queued bits, u64, under the backlog policy)
    payload_kib = (8 * (scenario.overlap.patch // 16) ** 2 + 8 * (scenario.dlrc.priority == "backlog")) / 1024.0
    flows = FlowOracle(eph.positions_km, participants, payload_kib, scenario, scenario.time.step_s)
    plan, contact_stats = contact_plan_for(scenario, eph, participants, duration_s)
    stage(f"ground: {'abstract downlink' if scenario.ground.downlink else 'stations'}, "
          f"{contact_stats['windows_per_day']:.1f} windows a day of {contact_stats['window_s_mean']:.0f} s mean")
    work = OnboardWork(codec, scenes, scenario)
    in_flight, round_mb = rounds_in_flight(scenario, codec)
    mission = Mission(scenario, codec, work, flows, plan, duration_s, in_flight)
    mission.run()
    stage(f"routing: signature flows ({payload_kib:g} KiB) routed at {len(flows.cache)} instants")
    table = production_periods(pd.DataFrame(mission.rows), scenario)
    deliveries = pd.DataFrame(mission.deliveries,
                              columns=["world", "slot", "first_round", "t_s", "bits", "raw_equivalent_bits"])
    ground = pd.DataFrame(mission.ground_rounds)
    backlog = pd.DataFrame([{"world": w, "slot": s, "t_s": t, "bits": b}
                            for (w, s), st in mission.storage.items() for t, b in st.history])
    sync = mission.sync_rounds()
    span_start = duration_s - 86400.0 if duration_s >= 2 * 86400.0 else 0.0
    decodable = decodability(pd.DataFrame(mission.stored), deliveries, scenario.ground.rate_bps, span_start)
    summary = summarise_mission(scenario, table, deliveries, ground, sync, contact_stats, mission, work, duration_s,
                                decodable)
    summary["slots"] = [int(p) for p in participants]
    summary["in_flight"] = {"rounds": mission.in_flight, "memory_mb": mission.in_flight * round_mb,
                            "memory_mb_per_round": round_mb}
    summary["weights"] = codec.source
    write_table(out_dir / "mission_rounds.csv", table)
    write_table(out_dir / "ground_rounds.csv", ground if len(ground) else pd.DataFrame(columns=["world", "round"]))
    write_table(out_dir / "decodable_items.csv", decodable[0])
    write_table(out_dir / "backlog.csv", backlog)
    write_figure(out_dir / "backlog.png", backlog_figure(backlog))
    write_table(out_dir / "sync_rounds.csv", sync)
    write_figure(out_dir / "sync_rounds.png", sync_figure(sync))
    write_figure(out_dir / "gdown.png", gdown_figure(summary))
    return run.finish(summary)
