"""Streaming time: a sync window in chunks of samples, in bounded memory, on any executor.

A window of K samples is cut into chunks of ``compute.chunk_samples`` samples. Each chunk is one
task (:func:`sync_chunk`): it propagates its own samples (plus the one before it), picks the
participants, builds the links, routes and tabulates, and returns its tables and the partial sums
the summary needs. Memory is bounded by the chunk (N satellites × chunk samples × 3 doubles of
positions, and its tables), never by the window.

Exactness across chunk borders: a chunk also propagates the sample before its first, so the link
set differences (Ω_topo, all ISLs and the participants' links) at its first sample are the same
numbers a single pass computes. Positions of a sample do not depend on the chunk that computes
them (the same instants, the same arithmetic), so every table is identical whatever the chunking.

Executors (:func:`run_chunks`): in this process, a local process pool, or Dask distributed (a local
cluster, or an existing one by its scheduler address). Results come back in any order; the driver
writes them in chunk order, appending to each table (:class:`TableAppender`: CSV or Parquet, a
temporary file renamed when complete), so the tables are byte-identical on every executor. At
most ``2 × workers`` chunks are in flight, which bounds the driver's memory too.

Position caching works per chunk: ``positions-<key>-<first>-<stop>.npy`` in the orbit cache.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

#: default chunk size: positions of one chunk within this many bytes (float64, N × samples × 3)
CHUNK_POSITION_BYTES = 256 * 2**20


def chunk_bounds(samples: int, chunk_samples: int) -> list[tuple[int, int]]:
    """[(start, stop)) of consecutive chunks covering ``samples`` samples."""
    if chunk_samples < 1:
        raise ValueError("compute.chunk_samples must be >= 1")
    return [(a, min(a + chunk_samples, samples)) for a in range(0, samples, chunk_samples)]


#: chunks a window is cut into at least (when it has that many samples), so a pool has work for
#: every worker; fixed, so the chunking, and with it every table's bytes, never depends on the workers
MIN_CHUNKS = 8


def default_chunk_samples(satellites: int, samples: int) -> int:
    """Samples a chunk holds when the scenario does not say: a :data:`MIN_CHUNKS`-th of the window,
    or fewer if that many samples' positions would not fit in :data:`CHUNK_POSITION_BYTES`."""
    per_sample = satellites * 3 * 8
    return max(1, min(-(-samples // MIN_CHUNKS), CHUNK_POSITION_BYTES // per_sample))


# ------------------------------------------------------------------ one chunk


@functools.lru_cache(maxsize=2)
def _built(constellation_json: str, epoch_iso: str):
    import datetime as dt

    from sgp4.api import SatrecArray

    from .config import ConstellationConfig
    from .orbits import constellation_satellites, satellite_names

    cfg = ConstellationConfig.model_validate_json(constellation_json)
    sats = constellation_satellites(cfg, dt.datetime.fromisoformat(epoch_iso))
    return sats, SatrecArray([s.model for s in sats]), satellite_names(sats)


def constellation(scenario):
    """(satellites, their SGP4 array, their names) of the scenario's constellation, built once per
    process (a 10,000-satellite Walker shell takes about a second to build)."""
    return _built(scenario.constellation.model_dump_json(), scenario.time.start.isoformat())


def chunk_positions(scenario, start: int, stop: int, cache_dir: Path | None) -> np.ndarray:
    """Positions (stop − start, N, 3) [km, ITRS] of samples [start, stop), from the per-chunk cache
    when it holds them."""
    from .orbits import _cache_root, _read_cache, _write_cache, orbit_cache_key, propagate_itrs

    sats, array, _ = constellation(scenario)
    path = None
    if cache_dir is not False:
        key = orbit_cache_key(scenario.constellation, scenario.time)
        path = _cache_root(cache_dir) / f"positions-{key}-{start}-{stop}.npy"
        cached = _read_cache(path, (stop - start, len(sats), 3))
        if cached is not None:
            return cached
    pos = propagate_itrs(sats, scenario.time, range(start, stop), array)
    if path is not None:
        _write_cache(path, pos)
    return pos


def usable_cache(cache_dir: Path | None | bool) -> Path | None | bool:
    """``cache_dir`` if the position cache can be written there, else False with one line saying why
    (checked once by the driver, not once per chunk in every worker)."""
    if cache_dir is False:
        return False
    from .orbits import _cache_root
    from .progress import LOG

    root = _cache_root(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        LOG.warning(f"orbits: cannot write the position cache at {root} "
                    f"({exc.strerror or type(exc).__name__}); running without it")
        return False
    return cache_dir


@dataclass
class ChunkResult:
    """What one chunk hands back: its tables (sample numbers of the window) and partial sums."""

    start: int
    stop: int
    tables: dict[str, pd.DataFrame]
    sums: dict[str, np.ndarray | float | int] = field(default_factory=dict)


def sync_chunk(scenario, start: int, stop: int, fixed_participants: np.ndarray | None = None,
               cache_dir: Path | None | bool = None, keep: np.ndarray | None = None) -> ChunkResult:
    """Sync rounds of samples [start, stop) of a ``sync`` scenario (with the sample before ``start``
    for the link events at ``start``), tabulated as the single-pass run tabulates them.

    ``keep``: the satellites that propagate over the whole window (None: all); ``cache_dir``: the
    position cache (None: the default one; False: none)."""
    from .orbits import sample_datetimes
    from .participants import select_participants
    from .sync import SyncRounds, _rounds_chunk, flows_table, per_round_table, per_satellite_table, topology_overhead
    from .topology import IslRule

    first = max(start - 1, 0)
    pos = chunk_positions(scenario, first, stop, cache_dir)
    if keep is not None:
        pos = pos[:, keep]
    reg, part = scenario.region, scenario.participants
    if fixed_participants is not None:
        participants = np.repeat(fixed_participants[None, :], stop - first, axis=0)
    else:
        participants = select_participants(pos, reg.lat_deg, reg.lon_deg, part.count, part.selection)
    payloads = list(scenario.sync.payloads_kib)
    rule = IslRule.from_config(scenario.isl, scenario.constellation)
    local_start = start - first
    out = _rounds_chunk((pos, participants, payloads, rule, scenario.link, scenario.network, local_start,
                         stop - first, False, False))
    rounds = SyncRounds(participants=participants[local_start:], control_s=scenario.network.control_s,
                        exchange=scenario.sync.exchange, coding_s=scenario.sync.coding_s, **out)
    times = sample_datetimes(scenario.time)[start:stop]
    names = constellation(scenario)[2]
    if keep is not None:
        names = [names[i] for i in keep]
    per_round = per_round_table(rounds, times, payloads, scenario.network)
    per_sat = per_satellite_table(rounds, times, names, payloads)
    flows = flows_table(rounds, payloads)
    for frame in (per_round, per_sat, flows):
        frame["sample"] += start
    omega = topology_overhead(rounds, scenario.network)
    omega_local = topology_overhead(rounds, scenario.network, scope="participants")
    t_round, t_sync = rounds.t_round_s, rounds.t_sync_s
    sums = {
        "samples": stop - start,
        "t_round_sum": t_round.sum(axis=0), "t_round_max": t_round.max(axis=0),
        "t_sync_sum": t_sync.sum(axis=(0, 2)), "t_sync_max": t_sync.max(axis=(0, 2)), "t_sync_count": t_sync[:, 0].size,
        "hops_max": int(rounds.hops.max()), "unreachable": int(np.sum(~np.isfinite(rounds.t_flow_s))),
        "links_sum": int(rounds.n_links.sum()), "routing_nodes_sum": int(rounds.routing_nodes.sum()),
        "omega": Stat.of(omega), "omega_local": Stat.of(omega_local),
    }
    return ChunkResult(start, stop, {"per_round": per_round, "per_satellite": per_sat, "flows": flows}, sums)


class Stat(NamedTuple):
    """(sum, max, count) of the defined entries of a quantity, merged across chunks."""

    sum: float
    max: float
    count: int

    @classmethod
    def of(cls, values: np.ndarray) -> "Stat":
        ok = np.isfinite(values)
        return cls(float(values[ok].sum()), float(values[ok].max()) if ok.any() else -math.inf, int(ok.sum()))

    def merge(self, other: "Stat") -> "Stat":
        return Stat(self.sum + other.sum, max(self.max, other.max), self.count + other.count)

    def summary(self) -> dict | None:
        """Mean and max, or None when nothing was defined."""
        return None if not self.count else {"mean": self.sum / self.count, "max": self.max}


def merge_sums(total: dict | None, part: dict) -> dict:
    """Two chunks' partial sums as one: a :class:`Stat` merges, a key ending in ``_max`` takes the
    larger (elementwise), anything else adds."""
    if total is None:
        return dict(part)
    out = {}
    for key, value in part.items():
        if isinstance(value, Stat):
            out[key] = total[key].merge(value)
        elif key.endswith("_max"):
            out[key] = np.maximum(total[key], value)
        else:
            out[key] = total[key] + value
    return out


def propagating_satellites(scenario, chunks: list[tuple[int, int]], cache_dir=None) -> np.ndarray | None:
    """Indices of the satellites SGP4 propagates over the whole window, chunk by chunk (a TLE
    catalogue's decayed or stale sets fail at some instants); None when all do. Each chunk's
    positions are the ones its task reads (the sample before it included), so with a position cache
    the tasks do not propagate them again. A Walker shell has no drag and never fails: not checked."""
    if scenario.constellation.tle_file is None:
        return None
    ok = np.ones(len(constellation(scenario)[0]), dtype=bool)
    for start, stop in chunks:
        ok &= np.isfinite(chunk_positions(scenario, max(start - 1, 0), stop, cache_dir)).all(axis=(0, 2))
    return None if ok.all() else np.nonzero(ok)[0]


# ------------------------------------------------------------------ executors


def run_chunks(task: Callable, chunks: list[tuple[int, int]], *, executor: str = "local", workers: int = 1,
               scheduler: str | None = None) -> Iterator:
    """Yield ``task(start, stop)`` for every chunk, in chunk order, computed in this process
    (``local``, one worker), a local process pool (``local``, several) or on Dask (``dask``: a local
    cluster of ``workers`` processes, or the cluster at ``scheduler``). At most 2 × workers chunks are
    in flight; results that arrive early wait for the ones before them."""
    if executor not in ("local", "dask"):
        raise ValueError(f"executor {executor!r}: one of local, dask")
    task = functools.partial(_one_blas_thread, task)
    if executor == "local" and workers <= 1:
        for start, stop in chunks:
            yield task(start, stop)
        return
    if executor == "dask":
        yield from _dask_chunks(task, chunks, workers, scheduler)
        return
    # fork where there is one (the core imports no threaded library; spawning re-imports everything)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from _in_order(lambda c: pool.submit(task, *c), chunks, 2 * workers,
                             lambda pending: wait(pending, return_when=FIRST_COMPLETED)[0])


def _one_blas_thread(task: Callable, start: int, stop: int):
    """``task(start, stop)`` with BLAS on one thread, whichever executor runs it. A threaded BLAS
    splits a product (Skyfield's nutation series, the participants' projection) by its thread
    count, so the last bits of the sums, and now and then a near-tie between two routes, would
    depend on where a chunk ran: a Dask worker has one BLAS thread, a pool worker as many as cores
    (measured: one sample in 3600 of the 10,000-satellite hour differed)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return task(start, stop)


def _in_order(submit: Callable, chunks: list, window: int, finished: Callable) -> Iterator:
    """Submit chunks keeping ``window`` in flight; yield their results in chunk order."""
    pending, ready, nxt, todo = {}, {}, 0, iter(enumerate(chunks))
    for i, chunk in todo:
        pending[submit(chunk)] = i
        if len(pending) >= window:
            break
    while pending or ready:
        while nxt in ready:
            yield ready.pop(nxt)
            nxt += 1
        if not pending:
            continue
        for future in finished(list(pending)):
            ready[pending.pop(future)] = future.result()
            for i, chunk in todo:
                pending[submit(chunk)] = i
                break


def _dask_chunks(task: Callable, chunks: list, workers: int, scheduler: str | None) -> Iterator:
    from distributed import Client, LocalCluster, wait as dask_wait

    from .progress import stage

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                               dashboard_address="127.0.0.1:0")
    client = Client(scheduler or cluster)
    try:
        stage(f"dask: scheduler {client.scheduler.address}, dashboard {client.dashboard_link}")
        window = 2 * max(1, sum(client.nthreads().values()))
        yield from _in_order(lambda c: client.submit(task, *c, pure=False), chunks, window,
                             lambda pending: dask_wait(pending, return_when="FIRST_COMPLETED").done)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------ appending tables


class TableAppender:
    """One table written chunk by chunk to ``path`` (.csv or .parquet): a temporary file in the same
    folder, renamed to ``path`` by :meth:`close`; :meth:`discard` removes it (an interrupted run
    leaves no table behind)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".parquet"):
            raise ValueError(f"{self.path}: tables are written as .csv or .parquet")
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self._writer = None
        self._handle = None

    def append(self, frame: pd.DataFrame) -> None:
        if self.path.suffix == ".csv":
            if self._handle is None:
                self._handle = open(self.tmp, "wb")
                self._handle.write(frame.iloc[:0].to_csv(index=False).encode())
            self._handle.write(frame.to_csv(index=False, header=False, float_format="%.9g").encode())
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema)
        self._writer.write_table(table.cast(self._writer.schema))

    def close(self) -> Path:
        if self._handle is not None:
            self._handle.close()
        if self._writer is not None:
            self._writer.close()
        if not self.tmp.exists():
            raise ValueError(f"{self.path}: no rows were written")
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        for closer in (self._handle, self._writer):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001 - best effort while unwinding
                pass
        self.tmp.unlink(missing_ok=True)


def write_in_order(results: Iterable[ChunkResult], appenders: dict[str, TableAppender],
                   on_result: Callable[[ChunkResult], None]) -> None:
    """Append each chunk's tables in order, then close every table (all or none are left)."""
    try:
        for result in results:
            for name, appender in appenders.items():
                appender.append(result.tables[name])
            on_result(result)
        for appender in appenders.values():
            appender.close()
    except BaseException:
        for appender in appenders.values():
            appender.discard()
        raise
