"""Schema parts every DLRC scenario kind shares: the codec, the input scenes, the overlap protocol,
the captures and DLRC's settings. They extend the simulator core's sections (:mod:`edgespacecom.config`);
each kind's own schema sits beside its runner (:mod:`dlrc_agents.studies.config`,
:mod:`dlrc_agents.mission.config`) and :mod:`dlrc_agents.kinds` registers them. Torch-free.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgespacecom.config import ScenarioFile, Strict, resolve_relative
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


#: Architectures with one network for every λ (dlrc_agents.codecs.variable_rate), named here so that
#: validating a scenario does not import torch (dlrc_agents.codecs.files takes it from here).
VARIABLE_RATE_ARCHITECTURES = ("bmshj2018-hyperprior-vr",)


class CodecConfig(Strict):
    """Which learned codec, and where its weights come from (see dlrc_agents.codecs)."""

    architecture: Literal["bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn",
                          "elic2022-official", "elic2022-chandelier", "cheng2020-gmm",
                          "bmshj2018-hyperprior-vr"] = "bmshj2018-hyperprior"
    lambdas: list[float] = Field([0.0067, 0.013, 0.025, 0.0483], min_length=1,
                                 description="λ of each model (bmshj2018-hyperprior-vr: the λ its one network codes "
                                             "at, within its trained range)")
    checkpoint: ScenarioFile | None = Field(None, description="a checkpoint to use instead of the shipped weights "
                                                              "(one λ; a variable-rate one codes at each of lambdas)")
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
        """The λ of each model this section names: one None for a checkpoint or the zoo, except a
        variable-rate checkpoint, which codes at each λ of ``lambdas``."""
        if self.checkpoint and self.architecture in VARIABLE_RATE_ARCHITECTURES:
            return list(self.lambdas)
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
    """Captures that are not pixel-identical (:mod:`dlrc_agents.studies.capture`): each perturbation axis
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

    calibration: Literal["none", "gain_bias", "registered"] | list[Literal["none", "gain_bias", "registered"]] = Field(
        "none", description="predict mode: 'gain_bias' also tries a calibrated prediction — the referenced "
                            "satellites' decoded images, taken into this satellite's radiometry by a per-band "
                            "gain and bias fitted on the overlap (sent, 4 bytes a band), then re-analysed — "
                            "and keeps it where it costs fewer bits; 'registered' also tries those images "
                            "resampled through a block-wise displacement field fitted on board (32- and 64-pixel "
                            "blocks, quarter pixels, sent deflated): the parallax and RPC error that "
                            "orthorectification leaves between simultaneous views. The reconstruction stays the "
                            "codec alone's. The rd and multiview kinds take a list to run several side by side")

    def calibrations(self) -> list[str]:
        """predict mode's calibrations to run, in order, each once."""
        return list(dict.fromkeys([self.calibration] if isinstance(self.calibration, str) else self.calibration))

    @model_validator(mode="after")
    def _calibration_needs_predict(self) -> "DLRCSettings":
        if isinstance(self.calibration, list) and not self.calibration:
            raise ValueError("calibration: give at least one (none, gain_bias, registered)")
        for c in set(self.calibrations()) - {"none"}:
            if "predict" not in self.modes():
                raise ValueError(f"calibration: {c} calibrates predict mode's prediction; dlrc.mode has no predict")
        return self

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
        out = self.model_dump(exclude={"priority", "mode", "calibration"})
        out["mode"] = self.modes()[0]
        out["calibration"] = self.calibrations()[0] if out["mode"] == "predict" else "none"
        return out


def _fixed_priority_only(dlrc: DLRCSettings, kind: str) -> None:
    if dlrc.priority != "fixed":
        raise ValueError(f"dlrc.priority: {dlrc.priority!r} orders satellites over a mission's rounds; the {kind} "
                         "kind codes independent groups with the fixed order")


#: The hyperprior family (entropy parameters from ẑ alone), which predict mode codes; named here so that
#: validating a scenario does not import torch (a test keeps it in step with dlrc_agents.codecs.family).
HYPERPRIOR_ARCHITECTURES = ("bmshj2018-hyperprior", "mbt2018-mean", "bmshj2018-hyperprior-vr")


def _predict_needs_hyperprior(dlrc: DLRCSettings, architecture: str) -> None:
    if "predict" in dlrc.modes() and architecture not in HYPERPRIOR_ARCHITECTURES:
        raise ValueError(f"dlrc.mode: predict codes the hyperprior family (bmshj2018-hyperprior, mbt2018-mean); "
                         f"{architecture} is a context model, whose parameters at a position depend on the "
                         "positions decoded before it, so a residual against a peer is not implemented for it")
