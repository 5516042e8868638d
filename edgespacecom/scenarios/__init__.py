"""The scenarios shipped with the package (YAML files beside this module).

``edgespacecom scenarios list`` shows them; ``edgespacecom scenarios copy NAME DIR`` puts one
where a user can edit and run it. They name data through the registry (``eo:...``) and
weights by architecture and λ, so a copy runs from any folder.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path


def shipped_scenarios() -> dict[str, Path]:
    """{name: path} of every shipped scenario, by name."""
    folder = Path(str(resources.files(__name__)))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def copy_scenario(name: str, dest: Path) -> Path:
    """Copy the shipped scenario ``name`` (with or without ``.yaml``) into the folder ``dest``."""
    known = shipped_scenarios()
    stem = name[:-5] if name.endswith(".yaml") else name
    if stem not in known:
        raise ValueError(f"scenarios copy: no shipped scenario {name!r}; known: {', '.join(known)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / known[stem].name
    if target.exists():
        raise ValueError(f"scenarios copy: {target} exists; remove it or copy elsewhere")
    shutil.copyfile(known[stem], target)
    return target
