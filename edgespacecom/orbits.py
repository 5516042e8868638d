"""Constellations and their orbits: Walker-delta or TLE, SGP4, Skyfield, cached positions.

Satellites are SGP4 element sets (``sgp4.api.Satrec``) wrapped as Skyfield
``EarthSatellite`` objects. Whole windows are propagated at once with
``sgp4.api.SatrecArray`` (C, vectorised over satellites and times) and rotated
from TEME to the Earth-fixed ITRS frame with Skyfield's frame rotations, so one
array ``positions[k, i, :]`` (km, ITRS) serves topology, routing and ground passes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sgp4.api import WGS72, Satrec, SatrecArray, jday
from sgp4.earth_gravity import wgs72
from skyfield.api import EarthSatellite, load
from skyfield.framelib import itrs
from skyfield.iokit import parse_tle_file
from skyfield.sgp4lib import TEME

from .cache import user_cache
from .config import ConstellationConfig, TimeConfig, WalkerConfig
from .outputs import atomic_write_bytes
from .progress import LOG

#: SGP4 runs on WGS-72 constants; Walker elements are built with the same ones.
MU_KM3_S2 = wgs72.mu
EARTH_RADIUS_KM = wgs72.radiusearthkm
#: Days from the SGP4 epoch origin (1949-12-31 00:00 UT) to the Unix epoch.
_SGP4_EPOCH0 = dt.datetime(1949, 12, 31, tzinfo=dt.timezone.utc)

_TIMESCALE = None


def timescale():
    """Skyfield timescale from the built-in tables (no download)."""
    global _TIMESCALE
    if _TIMESCALE is None:
        _TIMESCALE = load.timescale(builtin=True)
    return _TIMESCALE


# ------------------------------------------------------------------ pure functions


def mean_motion_rad_s(semi_major_axis_km: float, mu_km3_s2: float = MU_KM3_S2) -> float:
    """Keplerian mean motion n = sqrt(mu/a^3) [rad/s]."""
    return math.sqrt(mu_km3_s2 / semi_major_axis_km**3)


def orbital_period_s(altitude_km: float, radius_km: float = EARTH_RADIUS_KM, mu_km3_s2: float = MU_KM3_S2) -> float:
    """Keplerian period 2π·sqrt(a^3/mu) of a circular orbit at ``altitude_km`` [s]."""
    return 2.0 * math.pi / mean_motion_rad_s(radius_km + altitude_km, mu_km3_s2)


def walker_angles(cfg: WalkerConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-satellite (plane index, RAAN [deg], mean anomaly [deg]) of Walker i:T/P/F.

    Satellite index ``i = p·S + s``. RAAN = p·360/P (+ offset); mean anomaly
    M = s·360/S + p·F·360/T, so adjacent planes are phased by F·360/T degrees.
    """
    S = cfg.per_plane
    plane = np.repeat(np.arange(cfg.planes), S)
    slot = np.tile(np.arange(S), cfg.planes)
    raan = (plane * 360.0 / cfg.planes + cfg.raan_offset_deg) % 360.0
    anomaly = (slot * 360.0 / S + plane * cfg.phasing * 360.0 / cfg.total) % 360.0
    return plane, raan, anomaly


def walker_satrecs(cfg: WalkerConfig, epoch: dt.datetime) -> list[Satrec]:
    """SGP4 element sets of a Walker-delta constellation (circular, no drag) at ``epoch``."""
    _, raan, anomaly = walker_angles(cfg)
    n_rad_min = mean_motion_rad_s(EARTH_RADIUS_KM + cfg.altitude_km) * 60.0
    epoch_days = (epoch - _SGP4_EPOCH0).total_seconds() / 86400.0
    satrecs = []
    for i in range(cfg.total):
        sat = Satrec()
        sat.sgp4init(
            WGS72, "i", i + 1, epoch_days,
            0.0, 0.0, 0.0,  # bstar, ndot, nddot: no drag
            0.0,  # eccentricity: circular
            0.0,  # argument of perigee [rad]
            math.radians(cfg.inclination_deg),
            math.radians(anomaly[i]),
            n_rad_min,
            math.radians(raan[i]),
        )
        satrecs.append(sat)
    return satrecs


