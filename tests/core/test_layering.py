"""Layers point one way: the simulator core never imports the DLRC layer, and kinds register themselves."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
            "print(json.dumps([sorted(kinds()), s.kind, 'torch' in sys.modules, 'dlrc_agents.studies.rd' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names, kind, torch_loaded, runner_loaded = json.loads(out)
    assert names == ["codec_rd", "dlrc_ablation", "downstream", "mission", "multiview", "rd", "sync"] and kind == "rd"
    assert not torch_loaded and not runner_loaded


def _module_imports() -> dict:
    """{module: set of project modules it imports} for every module of both packages, lazy imports
    inside functions included (an import there is a dependency all the same)."""
    mods = {}
    for pkg in ("edgespacecom", "dlrc_agents"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = path
    graph = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_pkg else name.split(".")[:-1]
                    parts = parts[:len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def test_no_import_circles_anywhere():
    """Walks every module of both packages: no module reaches itself through its imports."""
    import networkx as nx

    graph = _module_imports()
    assert len(graph) > 60 and "dlrc_agents.common.measures" in graph and "edgespacecom.sync" in graph
    cycles = list(nx.simple_cycles(nx.DiGraph([(a, b) for a, deps in graph.items() for b in deps])))
    assert not cycles, cycles


def test_the_circle_test_finds_a_circle(tmp_path, monkeypatch):
    """The walker sees lazy imports: two modules that import each other inside functions are a circle."""
    import networkx as nx

    graph = _module_imports()
    graph["dlrc_agents.common.measures"].add("dlrc_agents.studies.rd")  # what a measure importing a study would add
    assert list(nx.simple_cycles(nx.DiGraph([(a, b) for a, deps in graph.items() for b in deps])))


#: The DLRC layer's groups, lowest first: a module may import its own group and those below it
#: (``edgespacecom`` is below them all); ``kinds`` registers the kinds and sits on top.
GROUPS = ("common", "codecs", "dlrc", "studies", "mission", "fuzzing", "kinds")


def _group(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "dlrc_agents" or len(parts) == 1:
        return None  # the core, or the package's own __init__
    return GROUPS.index(parts[1])


def test_every_dlrc_module_sits_in_a_group_and_imports_downward():
    graph = _module_imports()
    layer = [m for m in graph if m.startswith("dlrc_agents.")]
    assert all(m.split(".")[1] in GROUPS for m in layer), [m for m in layer if m.split(".")[1] not in GROUPS]
    upward = [(a, b) for a in layer for b in graph[a]
              if b.startswith("dlrc_agents.") and _group(b) is not None and _group(b) > _group(a)]
    assert not upward, upward
    # the groups are all there, and the walk sees across them (the mission uses the method and the studies)
    assert {m.split(".")[1] for m in layer} == set(GROUPS)
    assert {"dlrc_agents.dlrc.onboard", "dlrc_agents.studies.capture"} <= graph["dlrc_agents.mission.onboard"]


def test_the_group_test_finds_an_upward_import():
    graph = _module_imports()
    graph["dlrc_agents.common.imaging"].add("dlrc_agents.codecs.registry")  # a helper importing a codec
    assert any(_group(b) > _group(a) for a in graph if a.startswith("dlrc_agents.")
               for b in graph[a] if b.startswith("dlrc_agents.") and _group(b) is not None and _group(a) is not None)
