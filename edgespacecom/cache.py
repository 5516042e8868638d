"""Where the tool keeps what it can make again: one user cache folder, one variable per part."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(variable: str, subfolder: str = "") -> Path:
    """``$variable`` if set, else ``subfolder`` of the platform's user cache for this tool
    (``~/.cache/edgespacecom`` on Linux, via platformdirs)."""
    value = os.environ.get(variable)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("edgespacecom")) / subfolder
