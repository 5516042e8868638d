"""Schemas of the DLRC scenario kinds (rd, codec_rd, dlrc_ablation, mission).

They extend the simulator core's sections (:mod:`edgespacecom.config`) with the codec,
the input scenes, the overlap protocol, DLRC's settings and the mission's on-board model;
:mod:`dlrc_agents.kinds` registers them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgespacecom.config import (GroundConfig, NetworkScenario, ScenarioBase, ScenarioFile, Strict,
                                 resolve_relative)
from edgespacecom.datasets import is_data_name

#: The sample scene shipped with the package (USGS orthophoto of Bellingham, WA, public domain).
SAMPLE_SCENE = "eo:rgb/test/inria_bellingham1_1024.tif"
#: The EO test split's Bellingham scenes (both shipped with the package).
TEST_SCENES = "eo:rgb/test/inria_bellingham*_1024.tif"


def _data_names(v: list[str], info: ValidationInfo) -> list[str]:
    """Registry names stay names; paths are taken relative to the scenario's folder."""
    return [x if is_data_name(x) else str(resolve_relative(x, info)) for x in v]


def _data_name(v: str | None, info: ValidationInfo) -> str | None:
    return v if v is None or is_data_name(v) else str(resolve_relative(v, info))


def _all_positive(values: list[float], what: str) -> list[float]:
    if any(x <= 0 for x in values):
        raise ValueError(f"every {what} must be > 0")
    return values


class CodecConfig(Strict):
    """Which learned codec, and where its weights come from (see dlrc_agents.codecs)."""

    architecture: Literal["bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn",
                          "elic2022-official", "elic2022-chandelier", "cheng2020-gmm"] = "bmshj2018-hyperprior"
    lambdas: list[float] = Field([0.0067, 0.013, 0.025, 0.0483], min_length=1, description="λ of each model")
    checkpoint: ScenarioFile | None = Field(None, description="a checkpoint to use instead of the shipped weights (one λ)")
    pretrained: bool = Field(False, description="CompressAI's zoo weights (needs internet)")
    quality: int = Field(3, ge=1, le=8, description="CompressAI quality level (pretrained only)")
    bands: int = Field(3, ge=1, le=64, description="the model's band count: 3 (RGB, shipped) or an N-band model "
                                                   "trained locally (make models-multispectral)")
    allow_unverified_weights: bool = Field(
        False, description="load a checkpoint whose tensors carry no checksum (a bare state_dict, or one written "
                           "by an old version); by default it is refused, since a corrupted copy would load")

    _positive_lambdas = field_validator("lambdas")(classmethod(lambda cls, v: _all_positive(v, "λ")))

    @property
    def model_lambdas(self) -> list:
        """The λ of each model this section names: one None for a checkpoint or the zoo."""
        return [None] if (self.checkpoint or self.pretrained) else list(self.lambdas)


#: Architectures DLRC cannot drive (a Gaussian mixture per latent; :data:`dlrc_agents.codecs.DLRC_FAMILIES`
#: says the same from the registry's side, and a test keeps the two in step). Named here so that
#: validating a scenario does not import torch.
NOT_DLRC_ARCHITECTURES = ("cheng2020-gmm",)


class DLRCCodecConfig(CodecConfig):
    """A codec that DLRC drives: RGB, and one Gaussian per latent (not the mixture model)."""

    @model_validator(mode="after")
    def _dlrc_can_drive(self) -> "DLRCCodecConfig":
        if self.architecture in NOT_DLRC_ARCHITECTURES:
            raise ValueError(f"architecture: DLRC cannot drive {self.architecture} (a Gaussian mixture per latent; "
                             "it is for codec_rd and downstream)")
        if self.bands != 3:
            raise ValueError(f"bands: this kind codes RGB scenes; {self.bands}-band models are for codec_rd and downstream")
        return self


