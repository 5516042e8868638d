"""Schema of the ``mission`` kind, beside its runner (:mod:`.run`); the parts it shares with the studies
are in :mod:`dlrc_agents.common.config`. Torch-free: validating a scenario imports no model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgespacecom.config import GroundConfig, NetworkScenario, Strict

from dlrc_agents.common.config import (DLRCCodecConfig, DLRCSettings, DataConfig, OverlapConfig, SAMPLE_SCENE,
                                       _check_levels, _predict_needs_hyperprior)


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


class MissionDLRCSettings(DLRCSettings):
    """DLRC as a mission flies it: self-describing reference maps by default (a peer that times out
    leaves satellites with different views), so setting any other key keeps that default."""

    map_transport: Literal["joint", "per_satellite", "references"] = "references"


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
        if len(self.dlrc.calibrations()) != 1:
            raise ValueError("dlrc.calibration: a mission flies one; sweep dlrc.calibration to compare them")
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
