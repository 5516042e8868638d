"""Layers point one way: the simulator core never imports the DLRC layer, and kinds register themselves."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_the_layer_above():
    offenders = []
    for path in sorted((ROOT / "edgespacecom").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "dlrc_agents"]
    assert not offenders, offenders


def test_kinds_are_found_through_the_registry_without_importing_torch():
    code = ("import sys, json; from edgespacecom.kinds import kinds; from edgespacecom.config import load_scenario;"
            f"s = load_scenario({str(ROOT / 'scenarios' / 'rd_bmshj2018.yaml')!r});"
            "print(json.dumps([sorted(kinds()), s.kind, 'torch' in sys.modules, 'dlrc_agents.rd' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names, kind, torch_loaded, runner_loaded = json.loads(out)
    assert names == ["codec_rd", "dlrc_ablation", "downstream", "mission", "rd", "sync"] and kind == "rd"
    assert not torch_loaded and not runner_loaded
