"""Atomic output files: every file appears whole or not at all.

Each writer puts the bytes in a temporary file in the destination folder, flushes
it to disk and renames it over the target (``os.replace`` is atomic on POSIX).
A run writes ``summary.json`` last, so its presence marks a finished run.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads in the functions that use it: validating a scenario never needs it
    import pandas as pd
from typing import Any

import numpy as np


def _default_mode() -> int:
    """0o666 minus the process umask: what a plain open() would have created."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN and ±inf floats by None, so the file is strict JSON (null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.floating):
        return _finite(float(obj))
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Strict JSON (NaN and infinities written as null), atomically."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False) + "\n")


def write_table(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a table as CSV or Parquet (by the path's suffix), atomically."""
    path = Path(path)
    buf = io.BytesIO()
    if path.suffix == ".parquet":
        frame.to_parquet(buf, index=False)
    elif path.suffix == ".csv":
        buf.write(frame.to_csv(index=False, float_format="%.9g").encode())
    else:
        raise ValueError(f"{path}: tables are written as .csv or .parquet")
    return atomic_write_bytes(path, buf.getvalue())


def write_figure(path: str | Path, fig, dpi: int = 150) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # Fixed metadata so the same scenario gives the same bytes.
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