class DataConfig(Strict):
    """Input scenes: data-registry names or globs over them (``eo:rgb/test/*.tif``), or file paths
    and globs (relative ones from the scenario's folder); default the EO test split."""

    scenes: list[str] = Field([TEST_SCENES], min_length=1)
    bands: list[int] | None = Field(
        None, min_length=3, max_length=3,
        description="which three bands (1-based) an RGB codec sees; default the first three (NAIP: R, G, B; "
                    "the Landsat Peru stack: SWIR1, NIR, R)")

    @field_validator("bands")
    @classmethod
    def _positive_bands(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(b < 1 for b in v):
            raise ValueError("band numbers start at 1")
        return v

    _resolve = field_validator("scenes")(classmethod(lambda cls, v, info: _data_names(v, info)))


class OverlapConfig(Strict):
    """Overlapping observations (paper Section 4.1)."""

    satellites: int = Field(8, ge=1, description="N")
    patch: int = Field(256, ge=64, description="P, patch size [px], a multiple of 64")
    o_exp: list[float] = Field([2.0, 0.5], min_length=1, description="expected overlap N·P²/W²")
    draws: int = Field(4, ge=1, description="random draws per scene and o_exp")
    grid: int = Field(16, ge=1, description="patch offsets lie on this pixel grid")
    source: Literal["crops", "revisits"] = Field(
        "crops", description="'crops': every satellite crops the same scene (the paper's protocol); 'revisits': "
                             "data.scenes is a co-registered stack of dates (file names end in YYYY or YYYYMMDD) "
                             "and each satellite's patch comes from a date drawn at random (seeded; distinct "
                             "dates while there are enough)")

    @field_validator("patch")
    @classmethod
    def _multiple_of_64(cls, v: int) -> int:
        if v % 64:
            raise ValueError(f"patch {v} must be a multiple of 64")
        return v

    _positive_overlap = field_validator("o_exp")(classmethod(lambda cls, v: _all_positive(v, "o_exp")))


def _check_levels(levels: dict, where: str) -> dict:
    """Levels {axis: [v, ...]} of the capture perturbations: >= 0, whole pixels for offsets."""
    for axis, values in levels.items():
        values = values if isinstance(values, list) else [values]
        if not values or any(x < 0 for x in values):
            raise ValueError(f"{where}.{axis}: give one or more levels >= 0")
        if axis == "offset" and any(x != int(x) for x in values):
            raise ValueError(f"{where}.offset: levels are whole pixels")
    return levels


class CapturesConfig(Strict):
    """Captures that are not pixel-identical (:mod:`dlrc_agents.capture`): each perturbation axis
    swept one at a time, combined settings, and the shared geographic grid on and off."""

    axes: dict[Literal["offset", "subpixel", "rotation", "scale", "radiometric", "noise"], list[float]] = Field(
        {}, description="axis -> levels, one axis at a time: offset (integer px off the latent grid, 0..v), "
                        "subpixel (px, [0, v)), rotation (± v degrees), scale (GSD × 1 ± v), radiometric "
                        "(gain 1 ± v and bias ± v/2 of full scale, per band), noise (σ in DN)")
    combined: list[dict[Literal["offset", "subpixel", "rotation", "scale", "radiometric", "noise"], float]] = Field(
        [], description="settings of several axes at once, each one condition")
    aligned: bool = Field(True, description="also run the unperturbed captures (the reference)")
    geo_grid: list[bool] = Field(
        [False], min_length=1, description="resample each capture onto the shared geographic grid before "
                                           "encoding (on-board orthorectification): false, true or both")

    @field_validator("axes")
    @classmethod
    def _levels(cls, v: dict) -> dict:
        return _check_levels(v, "axes")

    def conditions(self) -> list[tuple[str, float, dict]]:
        """(axis, level, {axis: level}) of every condition: aligned, each axis level, each combination."""
        out = [("aligned", 0.0, {})] if self.aligned else []
        out += [(axis, float(v), {axis: float(v)}) for axis, levels in self.axes.items() for v in levels]
        out += [("combined", float(i + 1), dict(c)) for i, c in enumerate(self.combined)]
        if not out:
            raise ValueError("captures: no condition left (aligned is false and no axis or combination is given)")
        return out


class MissionCapturesConfig(Strict):
    """How a mission's satellites capture: one setting of the perturbation axes, and the shared grid."""

    perturbation: dict[Literal["offset", "subpixel", "rotation", "scale", "radiometric", "noise"], float] = Field(
        {}, description="each satellite's capture departs from the aligned crop by these levels (the axes of "
                        "the rd kind's captures.axes), drawn per round from the scenario seed")
    geo_grid: bool = Field(False, description="resample each capture onto the shared geographic grid on board "
                                              "(both worlds; its measured time counts as on-board compute)")

    @field_validator("perturbation")
    @classmethod
    def _non_negative(cls, v: dict) -> dict:
        return _check_levels(v, "perturbation")


class DLRCSettings(Strict):
    rounds: int = Field(20, ge=1, description="k, LSH rounds")
    seed: int = Field(0, ge=0, description="shared rotation seed")
    rotation: Literal["dense", "hadamard"] = Field(
        "dense", description="the Recognizer's rotations — 'dense': Haar-random C×C matrices (the paper's "
                             "reading); 'hadamard': random signs and Walsh–Hadamard transforms on C padded to a "
                             "power of two (FALCONN's fast form, O(C log C) a hash)")
    rotation_applications: int = Field(
        2, ge=1, le=8, description="hadamard: sign-flip + Hadamard stages a hash (all but the last shared by "
                                   "the rounds); one does not spread a latent's energy, two match a Haar rotation")
    norm_guard: float | None = Field(
        None, gt=0.0, description="quality guard: fold the latent vector's norm, quantised in steps of "
                                  "(1 + norm_guard) (relative), into its signature, so vectors of the same "
                                  "direction and different magnitude (cross-polytope LSH cannot tell them apart) "
                                  "no longer match; no extra bytes; off by default")
    representative: Literal["original", "mean"] = "original"
    map_transport: Literal["joint", "per_satellite", "references"] = "joint"
    map_coding: Literal["predictive", "lzma"] = "predictive"
    # context models only: what a copy from another satellite puts into the context —
    # 'representative': that satellite's ŷ (the paper's Reconstructor; the satellite needs
    # those vectors on board), 'prediction': the context model's own mean μ there (no
    # exchange beyond the signatures; the ground still copies the representative for g_s)
    context_fill: Literal["representative", "prediction"] = "representative"
    priority: Literal["fixed", "rotate", "backlog"] = Field(
        "fixed", description="missions: who keeps a shared vector — 'fixed': the lowest slot id (the paper); "
                             "'rotate': round-robin by capture step; 'backlog': the satellite with the fewest "
                             "queued bits (sent with its signatures, so all agree without a coordinator)")

    mode: Literal["copy", "predict"] | list[Literal["copy", "predict"]] = Field(
        "copy", description="'copy': the paper's DLRC (a vector a higher-priority satellite holds is dropped and "
                            "copied back on the ground); 'predict': every vector is coded, those a higher-priority "
                            "satellite also holds as a residual against its ŷ, so the reconstruction equals the "
                            "codec alone's (hyperprior codecs). The rd kind takes a list to run modes side by side")

    def modes(self) -> list[str]:
        """The modes to run, in order, each once."""
        return list(dict.fromkeys([self.mode] if isinstance(self.mode, str) else self.mode))

    @field_validator("mode")
    @classmethod
    def _some_mode(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("give at least one mode (copy, predict)")
        return v

    def core(self) -> dict:
        """The settings of :class:`~dlrc_agents.dlrc.onboard.DLRCConfig` (the priority policy is the mission's;
        the mode is set per run from :meth:`modes`)."""
        out = self.model_dump(exclude={"priority", "mode"})
        out["mode"] = self.modes()[0]
        return out


class MissionDLRCSettings(DLRCSettings):
    """DLRC as a mission flies it: self-describing reference maps by default (a peer that times out
    leaves satellites with different views), so setting any other key keeps that default."""

    map_transport: Literal["joint", "per_satellite", "references"] = "references"


def _fixed_priority_only(dlrc: DLRCSettings, kind: str) -> None:
    if dlrc.priority != "fixed":
        raise ValueError(f"dlrc.priority: {dlrc.priority!r} orders satellites over a mission's rounds; the {kind} "
                         "kind codes independent groups with the fixed order")


#: The hyperprior family (entropy parameters from ẑ alone), which predict mode codes; named here so that
#: validating a scenario does not import torch (a test keeps it in step with dlrc_agents.codecs.family).
HYPERPRIOR_ARCHITECTURES = ("bmshj2018-hyperprior", "mbt2018-mean")


def _predict_needs_hyperprior(dlrc: DLRCSettings, architecture: str) -> None:
    if "predict" in dlrc.modes() and architecture not in HYPERPRIOR_ARCHITECTURES:
        raise ValueError(f"dlrc.mode: predict codes the hyperprior family (bmshj2018-hyperprior, mbt2018-mean); "
                         f"{architecture} is a context model, whose parameters at a position depend on the "
                         "positions decoded before it, so a residual against a peer is not implemented for it")


class RDJPEG2000Config(Strict):
    """JPEG 2000 (OpenJPEG) on the same patches, each coded alone: what satellites fly today, the
    anchor of BD-rate and BD-PSNR for the codec alone and the codec + DLRC (every byte sent)."""

    enabled: bool = False
    bpp: list[float] = Field([0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0], min_length=2, description="target bits per pixel")
    mct: list[bool] = Field([True, False], min_length=1, description="multi-component transform on / off")

    _positive = field_validator("bpp")(classmethod(lambda cls, v: sorted(set(_all_positive(v, "JPEG 2000 bpp")))))


class RDScenario(ScenarioBase):
    """kind: rd — rate–distortion of a codec with and without DLRC on overlapping patches."""

    kind: Literal["rd"]
    codec: DLRCCodecConfig = Field(default_factory=DLRCCodecConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    overlap: OverlapConfig = Field(default_factory=OverlapConfig)
    dlrc: DLRCSettings = Field(default_factory=DLRCSettings)
    captures: CapturesConfig = Field(default_factory=CapturesConfig)
    jpeg2000: RDJPEG2000Config = Field(default_factory=RDJPEG2000Config)

    @model_validator(mode="after")
    def _fixed(self) -> "RDScenario":
        _fixed_priority_only(self.dlrc, "rd")
        _predict_needs_hyperprior(self.dlrc, self.codec.architecture)
        self.captures.conditions()
        return self




class ComputeModelConfig(Strict):
    """How on-board compute time advances simulated time."""

    profile: Literal["measured", "titan_v"] = Field(
        "measured", description="'measured': wall time of each real step on this machine; "
                                "'titan_v': the paper's Table 2 times (BMSHJ, 256², scaled by pixel count)")
    device_factor: float = Field(1.0, gt=0.0, description="multiplies every compute time (e.g. 4 for a slower on-board CPU)")


class SatelliteFailureConfig(Strict):
    satellite: int = Field(..., ge=0, description="constellation index of the satellite that fails")
    at_s: float = Field(..., ge=0.0, description="when, from the start of the run [s]")


class LossConfig(Strict):
    """Streams that never reach the ground: the ground decodes the rest of each round (positions
    copied from a lost stream take the model's prediction) and the summary counts what was degraded."""

    stream_loss_rate: float = Field(0.0, ge=0.0, lt=1.0,
                                    description="probability that a stored stream is lost (storage overflow, "
                                                "a missed pass); drawn per satellite and capture step from the "
                                                "scenario seed, the same in both worlds")
    failures: list[SatelliteFailureConfig] = Field(
        [], description="satellites that fail for good: from at_s they capture, send and downlink nothing, "
                        "and what they still hold is lost")


class BaselineConfig(Strict):
    """What the baseline world flies: the learned codec alone (default) or JPEG 2000."""

    codec: Literal["learned", "jpeg2000"] = Field(
        "learned", description="'learned': the scenario's codec alone; 'jpeg2000': JPEG 2000 (OpenJPEG), what "
                               "Earth-observation satellites fly today, so G_down compares LIC + DLRC against it")
    jpeg2000_bpp: float | None = Field(
        None, gt=0.0, le=24.0, description="JPEG 2000 at this fixed rate [bpp]; default: per patch, the lowest rate "
                                           "(bisection, ±1 %) at which it reaches the learned codec's PSNR on that "
                                           "patch (equal quality)")
    jpeg2000_mct: bool = Field(True, description="JPEG 2000's multi-component transform")


class MissionConfig(Strict):
    capture: Literal["rounds", "continuous"] = Field(
        "rounds", description="'rounds': one capture every interval_s; 'continuous': capture again as soon as "
                              "the previous patch is stored (the paper's production model)")
    rounds: int = Field(4, ge=1, description="distinct real DLRC rounds (continuous mode replays them in turn)")
    interval_s: float = Field(30.0, gt=0.0, description="rounds mode: time between captures [s]")
    batch: int = Field(1, ge=1, description="continuous mode: rounds simulated per agent step")
    peer_timeout_s: float = Field(5.0, gt=0.0, description="wait for peers' signatures at most this long [s]")
    threads: int = Field(1, ge=1, description="torch threads for the real on-board work (timings)")
    schedule: Literal["serial", "pipelined"] = Field(
        "serial", description="'serial' (the paper): the next capture waits until this round is stored; "
                              "'pipelined': while a round waits for its peers' signatures the processor "
                              "analyses the next capture (DLRC world; at most in_flight rounds at once)")
    in_flight: int = Field(2, ge=1, description="pipelined: rounds started and not yet stored, at most")
    in_flight_memory_mb: float | None = Field(
        None, gt=0.0, description="pipelined: on-board memory for rounds in flight (image + latents) [MB]; "
                                  "lowers in_flight to what fits")
    compute: ComputeModelConfig = Field(default_factory=ComputeModelConfig)
    losses: LossConfig = Field(default_factory=LossConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)


class MissionScenario(NetworkScenario):
    """kind: mission — SimPy agents run real DLRC over the simulated network and downlink to the ground."""

    kind: Literal["mission"]
    codec: DLRCCodecConfig = Field(default_factory=lambda: DLRCCodecConfig(lambdas=[0.0067]))
    data: DataConfig = Field(default_factory=lambda: DataConfig(scenes=[SAMPLE_SCENE]))
    overlap: OverlapConfig = Field(default_factory=lambda: OverlapConfig(o_exp=[2.0]))
    dlrc: MissionDLRCSettings = Field(default_factory=MissionDLRCSettings)
    mission: MissionConfig = Field(default_factory=MissionConfig)
    captures: MissionCapturesConfig = Field(default_factory=MissionCapturesConfig)
    ground: GroundConfig = Field(default_factory=GroundConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "MissionScenario":
        if len(self.codec.model_lambdas) != 1:
            raise ValueError("codec.lambdas: a mission flies one model; give a single λ")
        if len(self.overlap.o_exp) != 1:
            raise ValueError("overlap.o_exp: a mission uses one overlap; give a single value")
        if self.overlap.satellites != self.participants.count:
            raise ValueError(f"overlap.satellites ({self.overlap.satellites}) must equal participants.count "
                             f"({self.participants.count}): each participant captures one patch")
        if len(self.dlrc.modes()) != 1:
            raise ValueError("dlrc.mode: a mission flies one mode; sweep dlrc.mode to compare copy and predict "
                             "(scenarios/mission_jpeg2000_realistic_predict.yaml)")
        _predict_needs_hyperprior(self.dlrc, self.codec.architecture)
        if self.dlrc.modes() == ["predict"] and self.mission.compute.profile == "titan_v":
            raise ValueError("mission.compute.profile: 'titan_v' has no time for predictive coding or the peers' "
                             "decode; dlrc.mode predict needs 'measured'")
        if self.dlrc.map_transport != "references":
            raise ValueError("dlrc.map_transport: a mission needs 'references' (a peer that times out leaves "
                             "satellites with different views; dense maps would not decode)")
        context_model = self.codec.architecture not in ("bmshj2018-hyperprior", "mbt2018-mean")
        if context_model and self.dlrc.context_fill != "prediction":
            raise ValueError(f"dlrc.context_fill: {self.codec.architecture} is a context model; a mission flies it "
                             "with context_fill: prediction only. With 'representative' each satellite would also "
                             "need its higher-priority peers' ŷ vectors on board, an exchange the mission does not "
                             "model (the rd kind reports its size)")
        if self.mission.baseline.codec == "jpeg2000" and self.mission.compute.profile == "titan_v":
            raise ValueError("mission.compute.profile: 'titan_v' has no JPEG 2000 time; a JPEG 2000 baseline "
                             "needs 'measured'")
        if context_model and self.mission.compute.profile == "titan_v":
            raise ValueError("mission.compute.profile: 'titan_v' is the paper's BMSHJ profile; "
                             f"{self.codec.architecture} needs 'measured'")
        return self


class AblationConfig(Strict):
    """The grid of paper Figure 12: LSH rounds k × representative strategy."""

    rounds: list[int] = Field([1, 2, 4, 8, 16, 20, 32], min_length=1, description="values of k")
    representative: list[Literal["original", "mean"]] = Field(["original", "mean"], min_length=1)

    @field_validator("rounds")
    @classmethod
    def _at_least_one(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v):
            raise ValueError("every k must be >= 1")
        return v


class DLRCAblationScenario(ScenarioBase):
    """kind: dlrc_ablation — DLRC's R–D and on-board time against k and the representative strategy."""

    kind: Literal["dlrc_ablation"]
    codec: DLRCCodecConfig = Field(default_factory=lambda: DLRCCodecConfig(lambdas=[0.0067]))
    data: DataConfig = Field(default_factory=DataConfig)
    overlap: OverlapConfig = Field(default_factory=lambda: OverlapConfig(o_exp=[2.0]))
    dlrc: DLRCSettings = Field(default_factory=DLRCSettings)
    ablation: AblationConfig = Field(default_factory=AblationConfig)

    @model_validator(mode="after")
    def _one_model(self) -> "DLRCAblationScenario":
        if len(self.codec.model_lambdas) != 1:
            raise ValueError("codec.lambdas: the ablation uses one model; give a single λ")
        _fixed_priority_only(self.dlrc, "dlrc_ablation")
        return self


class JPEGConfig(Strict):
    """The JPEG reference (Pillow/libjpeg, optimised Huffman tables, 4:2:0 and 4:4:4 chroma)."""

    qualities: list[int] = Field([5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 85, 90, 95], min_length=2)

    @field_validator("qualities")
    @classmethod
    def _in_range(cls, v: list[int]) -> list[int]:
        if any(q < 1 or q > 100 for q in v):
            raise ValueError("every JPEG quality must be in 1..100")
        return sorted(set(v))


class JPEG2000Config(Strict):
    """The JPEG 2000 reference (OpenJPEG through GDAL, :mod:`dlrc_agents.jpeg2000`): raw J2K codestreams
    at target rates, with and without the multi-component transform; its upper envelope is the anchor
    of the BD-rate and BD-PSNR columns."""

    enabled: bool = True
    bpp: list[float] = Field([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0], min_length=2,
                             description="target bits per pixel (all bands together)")
    mct: list[bool] = Field([True, False], min_length=1, description="multi-component transform on / off")
    bits_per_sample: list[float] = Field([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2], min_length=2,
                                         description="band sets: target bits per sample (bpp = this × bands)")

    _positive = field_validator("bpp")(classmethod(lambda cls, v: sorted(set(_all_positive(v, "JPEG 2000 bpp")))))
    _positive_bps = field_validator("bits_per_sample")(
        classmethod(lambda cls, v: sorted(set(_all_positive(v, "JPEG 2000 bits_per_sample")))))


def _row_window(v):
    if v is not None and not 0 <= v[0] < v[1]:
        raise ValueError("rows: [first, end) with 0 <= first < end")
    return v


class BandSetConfig(Strict):
    """Raw N-band data (8 or 16 bits) coded as it is: one multi-band raster, or single-band rasters
    stacked in the order given (:func:`dlrc_agents.data.read_band_set`)."""

    name: str = Field(..., min_length=1, description="the label in tables and figures")
    files: list[str] = Field(..., min_length=1, description="registry names or paths (globs allowed)")
    bands: list[int] | None = Field(None, min_length=1, description="1-based bands of the stack to keep")
    crop: int | None = Field(None, ge=64, description="code the top-left crop of this many pixels a side")
    rows: tuple[int, int] | None = Field(None, description="keep rows [first, end) only: the held-out part of a "
                                                           "lone chip whose other rows trained a model")
    learned: bool = Field(True, description="also code it with the learned models of as many bands (false: a "
                                            "sensor none of them was trained on, JPEG 2000 only)")

    _rows = field_validator("rows")(classmethod(lambda cls, v: _row_window(v)))

    _resolve = field_validator("files")(classmethod(lambda cls, v, info: _data_names(v, info)))


class CodecRDScenario(ScenarioBase):
    """kind: codec_rd — R–D of whole test scenes for learned codecs against JPEG and JPEG 2000."""

    kind: Literal["codec_rd"]
    models: list[CodecConfig] = Field(default_factory=lambda: [CodecConfig()], min_length=1)
    data: DataConfig = Field(default_factory=lambda: DataConfig(scenes=["eo:rgb/test/*.tif"]))
    jpeg: JPEGConfig = Field(default_factory=JPEGConfig)
    jpeg2000: JPEG2000Config = Field(default_factory=JPEG2000Config)
    band_sets: list[BandSetConfig] = Field(
        [], description="N-band data coded raw by JPEG 2000 and by every model with as many bands")

    @model_validator(mode="after")
    def _distinct_band_sets(self) -> "CodecRDScenario":
        names = [b.name for b in self.band_sets]
        if len(set(names)) < len(names):
            raise ValueError("band_sets: two band sets have the same name")
        return self


class IndexTaskConfig(Strict):
    """A product computed from the bands without training (the seed's downstream question where data
    is scarce): a normalised difference index thresholded into a mask, scored against a labelled mask."""

    name: str = Field(..., min_length=1, description="the task's label in tables (e.g. water)")
    band_set: BandSetConfig
    label: str = Field(..., min_length=1, description="the labelled mask: a registry name or a file")
    positive: int = Field(1, description="label value of the positive class")
    ignore: int | None = Field(-1, description="label value that is not scored (no data)")
    index_bands: tuple[int, int] = Field(..., description="1-based bands (a, b) of the band set: index (a − b)/(a + b)")
    threshold: float = Field(0.0, ge=-1.0, le=1.0, description="index > threshold is the positive class")

    @field_validator("label", mode="before")
    @classmethod
    def _resolve_label(cls, v, info: ValidationInfo):
        return v if isinstance(v, str) and is_data_name(v) else str(resolve_relative(str(v), info))


class ChipConfig(Strict):
    """One labelled piece of a segmentation task: a band set, its mask, optionally a row window."""

    files: list[str] = Field(..., min_length=1, description="registry names or paths (globs allowed) of the bands")
    label: str = Field(..., min_length=1, description="the mask: a registry name or a file")
    rows: tuple[int, int] | None = Field(None, description="rows [first, end) only (a spatial split of one chip)")

    _rows = field_validator("rows")(classmethod(lambda cls, v: _row_window(v)))

    _resolve = field_validator("files")(classmethod(lambda cls, v, info: _data_names(v, info)))

    _resolve_label = field_validator("label")(classmethod(lambda cls, v, info: _data_name(v, info)))


class SegmentationTaskConfig(Strict):
    """A labelled binary segmentation task (the seed's U-Net tasks) with its three disjoint splits:
    the U-Net trains on ``train``, stops early on ``validation`` and is scored on ``test`` only."""

    name: str = Field(..., min_length=1, description="the task's label in tables (cloud_s2, water_s2, ...)")
    positive: int = Field(1, description="label value of the positive class")
    ignore: int | None = Field(None, description="label value that is neither trained on nor scored (no data)")
    learned: bool = Field(True, description="also through the learned models of as many bands (false: a sensor "
                                            "none of them was trained on, JPEG 2000 only)")
    train: list[ChipConfig] = Field(..., min_length=1)
    validation: list[ChipConfig] = Field(..., min_length=1)
    test: list[ChipConfig] = Field(..., min_length=1)


class JointTrainingConfig(Strict):
    """The seed's joint training (its Equation 1): L = λ·255²·MSE + R + γ·BCE, with three Adam optimisers
    (codec transforms, the entropy bottleneck's quantiles, the U-Net), starting from the standalone
    codec of ``lmbda``; compared with standalone codec + U-Net at equal bpp."""

    task: str = Field(..., description="the segmentation task it runs on")
    architecture: str = Field("bmshj2018-hyperprior", description="the start codec's architecture")
    lmbda: float = Field(..., gt=0, description="λ: the start codec (models with the task's bands) and the loss")
    gamma: float = Field(..., ge=0, description="γ: the weight of the segmentation loss; 0 is the control: the "
                                                "same steps with the U-Net trained on the codec's output but no "
                                                "gradient from it into the codec (separate optimisation)")
    steps: int = Field(300, ge=1, description="joint steps (codec + U-Net together)")
    codec_lr: float = Field(1e-4, gt=0)
    aux_lr: float = Field(1e-3, gt=0)
    unet_lr: float = Field(1e-4, gt=0, description="the U-Net's learning rate (it starts trained)")
    patience: int = Field(6, ge=1, description="stop after this many evaluations without a better validation loss")


class SegmentationConfig(Strict):
    """How the U-Nets are trained (segmentation-models-pytorch, random initialisation: no downloaded
    weights): BCE, Adam, random crops with flips, early stopping on the validation split's loss."""

    backbones: list[Literal["mobilenet_v2", "resnet34"]] = Field(["mobilenet_v2", "resnet34"], min_length=1)
    curve_backbone: Literal["mobilenet_v2", "resnet34", "best"] = Field(
        "best", description="the backbone trained on decoded data at every codec and rate (F1 against bpp); best: "
                            "per task, the one with the lower validation loss on the uncompressed bands")
    bits_per_sample: list[float] = Field([0.05, 0.2, 0.8], min_length=1,
                                         description="JPEG 2000 targets for the F1–bpp curves")
    mct: bool = Field(True, description="JPEG 2000's multi-component transform where it applies (3 or 4 bands)")
    steps: int = Field(300, ge=1, description="most U-Net steps (early stopping may end sooner)")
    batch: int = Field(8, ge=1)
    crop: int = Field(128, ge=32, multiple_of=32, description="training crop [px]")
    lr: float = Field(1e-3, gt=0)
    eval_every: int = Field(25, ge=1, description="validation loss every this many steps")
    patience: int = Field(4, ge=1, description="stop after this many evaluations without a better validation loss")
    pos_weight: float | Literal["balanced"] | None = Field(
        None, description="BCE weight of the positive class: none (plain BCE, the seed's), a number, or balanced "
                          "(negatives / positives of the training split: rare classes such as buildings)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default torch's)")
    joint: list[JointTrainingConfig] = Field([], description="joint codec + segmentation training runs")

    _positive_bps = field_validator("bits_per_sample")(
        classmethod(lambda cls, v: sorted(set(_all_positive(v, "segmentation.bits_per_sample")))))


class DownstreamScenario(ScenarioBase):
    """kind: downstream — what compression does to products made from the decoded bands."""

    kind: Literal["downstream"]
    models: list[CodecConfig] = Field([], description="learned codecs; each codes a task's bands when it has as many")
    jpeg2000: JPEG2000Config = Field(default_factory=JPEG2000Config)
    index_tasks: list[IndexTaskConfig] = Field([], description="index products (no training)")
    segmentation_tasks: list[SegmentationTaskConfig] = Field([], description="U-Net tasks (trained per codec and rate)")
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)

    @model_validator(mode="after")
    def _bands_exist(self) -> "DownstreamScenario":
        if not self.index_tasks and not self.segmentation_tasks:
            raise ValueError("index_tasks, segmentation_tasks: give at least one task")
        for t in self.index_tasks:
            if min(t.index_bands) < 1:
                raise ValueError(f"index_tasks.{t.name}.index_bands: band numbers start at 1")
        names = [t.name for t in self.index_tasks] + [t.name for t in self.segmentation_tasks]
        if len(set(names)) < len(names):
            raise ValueError("index_tasks, segmentation_tasks: two tasks have the same name")
        seg = {t.name for t in self.segmentation_tasks}
        for j in self.segmentation.joint:
            if j.task not in seg:
                raise ValueError(f"segmentation.joint.task: {j.task!r} is not a segmentation task ({', '.join(sorted(seg))})")
        return self


class ViewSetConfig(Strict):
    """One set of simultaneous views of a target: files in priority order (the first is the
    representative), and optionally a DEM to orthorectify with."""

    name: str = Field(..., min_length=1)
    scenes: list[str] = Field(..., min_length=2, description="the views (registry names or paths), each with an RPC "
                                                            "in its TIFF tags or a NAME.geom beside it")
    dem: str | None = Field(None, description="a DEM (e.g. SRTM .hgt) for the heights; else a constant height")

    _resolve = field_validator("scenes")(classmethod(lambda cls, v, info: _data_names(v, info)))

    _resolve_dem = field_validator("dem")(classmethod(lambda cls, v, info: _data_name(v, info)))


class MultiviewDataConfig(Strict):
    sets: list[ViewSetConfig] = Field([], description="the sets of views")
    scenes: list[str] = Field([], description="one set of your own views (≥ 2, priority order); replaces sets")

    _resolve = field_validator("scenes")(classmethod(lambda cls, v, info: _data_names(v, info)))

    @model_validator(mode="after")
    def _some_views(self) -> "MultiviewDataConfig":
        if self.scenes and len(self.scenes) < 2:
            raise ValueError("data.scenes: give two or more views of the same target")
        if not self.scenes and not self.sets:
            raise ValueError("data: give sets, or scenes (two or more views)")
        return self


class MultiviewGridConfig(Strict):
    gsd_m: float = Field(0.5, gt=0.0, le=100.0, description="the shared grid's sampling [m]")
    height_m: float | None = Field(None, description="constant height [m] where a set has no DEM (default: the "
                                                     "RPCs' mean height offset)")
    max_tile_px: int = Field(512, ge=64, le=2048, description="largest tile side [px], a multiple of 64")

    @field_validator("max_tile_px")
    @classmethod
    def _multiple(cls, v: int) -> int:
        if v % 64:
            raise ValueError("a multiple of 64")
        return v


class CorrectionConfig(Strict):
    enabled: bool = Field(True, description="correct the RPCs' relative bias from the representative's thumbnail")
    thumbnail_factor: int = Field(4, ge=1, le=32, description="the thumbnail is this many times smaller per side")


class MultiviewCodecConfig(CodecConfig):
    """The 1-band model that codes panchromatic views (one λ)."""

    architecture: Literal["bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn",
                          "elic2022-official", "elic2022-chandelier"] = "bmshj2018-hyperprior"
    lambdas: list[float] = Field([0.0067], min_length=1, max_length=1)
    bands: int = Field(1, ge=1, le=1)


class MultiviewScenario(ScenarioBase):
    """kind: multiview — DLRC on real simultaneous multi-view captures, orthorectified from their RPCs."""

    kind: Literal["multiview"]
    codec: MultiviewCodecConfig = Field(default_factory=MultiviewCodecConfig)
    data: MultiviewDataConfig
    grid: MultiviewGridConfig = Field(default_factory=MultiviewGridConfig)
    correction: CorrectionConfig = Field(default_factory=CorrectionConfig)
    dlrc: DLRCSettings = Field(default_factory=lambda: DLRCSettings(mode=["copy", "predict"]))

    @model_validator(mode="after")
    def _fixed(self) -> "MultiviewScenario":
        _fixed_priority_only(self.dlrc, "multiview")
        _predict_needs_hyperprior(self.dlrc, self.codec.architecture)
        return self
