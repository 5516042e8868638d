"""What produced a result: versions, commit, configuration and input hashes (in every summary.json)."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import __version__
from .datasets import file_sha256

#: Libraries whose version decides the numbers (recorded when installed).
LIBRARIES = ("numpy", "scipy", "torch", "compressai", "skyfield", "sgp4", "networkx", "pandas", "rasterio")


def library_versions() -> dict[str, str | None]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source tree this package runs from (with ``+dirty`` if changed), or None."""
    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def input_digests(inputs: dict[str, Path]) -> dict[str, str]:
    """{portable name: sha256} of every input file (names, never host paths)."""
    return {name: file_sha256(Path(path)) for name, path in sorted(inputs.items())}


def provenance(config_yaml: str, inputs: dict[str, Path], started_utc: dt.datetime) -> dict:
    return {
        "package": "edgespacecom",
        "version": __version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "config_sha256": hashlib.sha256(config_yaml.encode()).hexdigest(),
        "inputs_sha256": input_digests(inputs),
        "started_utc": started_utc.isoformat(timespec="seconds"),
    }


def provenance_of(config: dict, inputs: dict[str, Path], started_utc: dt.datetime) -> dict:
    """:func:`provenance` of a command rather than a scenario: its settings as a mapping (hashed as YAML)."""
    import yaml

    return provenance(yaml.safe_dump(config, sort_keys=False), inputs, started_utc)
