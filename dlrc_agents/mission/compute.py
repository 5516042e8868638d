"""On-board compute time: how real work advances simulated time (measured, or the paper's Table 2)."""

from __future__ import annotations

from dataclasses import dataclass

#: Paper Table 2 (NVIDIA TITAN V, BMSHJ, 256×256, λ = 0.0067) [s]: analysis transform,
#: entropy modelling, entropy coding, and DLRC's added time. Scaled by pixel count for
#: other patch sizes (an assumption: the paper gives the breakdown at 256² only).
TITAN_V_256 = {"analysis_transform": 2.31e-3, "entropy_modelling": 7.85e-3, "entropy_coding": 14.52e-3,
               "dlrc": 12.89e-3, "baseline": 24.68e-3}


# ---------------------------------------------------------------- compute time model


@dataclass(frozen=True)
class ComputeModel:
    """Simulated seconds of on-board work from the measured wall time of the real step."""

    profile: str
    device_factor: float
    pixels: int

    def seconds(self, measured: dict) -> float:
        """Simulated time of a group of stages {stage: measured wall seconds}.

        ``titan_v`` replaces each stage by the paper's figure (the paper gives DLRC's
        time as one number, so it is charged to the Recognizer; Selector and Arbiter
        then cost nothing extra), scaled by the pixel count.
        """
        if self.profile == "measured":
            return self.device_factor * sum(measured.values())
        scale = self.pixels / 65536.0 * self.device_factor
        charged = {"analysis_transform": TITAN_V_256["analysis_transform"],
                   "entropy_modelling": TITAN_V_256["entropy_modelling"],
                   "entropy_coding": TITAN_V_256["entropy_coding"], "recognizer": TITAN_V_256["dlrc"],
                   "selector": 0.0, "arbiter": 0.0, "baseline": TITAN_V_256["baseline"]}
        # the shared grid's resampling has no figure in the paper: charged at its measured time
        return scale * sum(charged[stage] for stage in measured if stage != "geo_grid") \
            + self.device_factor * measured.get("geo_grid", 0.0)

    def describe(self) -> dict:
        return {"profile": self.profile, "device_factor": self.device_factor,
                "source": "wall time of each real step on this machine" if self.profile == "measured"
                else "paper Table 2 (TITAN V, BMSHJ, 256²), scaled by pixel count"}
