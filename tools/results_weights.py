"""Which weights each result in ``results/`` rests on: the shipped files as they are now, or earlier
versions of them (by the sha256 its ``summary.json`` provenance recorded for each weights file).

    python tools/results_weights.py [results]   # prints a Markdown table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrc_agents.codecs.files import WEIGHTS_DIR  # noqa: E402
from edgespacecom.datasets import file_sha256  # noqa: E402


def main(argv: list[str]) -> int:
    base = Path(argv[0]) if argv else ROOT / "results"
    print("| result | weights it names | made with the weights shipped now? |\n|---|---|---|")
    for summary in sorted(base.glob("*/summary.json")):
        data = json.loads(summary.read_text())
        inputs = (data.get("provenance") or {}).get("inputs_sha256") or {}
        weights = {k: v for k, v in inputs.items() if k.startswith(("shipped:", "local:"))}
        if not weights:
            continue
        now = []
        for name, digest in weights.items():
            path = WEIGHTS_DIR / name.split(":", 1)[1]
            now.append(name.startswith("shipped:") and path.is_file() and file_sha256(path) == digest)
        verdict = "yes" if all(now) else "no: earlier weights" if not any(now) else "partly"
        names = ", ".join(sorted(n.split(":", 1)[1].removesuffix(".pt") for n in weights))
        print(f"| {summary.parent.name} | {names} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