def tle_element_lines(text: bytes) -> bytes:
    """A TLE file without what is not an element set or a name: blank lines and ``#`` comment lines
    (catalogues and test sets carry them; parsed as they are they would become satellite names),
    and anything past column 69 of a line 1 or 2 (verification sets append their time spans there)."""
    kept = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        if line[:2] in (b"1 ", b"2 ") and len(line) > 69:
            line = line[:69]
        kept.append(line)
    return b"\n".join(kept) + b"\n"


def tle_satellites(path: Path) -> list[EarthSatellite]:
    """Skyfield satellites from a TLE file (2- or 3-line form, comments and blank lines skipped);
    a satellite without a name line is named by its catalogue number."""
    sats = list(parse_tle_file(io.BytesIO(tle_element_lines(Path(path).read_bytes())), timescale()))
    if not sats:
        raise ValueError(f"{path}: no TLE element set found")
    for sat in sats:
        if not sat.name:
            sat.name = f"NORAD {sat.model.satnum:05d}"
    return sats


def constellation_satellites(cfg: ConstellationConfig, epoch: dt.datetime) -> list[EarthSatellite]:
    """The constellation as Skyfield ``EarthSatellite`` objects (Walker or TLE)."""
    if cfg.tle_file is not None:
        return tle_satellites(cfg.tle_file)
    ts = timescale()
    return [
        EarthSatellite.from_satrec(sat, ts) for sat in walker_satrecs(cfg.walker, epoch)
    ]


def _sample_indices(time_cfg: TimeConfig, samples: range | np.ndarray | None) -> np.ndarray:
    """The sample numbers k asked for (all of the window when None)."""
    if samples is None:
        return np.arange(time_cfg.samples)
    if isinstance(samples, np.ndarray):  # propagate_itrs' one instant, twice
        return samples
    if samples.start < 0 or samples.stop > time_cfg.samples or samples.step != 1 or not len(samples):
        raise ValueError(f"samples {samples} outside the window's {time_cfg.samples}")
    return np.arange(samples.start, samples.stop)


def sample_times(time_cfg: TimeConfig, samples: range | None = None):
    """Skyfield ``Time`` array of the sampling instants t_k = start + k·step (k in ``samples``: all)."""
    ts = timescale()
    s = time_cfg.start
    seconds = s.second + s.microsecond * 1e-6 + _sample_indices(time_cfg, samples) * time_cfg.step_s
    return ts.utc(s.year, s.month, s.day, s.hour, s.minute, seconds)


def teme_to_itrs_matrices(times) -> np.ndarray:
    """Rotation matrices (K, 3, 3) taking TEME vectors to ITRS at each time."""
    r_teme = TEME.rotation_at(times)  # GCRS -> TEME, shape (3, 3, K)
    r_itrs = itrs.rotation_at(times)  # GCRS -> ITRS
    if r_teme.ndim == 2:
        r_teme, r_itrs = r_teme[..., None], r_itrs[..., None]
    return np.einsum("ijk,ljk->kil", r_itrs, r_teme)  # R_itrs · R_teme^T


