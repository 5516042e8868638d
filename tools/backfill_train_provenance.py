"""One-off (2026-12-04): give the four continued-ladder train summaries in results/training/candidates/ the
provenance their runs predate, reconstructed from the settings each shipped checkpoint carries (its
dlrc-checkpoint metadata) and the sha256 of the data files those settings name, and labelled as such
(``recorded_by_the_run: false``).

    python tools/backfill_train_provenance.py
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from dlrc_agents.common.data import scene_names  # noqa: E402
from edgespacecom.outputs import write_json  # noqa: E402

LAMBDAS = ("0.0067", "0.013", "0.025", "0.0483")
SETTINGS = ("architecture", "N", "M", "lambda", "steps", "seed", "crop", "batch_size", "lr", "quality", "init",
            "max_downscale", "precision", "selected_step")


def _literal(value):
    return ast.literal_eval(value) if isinstance(value, str) else value


def main() -> int:
    for lam in LAMBDAS:
        path = ROOT / f"results/training/candidates/bmshj2018-hyperprior_lambda{lam}_continued_train_summary.json"
        summary = json.loads(path.read_text())
        weights = f"dlrc_agents/codecs/weights/bmshj2018-hyperprior_lambda{lam}.pt"
        meta = torch.load(ROOT / weights, weights_only=True, map_location="cpu")
        files = list(_literal(meta["data"])) + list(_literal(meta["validation"]))
        inputs = {name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for name, p in scene_names(files).items()}
        summary["provenance"] = {
            "recorded_by_the_run": False,
            "why": "this run predates provenance in train summaries; reconstructed on 2026-12-04 from the settings "
                   "the shipped checkpoint carries (dlrc-checkpoint metadata), not from the run itself",
            "config": {k: meta[k] for k in SETTINGS}, "data": files, "inputs_sha256": inputs,
            "output": {"shipped_as": weights, "repacked_from": _literal(meta["repacked_from"])},
        }
        write_json(path, summary)
        print(path.relative_to(ROOT), f"{len(inputs)} inputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
