"""Typed scenario configuration: YAML in, validated pydantic objects out.

A scenario is validated completely before any work starts. Unknown keys and
impossible values are refused with a :class:`ScenarioError` whose message names
the offending dotted key (``constellation.walker.altitude_km: ...``).

Command-line overrides (``--set dotted.key=value``) are applied to the raw
mapping *before* validation, with the value parsed as YAML, so an override is
checked exactly like a key written in the file.

This module holds the simulator core's sections (orbits, links, network, sync, ground)
and the loading machinery; each scenario kind's own schema lives beside its runner and
is found through :mod:`edgespacecom.kinds`. Relative paths in a scenario (a TLE file, a
checkpoint, a scene) resolve against the folder of the scenario file
(:data:`ScenarioPath`), so a scenario runs the same from any working directory.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path
import os
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from scipy import constants


class ScenarioError(ValueError):
    """A scenario (file or override) that cannot be run; the message names the key."""


def existing_file(path: Path | None) -> Path | None:
    """A path that must name an existing file (checked after it was resolved)."""
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{path} does not exist")
    return path


def resolve_relative(value: str | Path, info: ValidationInfo | None) -> Path:
    """A path from a scenario, made absolute against the scenario file's folder (``base_dir`` in
    the validation context); absolute paths and ``~`` are kept as the user means them."""
    path = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir") if info is not None else None
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return Path(os.path.normpath(path))


#: A file path in a scenario: relative paths are taken from the scenario file's folder.
ScenarioPath = Annotated[Path, AfterValidator(resolve_relative)]
#: The same, for a file that must exist.
ScenarioFile = Annotated[Path, AfterValidator(resolve_relative), AfterValidator(existing_file)]


class Strict(BaseModel):
    """Base for every config object: unknown keys are errors, objects are frozen, and every number
    is finite (NaN and ±inf are refused; no key of a scenario means "unbounded" by them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ------------------------------------------------------------------ bounded YAML

MAX_SCENARIO_BYTES = 1_000_000  # a scenario file is a few KB; anything this large is not one
MAX_YAML_NODES = 100_000  # nodes after alias expansion ("billion laughs" stops here)
MAX_YAML_DEPTH = 64  # nesting of mappings and sequences


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message never echoes unbounded input."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def safe_yaml(text: str, source: str) -> Any:
    """YAML text parsed with bounds: at most MAX_YAML_NODES nodes once aliases are expanded and
    MAX_YAML_DEPTH levels of nesting, checked on the composed node graph before anything is
    constructed; an invalid value (an impossible date) is an error naming its line. PyYAML's
    safe loader has no such limits, which is why this walks the graph by hand."""
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when built with it
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML ({_shown(str(exc), 200)})") from None
    except RecursionError:
        raise ScenarioError(f"{source}: nesting deeper than {MAX_YAML_DEPTH} levels") from None
    if node is None:
        return None
    for count, (current, depth) in enumerate(_yaml_nodes(node), start=1):
        if count > MAX_YAML_NODES:
            raise ScenarioError(f"{source}: more than {MAX_YAML_NODES} YAML nodes once aliases are expanded")
        if depth > MAX_YAML_DEPTH:
            raise ScenarioError(f"{source}: line {current.start_mark.line + 1}: nesting deeper than "
                                f"{MAX_YAML_DEPTH} levels")
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except (ValueError, OverflowError, TypeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{source}: {_bad_scalar(node)}not a valid value ({_shown(str(exc), 200)})") from None
    finally:
        loader.dispose()


def _yaml_nodes(node):
    """Every node of a composed YAML graph with its depth (1: the root), aliases expanded each time
    they are met (a generator: a caller bounding the count stops it early)."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        yield current, depth
        if isinstance(current, yaml.MappingNode):
            stack.extend((child, depth + 1) for pair in current.value for child in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in current.value)


def _bad_scalar(node) -> str:
    """'line N: VALUE ' of the first scalar that does not construct (an impossible date), else ''."""
    for current, _ in _yaml_nodes(node):
        if isinstance(current, yaml.ScalarNode):
            probe = yaml.SafeLoader("")
            try:
                probe.construct_object(current, deep=True)
            except (ValueError, OverflowError, TypeError, yaml.YAMLError):
                return f"line {current.start_mark.line + 1}: {_shown(current.value)} is "
            finally:
                probe.dispose()
    return ""


# --------------------------------------------------------------------------- orbits


class WalkerConfig(Strict):
    """Walker-delta constellation i:T/P/F on circular orbits.

    Plane ``p`` (0..P-1) has right ascension of the ascending node ``p·360/P`` deg;
    satellite ``s`` (0..S-1, S = T/P) in plane ``p`` has mean anomaly
    ``s·360/S + p·F·360/T`` deg at the epoch.
    """

    inclination_deg: float = Field(53.0, ge=0.0, le=180.0, description="orbit inclination [deg]")
    total: int = Field(1000, ge=1, description="T, total number of satellites")
    planes: int = Field(20, ge=1, description="P, number of orbital planes")
    phasing: int = Field(1, ge=0, description="F, Walker phasing factor (0..P-1)")
    altitude_km: float = Field(
        550.0, gt=0.0, description="altitude above the equatorial radius (WGS-72) [km]"
    )
    raan_offset_deg: float = Field(0.0, description="RAAN of plane 0 [deg]")

    @field_validator("altitude_km")
    @classmethod
    def _above_atmosphere(cls, v: float) -> float:
        if v < 150.0:
            raise ValueError(f"altitude {v} km is inside the atmosphere; SGP4 needs >= 150 km")
        return v

    @model_validator(mode="after")
    def _walker_consistent(self) -> "WalkerConfig":
        if self.total % self.planes:
            raise ValueError(
                f"total ({self.total}) must be a multiple of planes ({self.planes})"
            )
        if self.phasing >= self.planes:
            raise ValueError(f"phasing F={self.phasing} must be < planes P={self.planes}")
        return self

    @property
    def per_plane(self) -> int:
        """S, satellites per plane."""
        return self.total // self.planes


class ConstellationConfig(Strict):
    """Either a Walker specification or a real TLE file (exactly one)."""

    walker: WalkerConfig | None = None
    tle_file: ScenarioFile | None = Field(None, description="two-line-element file, 2 or 3 lines a satellite "
                                                            "('#' comment lines and blank lines are skipped)")
    on_propagation_error: Literal["drop", "fail"] = Field(
        "drop", description="a satellite SGP4 cannot propagate over the window (decayed, stale elements): "
                            "'drop' leaves it out, saying which (the summary lists them); 'fail' refuses the run")

    @model_validator(mode="before")
    @classmethod
    def _default_walker(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("walker") is None and data.get("tle_file") is None:
            data = {**data, "walker": {}}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> "ConstellationConfig":
        if self.walker is not None and self.tle_file is not None:
            raise ValueError("give either 'walker' or 'tle_file', not both")
        return self


MAX_SAMPLES = 10_000_000  # ephemeris samples of one run (a year at 3 s); positions are held in memory


class TimeConfig(Strict):
    """Simulation window: ``start`` (UTC) and ``duration_h`` or ``end``; sampled every ``step_s``."""

    start: dt.datetime = Field(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    duration_h: float | None = Field(None, gt=0.0, description="window length [h]")
    end: dt.datetime | None = None
    step_s: float = Field(60.0, gt=0.0, description="sampling step [s]")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return v

    @model_validator(mode="after")
    def _window(self) -> "TimeConfig":
        if self.duration_h is not None and self.end is not None:
            raise ValueError("give either 'duration_h' or 'end', not both")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) is not after start ({self.start.isoformat()})")
        if self.duration_h is None and self.end is None:
            object.__setattr__(self, "duration_h", 12.0)
        ratio = self.duration_s / self.step_s
        if not math.isfinite(ratio) or ratio > MAX_SAMPLES:
            raise ValueError(f"the window over step_s gives {ratio:.3g} samples; at most {MAX_SAMPLES:.0e} "
                             "(a longer step or a shorter window)")
        if self.samples < 1:
            raise ValueError("the window holds no sample: step_s is longer than the window")
        return self

    @property
    def duration_s(self) -> float:
        if self.end is not None:
            return (self.end - self.start).total_seconds()
        return float(self.duration_h) * 3600.0

    @property
    def samples(self) -> int:
        """Number of sampling instants t_k = start + k·step, k = 0..samples-1 (end excluded)."""
        return int(round(self.duration_s / self.step_s))


class RegionConfig(Strict):
    """Region of interest: a ground point (geodetic, WGS-84)."""

    lat_deg: float = Field(30.5, ge=-90.0, le=90.0)
    lon_deg: float = Field(114.3, ge=-180.0, le=360.0)


class NamedRegionConfig(RegionConfig):
    """One of several regions observed at once (``regions:``)."""

    name: str | None = Field(None, description="label in the tables (default: lat_lon)")


class RegionGridConfig(Strict):
    """A grid of target points, optionally only those over land (a 0.5° land mask from GLOBE ships
    with the package)."""

    lat_deg: tuple[float, float] = Field((-60.0, 70.0), description="[first, last] latitude of the grid rows")
    lon_deg: tuple[float, float] = Field((-180.0, 180.0), description="[first, last) longitude of the columns")
    step_deg: float = Field(10.0, gt=0.0, le=90.0, description="grid spacing in latitude and longitude")
    land_only: bool = Field(True, description="keep only points over land")
    count: int | None = Field(None, ge=1, description="keep this many of the points, evenly spread through the "
                                                      "grid's order (rows from the south); None: all")

    @model_validator(mode="after")
    def _ranges(self) -> "RegionGridConfig":
        for key, (a, b), limit in (("lat_deg", self.lat_deg, 90.0), ("lon_deg", self.lon_deg, 360.0)):
            if not (-limit <= a <= b <= limit):
                raise ValueError(f"{key}: give [first, last] with first <= last, within ±{limit:g}")
        return self


class ParticipantsConfig(Strict):
    """How the N satellites taking part in a sync round are chosen at each sample.

    ``nearest``: the N satellites whose sub-satellite points are closest (great
    circle) to the region. ``compact``: the satellite nearest the region, plus the
    N-1 satellites closest to it in 3-D distance.
    """

    count: int = Field(8, ge=2, description="N, participating satellites (geometric: at most N per capture)")
    selection: Literal["nearest", "compact", "fixed_slots", "geometric"] = Field(
        "nearest", description="'nearest' / 'compact': chosen at each sample (a mission keeps the slots chosen "
                               "at the start); 'fixed_slots': the nearest at the start, kept (the paper's model); "
                               "'geometric': at each sample, those whose sensor footprint covers the target "
                               "(needs a sensor block; mission kind only)")


class SensorConfig(Strict):
    """An imaging sensor: a frame camera whose footprint decides who can image the target, and how much.

    Give the nadir footprint as ``swath_km`` or the camera's full field of view as ``fov_deg``.
    """

    swath_km: float | None = Field(None, gt=0.0, description="footprint width at nadir [km]")
    fov_deg: float | None = Field(None, gt=0.0, lt=120.0, description="full field of view (instead of swath_km) [deg]")
    gsd_m: float = Field(1.0, gt=0.0, description="ground sample distance at nadir [m]")
    max_off_nadir_deg: float = Field(30.0, ge=0.0, lt=70.0, description="largest boresight tilt from nadir [deg]")
    target_km: float = Field(10.0, gt=0.0, description="side of the square target area centred on the region [km]")
    min_coverage: float = Field(0.05, gt=0.0, le=1.0,
                                description="a satellite takes part when its footprint holds this fraction of the target")
    grid: int = Field(64, ge=8, le=512, description="raster cells a side of the target square (coverage, overlap)")

    @model_validator(mode="after")
    def _one_size(self) -> "SensorConfig":
        if (self.swath_km is None) == (self.fov_deg is None):
            raise ValueError("give exactly one of swath_km and fov_deg")
        return self


class ISLConfig(Strict):
    """Inter-satellite link availability."""

    d_max_km: float = Field(3000.0, gt=0.0, description="direct-link distance threshold [km]")
    earth_margin_km: float = Field(
        80.0, ge=0.0, description="the line of sight must clear the Earth's radius plus this [km]"
    )
    pattern: Literal["distance", "grid"] = Field(
        "distance", description="'distance': every pair within d_max with a clear line of sight (the paper); "
                                "'grid': +Grid, each satellite's fore and aft in-plane neighbours and its "
                                "neighbours with the same slot in the adjacent planes (four laser terminals; "
                                "a Walker constellation), each link kept while within d_max and clear")
    terminals: int | None = Field(
        None, ge=1, le=64, description="'distance': at most this many links a satellite, the shortest first "
                                       "(a link needs a free terminal at both ends); None: no limit")


class LinkConfig(Strict):
    """RF link budget (Table A1) mapped to an effective Shannon rate."""

    tx_power_dbm: float = Field(40.0, description="P_t [dBm]")
    tx_gain_dbi: float = Field(35.0, description="G_t [dBi]")
    rx_gain_dbi: float = Field(35.0, description="G_r [dBi]")
    frequency_ghz: float = Field(20.0, gt=0.0, description="carrier f [GHz]")
    bandwidth_mhz: float = Field(100.0, gt=0.0, description="B [MHz]")
    noise_temperature_k: float = Field(290.0, gt=0.0, description="T_n [K]")
    system_loss_db: float = Field(10.0, ge=0.0, description="L_sys [dB]")
    delta: float = Field(0.2, ge=0.0, lt=1.0, description="protocol-overhead factor δ")
    noise_model: Literal["thermal", "paper_as_printed"] = Field(
        "thermal",
        description="'thermal' = k·T·B; 'paper_as_printed' = the paper's -174+10log T+10log B",
    )


class NetworkConfig(Strict):
    """Per-hop, per-round and per-event costs (Table A1)."""

    speed_of_light_m_s: float = Field(constants.c, gt=0.0, description="c [m/s]")
    relay_s: float = Field(0.5e-3, ge=0.0, description="t_relay, per relay hop [s]")
    control_s: float = Field(0.03, ge=0.0, description="t_ctrl, per round per satellite [s]")
    setup_s: float = Field(5e-3, ge=0.0, description="C_setup, per link setup [s]")
    teardown_s: float = Field(2e-3, ge=0.0, description="C_teardown, per link teardown [s]")
    routing_objective: Literal["flow_delay", "path_delay"] = Field(
        "flow_delay",
        description="'flow_delay' minimises t_path+(H-1)t_relay; 'path_delay' (paper) minimises t_path",
    )


class SyncConfig(Strict):
    """Parallel-unicast signature exchange."""

    payloads_kib: list[float] = Field([2.0, 8.0, 32.0, 128.0], min_length=1)
    exchange: Literal["all_to_all", "priority_chain"] = Field(
        "all_to_all", description="'all_to_all': every participant sends its payload to every other at once (the "
                                  "paper's signature exchange, DLRC copy mode); 'priority_chain': DLRC predict mode, "
                                  "each participant (in selection order, the first highest) codes its stream after "
                                  "the streams of all higher-priority ones have reached it, then sends it to the "
                                  "lower-priority ones (the payload is the coded stream)")
    coding_s: float = Field(0.0, ge=0.0, description="priority_chain: on-board time a participant spends coding its "
                                                       "stream once its references have arrived [s]")

    @field_validator("payloads_kib")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        for p in v:
            if p <= 0:
                raise ValueError(f"payload {p} KiB must be > 0")
        if len(set(v)) != len(v):
            raise ValueError("payloads must be distinct")
        return v


class ComputeConfig(Strict):
    """Local execution resources."""

    workers: int = Field(0, ge=0, description="processes for the per-sample network computation (0: one per CPU core)")
    cache_dir: ScenarioPath | None = Field(None, description="position cache; default $EDGESPACECOM_CACHE or ~/.cache/edgespacecom")
    chunk_samples: int | None = Field(
        None, ge=1, description="sync: samples per time chunk, each propagated, routed and written on its own "
                                "(memory bounded by the chunk); None: the whole window if its positions fit in "
                                "256 MiB, else as many samples as do")
    executor: Literal["local", "dask"] = Field(
        "local", description="sync: where the chunks run: 'local' (this process, or a process pool of `workers`) "
                             "or 'dask' (a local Dask cluster of `workers` processes, or the one at `scheduler`)")
    scheduler: str | None = Field(None, description="sync, executor dask: an existing cluster's scheduler address "
                                                    "(tcp://HOST:PORT); None: a local cluster")
    cache_positions: Literal["auto", "always", "never"] = Field(
        "auto", description="sync: cache propagated positions per chunk; 'auto': when the window's positions "
                            "take at most 1 GiB (a 10,000-satellite day at 1 s would take 20 GB)")
    tables: Literal["csv", "parquet"] = Field(
        "csv", description="sync: format of the per-round, per-satellite and topology tables (flows are Parquet)")


# ------------------------------------------------------------------------- scenarios


#: The most points a sweep grid may expand to (the product of its axes' lengths, checked before expansion).
MAX_SWEEP_POINTS = 100_000


class SweepConfig(Strict):
    """A grid over any dotted keys: every combination is one run (see edgespacecom.sweep); at most
    :data:`MAX_SWEEP_POINTS` points."""

    grid: dict[str, list[Any]] = Field(..., min_length=1, description="dotted key -> values")
    x: str | None = Field(None, description="key on the plots' x axis (default: the first key)")

    @model_validator(mode="after")
    def _keys(self) -> "SweepConfig":
        for key, values in self.grid.items():
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"sweep.grid: bad key {_shown(key)}")
            if key.split(".")[0] in ("sweep", "kind", "name"):
                raise ValueError(f"sweep.grid: {key} cannot be swept")
            if not values:
                raise ValueError(f"sweep.grid.{key}: give at least one value")
        total = 1
        for values in self.grid.values():
            total *= len(values)
        if total > MAX_SWEEP_POINTS:
            raise ValueError(f"sweep.grid: {total} points ({' × '.join(str(len(v)) for v in self.grid.values())}), "
                             f"more than the {MAX_SWEEP_POINTS} a sweep may have")
        if self.x is not None and self.x not in self.grid:
            raise ValueError(f"sweep.x: {self.x} is not a key of sweep.grid")
        return self


class ScenarioBase(Strict):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, ge=0)
    sweep: SweepConfig | None = Field(None, description="run a grid of variants of this scenario")


class OutputsConfig(Strict):
    """What a run writes besides its tables, figures and summary."""

    view: bool = Field(True, description="write view.html: an interactive globe of the run (satellites, ISLs, "
                                         "participants, routes, stations, regions, captures) that opens offline")
    view_frames: int = Field(36, ge=1, le=500, description="instants the view shows, evenly spread over the run")


class NetworkScenario(ScenarioBase):
    """Fields shared by every scenario that flies a constellation."""

    constellation: ConstellationConfig = Field(default_factory=ConstellationConfig)
    time: TimeConfig = Field(default_factory=TimeConfig)
    region: RegionConfig = Field(default_factory=RegionConfig)
    participants: ParticipantsConfig = Field(default_factory=ParticipantsConfig)
    isl: ISLConfig = Field(default_factory=ISLConfig)
    link: LinkConfig = Field(default_factory=LinkConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    sensor: SensorConfig | None = Field(None, description="imaging sensor (participants.selection: geometric)")
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)

    @model_validator(mode="after")
    def _participants_fit(self) -> "NetworkScenario":
        geometric = self.participants.selection == "geometric"
        if geometric and self.sensor is None:
            raise ValueError("sensor: participants.selection 'geometric' needs a sensor block "
                             "(swath_km or fov_deg, gsd_m, max_off_nadir_deg, target_km)")
        if self.sensor is not None and not geometric:
            raise ValueError("sensor: used only with participants.selection: geometric")
        w = self.constellation.walker
        if self.isl.pattern == "grid" and w is None:
            raise ValueError("isl.pattern: 'grid' links planes and slots of a Walker constellation "
                             "(constellation.walker); a TLE file has no such structure")
        if self.isl.pattern == "grid" and self.isl.terminals is not None:
            raise ValueError("isl.terminals: the +Grid pattern has its four terminals; the limit is for 'distance'")
        if w is not None and self.participants.count > w.total:
            raise ValueError(
                f"participants.count: {self.participants.count} participants but the "
                f"constellation has only {w.total} satellites"
            )
        return self


class SyncScenario(NetworkScenario):
    """kind: sync — EdgeSpaceCom sync rounds over a time window (paper Appendix A)."""

    kind: Literal["sync"]
    sync: SyncConfig = Field(default_factory=SyncConfig)
    regions: list[NamedRegionConfig] | RegionGridConfig | None = Field(
        None, description="many regions observed at once, each with its own participants, their flows sharing "
                          "ISL capacity (edgespacecom.contention): a list of points, or a grid (over land); "
                          "None: the one `region`")

    @model_validator(mode="after")
    def _one_kind_of_region(self) -> "SyncScenario":
        if self.regions is not None and "region" in self.model_fields_set:
            raise ValueError("regions: give `region` (one) or `regions` (many), not both")
        if self.regions is not None and self.sync.exchange != "all_to_all":
            raise ValueError("sync.exchange: 'priority_chain' is modelled for one region (`region`), not `regions`")
        if isinstance(self.regions, list) and not self.regions:
            raise ValueError("regions: give at least one region")
        return self

    @model_validator(mode="after")
    def _fixed_group(self) -> "SyncScenario":
        if self.participants.selection == "geometric":
            raise ValueError("participants.selection: 'geometric' is for missions (captures come and go); "
                             "a sync scenario times a fixed-size group: use nearest, compact or fixed_slots")
        return self


# ----------------------------------------------------------------------- ground


class StationConfig(Strict):
    name: str = Field(..., min_length=1)
    lat_deg: float = Field(..., ge=-90.0, le=90.0)
    lon_deg: float = Field(..., ge=-180.0, le=180.0)
    min_elevation_deg: float = Field(10.0, ge=0.0, lt=90.0)
    altitude_m: float = 0.0


class AbstractDownlinkConfig(Strict):
    """The paper's downlink configuration: N_w windows a day of τ_w seconds."""

    windows_per_day: float = Field(..., gt=0.0, description="N_w")
    window_s: float = Field(..., gt=0.0, description="τ_w [s]")
    phase_s: float = Field(0.0, ge=0.0, description="start of the first window [s]")

    @model_validator(mode="after")
    def _fits_a_day(self) -> "AbstractDownlinkConfig":
        if self.windows_per_day * self.window_s > 86400.0:
            raise ValueError("windows_per_day × window_s exceeds a day")
        return self


DEFAULT_STATIONS = [
    {"name": "Svalbard", "lat_deg": 78.23, "lon_deg": 15.41},
    {"name": "Miyun", "lat_deg": 40.45, "lon_deg": 116.85},
    {"name": "Sanya", "lat_deg": 18.31, "lon_deg": 109.31},
]


class GroundConfig(Strict):
    """Ground segment: real stations (contact windows from the orbits) or an abstract downlink."""

    stations: list[StationConfig] | None = Field(default_factory=lambda: [StationConfig(**s) for s in DEFAULT_STATIONS])
    downlink: AbstractDownlinkConfig | None = None
    rate_bps: float = Field(100e6, gt=0.0, description="x, downlink rate [bit/s]")
    raw_bits_per_pixel: int = Field(24, ge=1, description="r_raw")

    @model_validator(mode="after")
    def _one_kind(self) -> "GroundConfig":
        if self.downlink is not None:
            if "stations" in self.model_fields_set and self.stations:
                raise ValueError("give either ground.stations or ground.downlink, not both")
            object.__setattr__(self, "stations", None)
        elif not self.stations:
            raise ValueError("give ground.stations or ground.downlink")
        return self


# ------------------------------------------------------------------------ loading


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of ``raw`` with each ``dotted.key=value`` applied (value parsed as YAML)."""
    if overrides and not isinstance(raw, dict):
        raise ScenarioError(f"--set: the scenario is not a YAML mapping (got {type(raw).__name__})")
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"--set {_shown(item)}: expected dotted.key=value")
        key, _, text = item.partition("=")
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ScenarioError(f"--set {_shown(item)}: empty key")
        try:
            value = safe_yaml(text, f"--set {key}") if text.strip() else None
        except ScenarioError as exc:
            raise ScenarioError(f"{exc} (value {_shown(text)})") from None
        node = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ScenarioError(f"--set {key}: {'.'.join(parts[:depth + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def _format_validation_error(source: str, exc: ValidationError) -> str:
    """One line: ``FILE: invalid scenario: key: message[; key: message ...]`` (the first three, and how
    many more)."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        given = err.get("input")
        suffix = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(given, dict) else f" (got {_shown(given)})"
        lines.append(f"{key}: {msg}{suffix}" if key else msg)
    shown = lines[:3] + ([f"and {len(lines) - 3} more"] if len(lines) > 3 else [])
    return f"{source}: invalid scenario: " + "; ".join(shown)  # one line, whatever the count


def validate_scenario(raw: Any, source: str = "scenario", base_dir: str | Path | None = None):
    """Validate a raw mapping against its kind's schema; raise :class:`ScenarioError` naming the bad keys.

    ``base_dir``: the folder relative paths are taken from (the scenario file's).
    """
    from .kinds import kinds

    known = kinds()
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping, got {type(raw).__name__}")
    if "kind" not in raw:
        raise ScenarioError(f"{source}: kind: missing (one of {', '.join(known)})")
    if not isinstance(raw["kind"], str) or raw["kind"] not in known:
        raise ScenarioError(f"{source}: kind: unknown kind {_shown(raw['kind'])} (one of {', '.join(known)})")
    schema = known[raw["kind"]].schema
    try:
        return schema.model_validate(raw, context={"base_dir": str(base_dir) if base_dir is not None else None})
    except ValidationError as exc:
        raise ScenarioError(_format_validation_error(source, exc)) from None
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def load_raw(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    if path.stat().st_size > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: {path.stat().st_size} bytes; a scenario file is at most {MAX_SCENARIO_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    raw = safe_yaml(text, str(path))
    return raw if raw is not None else {}


def load_scenario(path: str | Path, overrides: list[str] | None = None):
    """Read, override and validate a scenario file (relative paths are taken from its folder)."""
    raw = apply_overrides(load_raw(path), overrides or [])
    return validate_scenario(raw, source=str(path), base_dir=Path(path).resolve().parent)


def to_yaml(scenario: BaseModel) -> str:
    """The resolved config (after overrides and defaults) as YAML text."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