def utc_julian_dates(time_cfg: TimeConfig, samples: range | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(whole, fraction) UTC Julian dates of the sampling instants (k in ``samples``: all), as SGP4
    takes them."""
    s = time_cfg.start
    jd0, fr0 = jday(s.year, s.month, s.day, s.hour, s.minute, s.second + s.microsecond * 1e-6)
    fr = fr0 + _sample_indices(time_cfg, samples) * time_cfg.step_s / 86400.0
    whole = np.floor(fr)
    return jd0 + whole, fr - whole


def propagate_itrs(satellites: list[EarthSatellite], time_cfg: TimeConfig, samples: range | None = None,
                   array: SatrecArray | None = None) -> np.ndarray:
    """Positions (K samples, N satellites, 3) in km, Earth-fixed ITRS, all at once (``samples``: a
    contiguous range of the window's samples, for a time chunk; None: the whole window).

    SGP4 (``SatrecArray``, vectorised in C; pass ``array`` to reuse one) gives TEME positions at the
    UTC instants; Skyfield's TEME and ITRS frames give the rotation to ITRS. A sample's position does
    not depend on which chunk computes it: the instants are the same numbers either way.
    """
    if samples is not None and len(samples) == 1:
        # one instant alone (a 1-element Time) gives rotations whose last bits differ from the same
        # instant computed among others (measured: Skyfield's series then take other numpy and BLAS
        # paths); two copies of it take the path every longer chunk takes
        return propagate_itrs(satellites, time_cfg, np.array([samples.start] * 2), array)[:1]
    array = SatrecArray([s.model for s in satellites]) if array is None else array
    jd, fr = utc_julian_dates(time_cfg, samples)
    err, r_teme, _ = array.sgp4(jd, fr)
    # a satellite SGP4 cannot propagate at some sample (decayed, stale elements) is NaN throughout
    failed = np.any(err != 0, axis=1) | ~np.isfinite(r_teme).all(axis=(1, 2))
    r_teme = np.where(failed[:, None, None], np.nan, r_teme)
    rot = teme_to_itrs_matrices(sample_times(time_cfg, samples))  # (K, 3, 3)
    return np.einsum("kij,nkj->kni", rot, r_teme)


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return user_cache("EDGESPACECOM_CACHE")


#: Bump when the propagation code changes, so stale caches are not reused.
_CACHE_VERSION = 2  # 2: satellites SGP4 cannot propagate are kept as NaN (left out on load)


def orbit_cache_key(cfg: ConstellationConfig, time_cfg: TimeConfig) -> str:
    """Hash of everything the positions depend on (elements or TLE bytes, time grid)."""
    payload = {
        "v": _CACHE_VERSION,
        "walker": cfg.walker.model_dump(mode="json") if cfg.walker else None,
        "tle_sha256": hashlib.sha256(Path(cfg.tle_file).read_bytes()).hexdigest() if cfg.tle_file else None,
        "start": time_cfg.start.isoformat(),
        "step_s": time_cfg.step_s,
        "samples": time_cfg.samples,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Ephemeris:
    """Sampled constellation: ``positions_km[k, i]`` in ITRS at ``times[k]``."""

    positions_km: np.ndarray  # (K, N, 3) float64, ITRS [km]
    names: list[str]
    times_utc: np.ndarray  # (K,) datetime64[ms]
    from_cache: bool
    dropped: tuple = ()  # names of satellites SGP4 could not propagate over the window (left out)
    source_index: tuple | None = None  # each kept satellite's index in the constellation (None: all kept)

    def constellation_index(self, i: int) -> int:
        """Index in :func:`constellation_satellites` of this ephemeris' satellite ``i``."""
        return i if self.source_index is None else self.source_index[i]

    @property
    def samples(self) -> int:
        return self.positions_km.shape[0]

    @property
    def satellites(self) -> int:
        return self.positions_km.shape[1]


def satellite_names(satellites: list[EarthSatellite]) -> list[str]:
    """Each satellite's name, or ``SAT-<index>`` where it has none."""
    return [s.name or f"SAT-{i:04d}" for i, s in enumerate(satellites)]


def sample_datetimes(time_cfg: TimeConfig) -> np.ndarray:
    start = np.datetime64(time_cfg.start.replace(tzinfo=None), "ms")
    step = np.timedelta64(int(round(time_cfg.step_s * 1000)), "ms")
    return start + np.arange(time_cfg.samples) * step


def load_ephemeris(cfg: ConstellationConfig, time_cfg: TimeConfig, cache_dir: Path | None = None) -> Ephemeris:
    """Propagate the whole window (or load it from the on-disk cache keyed by the orbital config)."""
    sats = constellation_satellites(cfg, time_cfg.start)
    names = satellite_names(sats)
    path = _cache_root(cache_dir) / f"positions-{orbit_cache_key(cfg, time_cfg)}.npy"
    times = sample_datetimes(time_cfg)
    pos = _read_cache(path, (time_cfg.samples, len(sats), 3))
    cached = pos is not None
    if not cached:
        pos = propagate_itrs(sats, time_cfg)
        _write_cache(path, pos)
    return _without_failed(Ephemeris(pos, names, times, from_cache=cached), cfg)


def _cache_versions() -> dict:
    """What cached positions depend on besides the configuration: the propagation code's version
    and the libraries that compute them."""
    import sgp4
    import skyfield

    return {"cache": _CACHE_VERSION, "sgp4": sgp4.__version__, "skyfield": skyfield.__version__,
            "numpy": np.__version__}


def _read_cache(path: Path, shape: tuple) -> np.ndarray | None:
    """Cached positions if ``path`` holds them intact: its sidecar ``.json`` records the file's sha256
    and the versions that made it, and both match; anything else (missing, flipped, truncated, another
    dtype or shape, made by other library versions, a folder in its place) is None, with one line
    saying why when a file was there."""
    meta_path = path.with_suffix(".json")
    if not path.exists() and not meta_path.exists():
        return None
    why = None
    try:
        data = path.read_bytes()
        meta = json.loads(meta_path.read_text())
        if meta.get("sha256") != hashlib.sha256(data).hexdigest():
            why = "its checksum does not match"
        elif meta.get("versions") != _cache_versions():
            why = "it was made by other library versions"
        else:
            pos = np.load(io.BytesIO(data), allow_pickle=False)
            if pos.dtype != np.float64 or pos.shape != shape:
                why = f"it holds {pos.dtype} {pos.shape}, not float64 {shape}"
            else:
                return pos
    except (OSError, ValueError, EOFError, json.JSONDecodeError, AttributeError) as exc:
        why = f"it cannot be read ({type(exc).__name__})"
    LOG.warning(f"orbits: position cache {path.name} not used ({why}); recomputing")
    return None


def _write_cache(path: Path, pos: np.ndarray) -> None:
    """Store positions and their sidecar (sha256, versions) atomically; a cache that cannot be written
    (read-only, a folder in its place, a full disk) is skipped with one line, the run goes on."""
    buf = io.BytesIO()
    np.save(buf, pos, allow_pickle=False)
    data = buf.getvalue()
    meta = {"sha256": hashlib.sha256(data).hexdigest(), "versions": _cache_versions()}
    try:
        atomic_write_bytes(path, data)
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, sort_keys=True).encode())
    except OSError as exc:
        LOG.warning(
            f"orbits: cannot write the position cache at {path} ({exc.strerror or type(exc).__name__}); "
            "running without it")


def _without_failed(eph: Ephemeris, cfg: ConstellationConfig) -> Ephemeris:
    """Leave out the satellites SGP4 could not propagate (NaN positions), saying which in one line, or
    refuse them by name under ``constellation.on_propagation_error: fail``."""
    bad = np.nonzero(~np.isfinite(eph.positions_km).all(axis=(0, 2)))[0]
    if not len(bad):
        return eph
    names = [eph.names[i] for i in bad]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    if cfg.on_propagation_error == "fail" or len(bad) == eph.satellites:
        raise ValueError(f"constellation: SGP4 cannot propagate {len(bad)} of {eph.satellites} satellite(s) over "
                         f"the window ({shown}: decayed or stale elements)"
                         + ("" if len(bad) == eph.satellites else "; on_propagation_error: drop leaves them out"))
    LOG.warning(
        f"orbits: {len(bad)} of {eph.satellites} satellites cannot be propagated over the window and are left out "
        f"({shown})")
    keep = np.setdiff1d(np.arange(eph.satellites), bad)
    return Ephemeris(eph.positions_km[:, keep], [eph.names[i] for i in keep], eph.times_utc, eph.from_cache,
                     tuple(names), tuple(int(i) for i in keep))
