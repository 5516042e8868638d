"""Schemas of the measuring kinds (rd, dlrc_ablation, codec_rd, downstream, multiview), beside their
runners in this package; the parts they share with the mission are in :mod:`dlrc_agents.common.config`.
Torch-free: validating a scenario imports no model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgespacecom.config import ScenarioBase, Strict, resolve_relative
from edgespacecom.datasets import is_data_name

from dlrc_agents.common.config import (HYPERPRIOR_ARCHITECTURES, CapturesConfig, CodecConfig, DLRCCodecConfig, DLRCSettings, DataConfig,
                                       OverlapConfig, _all_positive, _data_name, _data_names, _fixed_priority_only,
                                       _predict_needs_hyperprior)


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
    """The JPEG 2000 reference (OpenJPEG through GDAL, :mod:`dlrc_agents.codecs.jpeg2000`): raw J2K codestreams
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
    stacked in the order given (:func:`dlrc_agents.common.data.read_band_set`)."""

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


class RateControlledCodecConfig(CodecConfig):
    """A codec of the codec_rd kind, optionally coded at requested rates as well as at its λ ladder."""

    target_bpp: list[float] | None = Field(
        None, min_length=1, description="also code every RGB scene at these rates [bpp, every byte], each within "
                                        "±2 %: the λ ladder's model nearest above the target and a quantisation "
                                        "step on its latent, bisected, or a variable-rate model's level "
                                        "(dlrc_agents.codecs.rate); hyperprior codecs")

    @field_validator("target_bpp")
    @classmethod
    def _positive_targets(cls, v):
        return v if v is None else sorted(set(_all_positive(v, "target_bpp")))

    @model_validator(mode="after")
    def _hyperprior_only(self) -> "RateControlledCodecConfig":
        if self.target_bpp and self.architecture not in HYPERPRIOR_ARCHITECTURES:
            raise ValueError(f"target_bpp: rate control steps the latent of the hyperprior codecs "
                             f"({', '.join(HYPERPRIOR_ARCHITECTURES)}); {self.architecture} is a context model")
        return self


class CodecRDScenario(ScenarioBase):
    """kind: codec_rd — R–D of whole test scenes for learned codecs against JPEG and JPEG 2000."""

    kind: Literal["codec_rd"]
    models: list[RateControlledCodecConfig] = Field(default_factory=lambda: [RateControlledCodecConfig()], min_length=1)
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
    freeze_codec: bool = Field(False, description="the frozen-codec control (needs γ = 0): the codec is not trained "
                                                  "at all and codes as deployed (rounding); the U-Net trains the same "
                                                  "steps on its output")
    codec_lr: float = Field(1e-4, gt=0)
    aux_lr: float = Field(1e-3, gt=0)
    unet_lr: float = Field(1e-4, gt=0, description="the U-Net's learning rate (it starts trained)")
    patience: int = Field(6, ge=1, description="stop after this many evaluations without a better validation loss")

    @model_validator(mode="after")
    def _frozen_means_no_gamma(self):
        if self.freeze_codec and self.gamma != 0:
            raise ValueError("freeze_codec: the frozen-codec control takes gamma: 0")
        return self


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
    predict_from: Literal["correction_peer", "priority"] = Field(
        "correction_peer", description="predict mode: where several earlier views hold a latent's ground, predict it "
        "from the view this one corrected against (the one it shares most ground with; no further bytes) or from the "
        "highest-priority one (DLRC's rule)")


class MultiviewCodecConfig(CodecConfig):
    """The 1-band models that code panchromatic views: one per λ (each set is coded at every λ)."""

    architecture: Literal["bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn",
                          "elic2022-official", "elic2022-chandelier"] = "bmshj2018-hyperprior"
    lambdas: list[float] = Field([0.0067], min_length=1, max_length=4,
                                 description="λ of the 1-band models; the first one's positions fill the figures")
    bands: int = Field(1, ge=1, le=1)

    @model_validator(mode="after")
    def _one_checkpoint_one_lambda(self) -> "MultiviewCodecConfig":
        if self.checkpoint is not None and len(self.lambdas) != 1:
            raise ValueError("codec.lambdas: a checkpoint is one model; give a single λ with it")
        if len(set(self.lambdas)) != len(self.lambdas):
            raise ValueError("codec.lambdas: each λ once")
        return self


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
